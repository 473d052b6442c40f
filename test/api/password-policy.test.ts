import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { passwordProblem } from '../../api/auth/password-policy.js';
import { UNLIMITED, createUser, signIn, strongPassword, uniqueEmail } from '../support/auth.js';
import { startTestApi, type TestApi } from '../support/api.js';

/** Issue 15, finding 8: the weak passwords the penetration test set, each accepted before. */
const FINDING_8 = ['            ', 'qwertyuiopas', 'monkeymonkey', 'adminadmin12', 'abcabcabcabc'];

describe('the password policy (issue 15, finding 8)', () => {
  it('wants 12 to 128 characters, counted as characters, not bytes', () => {
    assert.match(passwordProblem('a'.repeat(11)) ?? '', /at least 12/);
    assert.equal(passwordProblem('ünïcödé-pässphrase'), undefined);
    assert.match(passwordProblem('🙂'.repeat(11)) ?? '', /at least 12/);
    assert.equal(passwordProblem('🙂🌿🍋🚲🎈📎🧭🪁🎻🧩🦉🌙'), undefined);
    assert.match(passwordProblem('x'.repeat(129)) ?? '', /at most 128/);
  });

  it('refuses each weak password of the finding', () => {
    for (const weak of FINDING_8) assert.ok(passwordProblem(weak), JSON.stringify(weak));
  });

  it('refuses one thing repeated, with or without digits around it', () => {
    for (const weak of ['monkeymonkey', 'abcabcabcabc', 'adminadmin12', '!!Blue-Blue-Blue-Blue', 'xx1234567890', 'zq8zq8zq8zq8']) {
      assert.match(passwordProblem(weak) ?? '', /repeated/, weak);
    }
  });

  it('refuses walks along the keyboard, the alphabet or the digits, in any direction or case', () => {
    for (const walk of ['qwertyuiopas', 'QWERTYuiop[]', '1qaz2wsx3edc4rfv', 'asdfghjkl;lk', 'zaq12wsxcde3', 'abcdefghijklm', '0987654321`1', 'aaaaaaaaaaab', 'mnbvcxzlkjhg']) {
      assert.match(passwordProblem(walk) ?? '', /walk/, walk);
    }
  });

  it("refuses the owner's e-mail, its local part, their name, or one of their names dressed with digits", () => {
    const owner = { email: 'Jane.Okonkwo@clinic.example', name: 'Jane Okonkwo' };
    for (const personal of ['jane.okonkwo@clinic.example', 'Jane.Okonkwo-2024', 'JaneOkonkwo!!!', 'okonkwo-is-my-name', '2024Okonkwo2024']) {
      assert.match(passwordProblem(personal, owner) ?? '', /e-mail address or your name/, personal);
    }
    // Short name parts only count as the whole password: "Jane" inside a passphrase is not her name.
    assert.equal(passwordProblem('plum-orbit-candle-ferry', owner), undefined);
    assert.equal(passwordProblem('okonkwo-is-my-name'), undefined, 'the same passphrase is fine for someone else');
  });

  it('refuses breached passwords from the shipped list, and a breached word dressed with digits or symbols', () => {
    for (const breached of ['Password1234', 'Football2024!', '!!!!monkey2024', 'correcthorsebatterystaple', 'iloveyou!!!!', 'Sunshine2024!', 'manchesterunited', 'Starwars1977!']) {
      assert.match(passwordProblem(breached) ?? '', /too common/, breached);
    }
  });

  it('accepts passphrases and random passwords', () => {
    for (const good of ['plum-orbit-candle-ferry', 'correct horse staple battery 9', 'Tangerine-Lighthouse-42', strongPassword(), strongPassword()]) {
      assert.equal(passwordProblem(good), undefined, good);
    }
  });

  it('checks a list shipped as a data file: far larger than the 1,400 passwords of the old module, sorted, lower-case', () => {
    const lines = readFileSync(new URL('../../api/auth/data/breached-passwords.txt', import.meta.url), 'utf8').split('\n').filter(Boolean);
    assert.ok(lines.length > 50_000, `${lines.length} passwords`);
    assert.deepEqual(lines, [...lines].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    assert.ok(lines.every((line) => line === line.toLowerCase()));
    // Every entry of 12 characters or more is refused as it is (the shorter ones are the words inside).
    const sample = lines.filter((line) => line.length >= 12).filter((_, i) => i % 997 === 0);
    for (const breached of sample) assert.ok(passwordProblem(breached), breached);
  });
});

describe('the API applies the policy to every new password, the owner included', () => {
  let api: TestApi;
  let admin: Awaited<ReturnType<typeof signIn>>;

  before(async () => {
    api = await startTestApi({ env: UNLIMITED });
    admin = await signIn(api, await createUser('admin'));
  });
  after(() => api?.close());

  it('refuses each weak password of the finding, and a password that is the new user\'s e-mail, with 422 naming the field, never the password', async () => {
    const email = uniqueEmail('policy');
    for (const password of [...FINDING_8, email, `${email}!`]) {
      const res = await api.request('POST', '/admin/users', { token: admin.accessToken, body: { email, password, role: 'staff', name: 'Policy Test' } });
      assert.equal(res.status, 422, JSON.stringify(password));
      assert.deepEqual(Object.keys(res.body.fields), ['password']);
      assert.ok(!JSON.stringify(res.body).includes(password));
    }
  });

  it("refuses an admin's reset to the user's own name", async () => {
    const user = await createUser('staff');
    const res = await api.request('PATCH', `/admin/users/${user.id}`, { token: admin.accessToken, body: { name: 'Rosalind Featherstone', password: 'RosalindFeatherstone1' } });
    assert.equal(res.status, 422);
    assert.deepEqual(Object.keys(res.body.fields), ['password']);
  });
});
