import assert from 'node:assert/strict';
import { GUARD_MAX_DELAY_S, GUARD_THRESHOLD, LOCKOUT_S, LOCKOUT_THRESHOLD } from '../../api/auth/lockout.js';
import { sharedDatabase, startTestApi, type TestApi } from '../support/api.js';
import { auditRows, createUser, signIn, strongPassword, testClientIp, uniqueEmail, UNLIMITED, type TestUser } from '../support/auth.js';
import { sql } from '../support/postgres.js';

describe('signing in (POST /auth/login)', function () {
  // Every attempt costs one argon2id verification at OWASP's parameters.
  this.timeout(60_000);
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ env: UNLIMITED });
  });
  after(() => api.close());

  const login = (email: string, password: string) => api.request('POST', '/auth/login', { body: { email, password } });

  describe('a user with the right password', () => {
    it('gets a bearer access token for 15 minutes and a refresh token, and /auth/me knows them', async () => {
      const doctor = await createUser('doctor');
      const res = await login(doctor.email.toUpperCase(), doctor.password);
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'tokenType']);
      assert.equal(res.body.tokenType, 'Bearer');
      assert.equal(res.body.expiresIn, 900);
      assert.match(res.body.refreshToken, /^[A-Za-z0-9_-]{43}$/);
      const { accessToken } = await signIn(api, doctor);
      const me = await api.request('GET', '/auth/me', { token: accessToken });
      assert.equal(me.status, 200);
      assert.deepEqual(me.body, { id: doctor.id, email: doctor.email, role: 'doctor', name: 'Test doctor' });
    });

    it('is audited and logged by user id, never by e-mail', async () => {
      const staff = await createUser('staff');
      const res = await login(staff.email, staff.password);
      assert.equal(res.status, 200);
      const line = api.logs.records('auth_login_success').find((r) => r.userId === staff.id);
      assert.ok(line, 'auth_login_success names the user id');
      assert.equal(typeof line.sessionId, 'string');
      assert.doesNotMatch(JSON.stringify(api.logs.lines), new RegExp(staff.email.replace(/[.]/g, '\\.')));
      const [row] = (await auditRows('auth.login')).filter((r) => r.actor_id === staff.id);
      assert.ok(row, 'an auth.login audit row');
      assert.equal(row.outcome, 'success');
      assert.equal(row.entity, 'session');
      assert.equal(row.entity_id, line.sessionId);
    });
  });

  describe('refusals: the same 401 for an unknown e-mail, a wrong password, a disabled or a locked account', () => {
    let known: TestUser;
    before(async () => {
      known = await createUser('staff');
    });

    it('answers each with 401 invalid_credentials and the same message, logged under its own event', async () => {
      const disabled = await createUser('staff');
      await sql((await sharedDatabase()).ownerUrl, 'update users set disabled = true where id = $1', [disabled.id]);
      const unknown = await login(uniqueEmail('nobody'), strongPassword());
      const wrong = await login(known.email, strongPassword());
      const off = await login(disabled.email, disabled.password);
      for (const res of [unknown, wrong, off]) {
        assert.equal(res.status, 401);
        assert.equal(res.body.error, 'invalid_credentials');
        assert.equal(res.body.message, unknown.body.message);
      }
      assert.ok(api.logs.records('auth_login_invalid_user').some((r) => r.reason === 'unknown_user' && r.userId === undefined));
      assert.ok(api.logs.records('auth_login_bad_password').some((r) => r.userId === known.id && typeof r.ip === 'string'));
      assert.ok(api.logs.records('auth_login_invalid_user').some((r) => r.reason === 'disabled' && r.userId === disabled.id));
    });

    it('audits each failure with its reason and the user id when there is one', async () => {
      const failures = (await auditRows('auth.login')).filter((r) => r.outcome === 'failure');
      const reasons = failures.map((r) => (r.details as { reason: string }).reason);
      assert.ok(reasons.includes('unknown_user'));
      assert.ok(failures.some((r) => r.entity_id === known.id && (r.details as { reason: string }).reason === 'bad_password'));
      assert.ok(failures.every((r) => typeof r.ip === 'string' && typeof r.request_id === 'string'));
    });

    it('does the same work for an unknown e-mail as for a wrong password (one argon2id verification each)', async () => {
      // CPU time of this process (the API runs in it; argon2 runs on its thread pool, which
      // getrusage counts), not wall time: other processes on a loaded machine do not move it.
      const cpuMs = async (email: string) => {
        const started = process.cpuUsage();
        const res = await login(email, strongPassword());
        assert.equal(res.status, 401);
        const used = process.cpuUsage(started);
        return (used.user + used.system) / 1000;
      };
      const knownMs: number[] = [];
      const unknownMs: number[] = [];
      // Interleaved; a fresh account each time so no lock-out intervenes.
      for (let i = 0; i < 8; i++) {
        const victim = await createUser('staff');
        knownMs.push(await cpuMs(victim.email));
        unknownMs.push(await cpuMs(uniqueEmail('ghost')));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const ratio = median(unknownMs) / median(knownMs);
      // Both paths run one argon2id verification (several ms of CPU); without the dummy hash an
      // unknown e-mail costs a fraction of a millisecond, a ratio far under this bound.
      assert.ok(ratio > 0.6 && ratio < 1.6, `unknown/known median CPU ratio ${ratio.toFixed(2)} (known ${median(knownMs).toFixed(2)} ms, unknown ${median(unknownMs).toFixed(2)} ms)`);
    });
  });

  describe('lock-out after repeated failures', () => {
    it(`locks an account for ${LOCKOUT_S / 60} minutes after ${LOCKOUT_THRESHOLD} consecutive failures, even for the right password`, async () => {
      const target = await createUser('doctor');
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) assert.equal((await login(target.email, strongPassword())).status, 401);
      const locked = await login(target.email, target.password);
      assert.equal(locked.status, 401);
      assert.equal(locked.body.error, 'invalid_credentials');

      const lockedLines = api.logs.records('auth_login_locked').filter((r) => r.userId === target.id);
      assert.deepEqual(lockedLines.map((r) => r.reason), ['locked_now', 'locked']);
      assert.equal(api.logs.records('auth_login_bad_password').filter((r) => r.userId === target.id).length, LOCKOUT_THRESHOLD - 1);
      assert.ok(api.logs.records('auth_error').some((r) => r.reason === 'locked' && r.userId === target.id));
      const [lockout] = await auditRows('auth.lockout', target.id);
      assert.equal(lockout?.outcome, 'success');
      assert.ok((await auditRows('auth.login', target.id)).some((r) => r.outcome === 'denied'));
      const { rows } = await sql((await sharedDatabase()).ownerUrl, `select extract(epoch from locked_until - now()) as s from auth_login_failures where user_id = $1`, [target.id]);
      assert.ok(Number(rows[0].s) > LOCKOUT_S - 60 && Number(rows[0].s) <= LOCKOUT_S);
    });

    it('lets the account in once the lock has run out, and a success clears the count', async () => {
      const target = await createUser('doctor');
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) await login(target.email, strongPassword());
      const { ownerUrl } = await sharedDatabase();
      await sql(ownerUrl, `update auth_login_failures set locked_until = now() - interval '1 second' where user_id = $1`, [target.id]);
      assert.equal((await login(target.email, target.password)).status, 200);
      assert.equal((await sql(ownerUrl, 'select count(*)::int as n from auth_login_failures where user_id = $1', [target.id])).rows[0].n, 0);
    });

    it('counts only consecutive failures: a success in between starts again', async () => {
      const target = await createUser('staff');
      for (let i = 0; i < LOCKOUT_THRESHOLD - 1; i++) await login(target.email, strongPassword());
      assert.equal((await login(target.email, target.password)).status, 200);
      for (let i = 0; i < LOCKOUT_THRESHOLD - 1; i++) await login(target.email, strongPassword());
      assert.equal((await login(target.email, target.password)).status, 200);
    });
  });

  describe('strangers cannot keep an owner out: the lock is per (account, client), the guard slows only unseen clients', () => {
    /** Behind one load balancer: the X-Forwarded-For a test writes is the client's address. */
    let proxied: TestApi;
    before(async () => {
      proxied = await startTestApi({ env: { ...UNLIMITED, TRUST_PROXY_HOPS: '1' } });
    });
    after(() => proxied.close());

    const from = (client: string, email: string, password: string) =>
      proxied.request('POST', '/auth/login', { body: { email, password }, headers: { 'x-forwarded-for': client } });
    const guard = async (userId: string) =>
      (await sql((await sharedDatabase()).ownerUrl,
        `select recent_failures, extract(epoch from throttled_until - last_failure_at)::int as delay_s from auth_account_guard where user_id = $1`, [userId])).rows[0];

    it('locks out the client that failed ten times, not the owner signing in from elsewhere, however long it goes on', async () => {
      const owner = await createUser('admin');
      const [usual, stranger] = [testClientIp(), testClientIp()];
      assert.equal((await from(usual, owner.email, owner.password)).status, 200);
      const { ownerUrl } = await sharedDatabase();
      // Ten wrong passwords every 15 minutes from one address (the lock running out between rounds).
      // Two rounds: from the 20th failure on, the account's guard slows the stranger as well (next test).
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < LOCKOUT_THRESHOLD; i++) assert.equal((await from(stranger, owner.email, strongPassword())).status, 401);
        assert.equal((await from(stranger, owner.email, owner.password)).status, 401, 'the stranger is locked out, right password or not');
        assert.equal((await from(usual, owner.email, owner.password)).status, 200, `round ${round}: the owner signs in from their usual client`);
        await sql(ownerUrl, `update auth_login_failures set locked_until = now() - interval '1 second' where user_id = $1 and locked_until is not null`, [owner.id]);
      }
      const locks = await auditRows('auth.lockout', owner.id);
      assert.equal(locks.length, 2);
      assert.ok(locks.every((row) => row.ip === stranger && (row.details as { scope: string }).scope === 'client'));
      const lines = proxied.logs.records('auth_login_locked').filter((r) => r.userId === owner.id);
      assert.ok(lines.every((r) => r.ip === stranger), 'every lock line names the stranger');
    });

    it('signs the owner in from a new client too while one stranger guesses', async () => {
      const owner = await createUser('doctor');
      const stranger = testClientIp();
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) await from(stranger, owner.email, strongPassword());
      assert.equal((await from(testClientIp(), owner.email, owner.password)).status, 200);
    });

    it(`slows clients that never signed in to an account guessed at from many clients (${GUARD_THRESHOLD}+ failures a day): each further failure doubles their wait, up to ${GUARD_MAX_DELAY_S / 60} minutes`, async () => {
      const owner = await createUser('admin');
      const usual = testClientIp();
      assert.equal((await from(usual, owner.email, owner.password)).status, 200);
      const { ownerUrl } = await sharedDatabase();
      // Two strangers spend their ten each: the guard starts with a wait of 1 s.
      for (const stranger of [testClientIp(), testClientIp()]) {
        for (let i = 0; i < LOCKOUT_THRESHOLD; i++) await from(stranger, owner.email, strongPassword());
      }
      assert.deepEqual(await guard(owner.id), { recent_failures: GUARD_THRESHOLD, delay_s: 1 });
      const delays: number[] = [];
      for (let i = 0; i < 11; i++) {
        // Time passing (no test waits): the wait ran out, and the next fresh stranger's guess is checked and counted.
        await sql(ownerUrl, `update auth_account_guard set throttled_until = now() - interval '1 second' where user_id = $1`, [owner.id]);
        assert.equal((await from(testClientIp(), owner.email, strongPassword())).status, 401);
        delays.push((await guard(owner.id)).delay_s as number);
      }
      assert.deepEqual(delays, [2, 4, 8, 16, 32, 64, 128, 256, 512, GUARD_MAX_DELAY_S, GUARD_MAX_DELAY_S]);

      // While it waits: an unseen client is refused even with the right password, and refusals do not extend the wait.
      const before = await guard(owner.id);
      const newcomer = testClientIp();
      const refused = await from(newcomer, owner.email, owner.password);
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error, 'invalid_credentials');
      assert.deepEqual(await guard(owner.id), before);
      const line = proxied.logs.records('auth_login_locked').find((r) => r.userId === owner.id && r.ip === newcomer);
      assert.equal(line?.reason, 'throttled');
      assert.ok((await auditRows('auth.login', owner.id)).some((r) => r.outcome === 'denied' && (r.details as { reason: string }).reason === 'throttled'));

      // The owner's known client is not slowed at all.
      assert.equal((await from(usual, owner.email, owner.password)).status, 200);
    });

    it("lifts every lock and the guard when an admin sets the account's password", async () => {
      const admin = await signIn(proxied, await createUser('admin'), { 'x-forwarded-for': testClientIp() });
      const owner = await createUser('staff');
      const strangers = [testClientIp(), testClientIp()];
      for (const stranger of strangers) for (let i = 0; i < LOCKOUT_THRESHOLD; i++) await from(stranger, owner.email, strongPassword());
      const password = strongPassword();
      const reset = await proxied.request('PATCH', `/admin/users/${owner.id}`, { token: admin.accessToken, body: { password }, headers: { 'x-forwarded-for': testClientIp() } });
      assert.equal(reset.status, 200);
      assert.equal(await guard(owner.id), undefined);
      assert.equal((await from(strangers[0]!, owner.email, password)).status, 200);
    });
  });

  describe('malformed sign-ins', () => {
    it('answers 422 with the field names, never echoing the password', async () => {
      const password = strongPassword();
      const res = await api.request('POST', '/auth/login', { body: { email: 'not-an-email', password, extra: 1 } });
      assert.equal(res.status, 422);
      assert.deepEqual(Object.keys(res.body.fields).sort(), ['email', 'extra']);
      assert.doesNotMatch(JSON.stringify(res.body), new RegExp(password));
      assert.equal((await api.request('POST', '/auth/login', { body: { email: 'a@b.co' } })).status, 422);
      assert.equal((await api.request('POST', '/auth/login', { body: { email: 'a@b.co', password: 42 } })).status, 422);
    });
  });
});
