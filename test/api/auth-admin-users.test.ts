import assert from 'node:assert/strict';
import { migratedDatabase, sharedDatabase, startTestApi, type TestApi } from '../support/api.js';
import { auditRows, createUser, signedIn, signIn, strongPassword, uniqueEmail, UNLIMITED, type SignedIn } from '../support/auth.js';
import { createDatabase, sql } from '../support/postgres.js';

describe('managing users (/admin/users)', function () {
  this.timeout(60_000);
  let api: TestApi;
  let admin: SignedIn;
  before(async () => {
    api = await startTestApi({ env: UNLIMITED });
    admin = await signedIn(api, 'admin');
  });
  after(() => api.close());

  const asAdmin = (method: string, path: string, body?: unknown) => api.request(method, path, { token: admin.accessToken, body });

  describe('who may', () => {
    it('answers 401 without a token and 403 forbidden with auth_error missing_role for every other role', async () => {
      assert.equal((await api.request('GET', '/admin/users')).status, 401);
      for (const role of ['doctor', 'staff', 'auditor'] as const) {
        const user = await signedIn(api, role);
        for (const [method, path] of [['GET', '/admin/users'], ['POST', '/admin/users'], ['PATCH', `/admin/users/${user.id}`]] as const) {
          const res = await api.request(method, path, { token: user.accessToken, body: method === 'GET' ? undefined : { name: 'x' } });
          assert.equal(res.status, 403, `${role} ${method} ${path}`);
          assert.equal(res.body.error, 'forbidden');
        }
        assert.ok(api.logs.records('auth_error').some((r) => r.reason === 'missing_role' && r.userId === user.id && r.role === role));
      }
    });
  });

  describe('POST /admin/users', () => {
    it('creates a user of each role, answers 201 without any password or hash, and audits it', async () => {
      for (const role of ['admin', 'doctor', 'staff', 'auditor'] as const) {
        const password = strongPassword();
        const email = uniqueEmail(role);
        const res = await asAdmin('POST', '/admin/users', { email: email.toUpperCase(), password, role, name: `New ${role}` });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.deepEqual(Object.keys(res.body).sort(), ['createdAt', 'disabled', 'email', 'id', 'mfaEnabled', 'mustChangePassword', 'name', 'role', 'updatedAt']);
        assert.equal(res.body.mustChangePassword, false);
        assert.equal(res.body.email, email, 'e-mails are stored lower-case');
        assert.equal(res.body.role, role);
        assert.doesNotMatch(JSON.stringify({ ...res.body, mustChangePassword: undefined }), /argon2|password|secret/i);
        await signIn(api, { id: res.body.id, email, password, role });
        const [row] = await auditRows('user.create', res.body.id);
        assert.equal(row?.actor_id, admin.id);
        assert.deepEqual(row?.details, { role, mustChangePassword: false });
      }
    });

    it('stores the password only as an argon2id hash at OWASP\'s parameters', async () => {
      const password = strongPassword();
      const res = await asAdmin('POST', '/admin/users', { email: uniqueEmail(), password, role: 'staff', name: 'Hashed' });
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select * from users where id = $1', [res.body.id]);
      assert.match(rows[0].password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      assert.ok(!JSON.stringify(rows[0]).includes(password));
    });

    it('refuses a short, a too long or a common password with 422 naming the field, never the password', async () => {
      for (const password of ['short-pw', 'x'.repeat(129), 'password1234', 'Sunshine2024!', 'qwertyuiop123', '123456789012', 'iloveyou!!!!']) {
        const res = await asAdmin('POST', '/admin/users', { email: uniqueEmail(), password, role: 'staff', name: 'Weak' });
        assert.equal(res.status, 422, password);
        assert.deepEqual(Object.keys(res.body.fields), ['password']);
        assert.ok(!JSON.stringify(res.body).includes(password));
      }
    });

    it('refuses a taken e-mail (409), an unknown role, a missing field or an unknown one (422)', async () => {
      const taken = await createUser('staff');
      const dup = await asAdmin('POST', '/admin/users', { email: taken.email.toUpperCase(), password: strongPassword(), role: 'staff', name: 'Dup' });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error, 'email_taken');
      const bad = await asAdmin('POST', '/admin/users', { email: uniqueEmail(), password: strongPassword(), role: 'root', isAdmin: true });
      assert.equal(bad.status, 422);
      assert.deepEqual(Object.keys(bad.body.fields).sort(), ['isAdmin', 'name', 'role']);
    });
  });

  describe('GET /admin/users', () => {
    it('finds one user by exact e-mail, whatever its case', async () => {
      const user = await createUser('doctor');
      const res = await asAdmin('GET', `/admin/users?email=${encodeURIComponent(user.email.toUpperCase())}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.items.map((u: { id: string }) => u.id), [user.id]);
      assert.equal(res.body.nextCursor, null);
      const prefix = await asAdmin('GET', `/admin/users?email=${encodeURIComponent(user.email.slice(0, 8))}`);
      assert.ok(prefix.status === 422 || prefix.body.items.length === 0, 'no partial matches');
    });

    it('pages newest first with an opaque cursor until nextCursor is null', async () => {
      for (let i = 0; i < 3; i++) await createUser('staff');
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await asAdmin('GET', `/admin/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.status, 200);
        assert.ok(res.body.items.length <= 2);
        seen.push(...res.body.items.map((u: { id: string }) => u.id));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor && pages < 500);
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select id from users order by created_at desc, id desc');
      assert.deepEqual(seen, rows.map((r) => r.id));
    });

    it('pages users created in the same millisecond without skipping any (the key is exact to what is stored)', async () => {
      const { ownerUrl } = await sharedDatabase();
      // Three rows inside one millisecond, as writers that stamp with the database's now() produce;
      // dated far ahead so they are the first page and no other row sits between them.
      const { rows } = await sql(
        ownerUrl,
        `insert into users (id, email, name, role, password_hash, disabled, created_at, updated_at)
         select gen_random_uuid(), 'same-ms-' || n || '-' || md5(random()::text) || '@test.dms', 'Same ms', 'staff', 'x', false, at, at
         from (values (1, timestamptz '2999-01-01 00:00:00.000123+00'), (2, '2999-01-01 00:00:00.000456+00'), (3, '2999-01-01 00:00:00.000789+00')) as t(n, at)
         returning id`,
      );
      try {
        const seen: string[] = [];
        let cursor: string | null = null;
        for (let page = 0; page < 3; page++) {
          const res = await asAdmin('GET', `/admin/users?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
          assert.equal(res.status, 200);
          seen.push(...res.body.items.map((u: { id: string }) => u.id));
          cursor = res.body.nextCursor;
        }
        assert.deepEqual([...seen].sort(), rows.map((r) => r.id).sort(), 'each of the three, once, on the first three pages');
      } finally {
        await sql(ownerUrl, 'delete from users where id = any($1::uuid[])', [rows.map((r) => r.id)]);
      }
    });

    it('defaults to 50 a page, caps limit at 200, and refuses a malformed cursor or limit', async () => {
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select count(*)::int as n from users');
      const defaults = await asAdmin('GET', '/admin/users');
      assert.equal(defaults.body.items.length, Math.min(50, rows[0].n));
      const capped = await asAdmin('GET', '/admin/users?limit=100000');
      assert.equal(capped.status, 200);
      assert.equal(capped.body.items.length, Math.min(200, rows[0].n));
      assert.equal((await asAdmin('GET', '/admin/users?cursor=bm90LWEtY3Vyc29y')).status, 422);
      assert.equal((await asAdmin('GET', '/admin/users?limit=0')).status, 422);
    });
  });

  describe('GET /admin/users/:id', () => {
    it('answers one user by id without the password hash, 404 for an unknown or malformed id, 403 to any other role', async () => {
      const user = await createUser('doctor');
      const res = await asAdmin('GET', `/admin/users/${user.id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(Object.keys(res.body).sort(), ['createdAt', 'disabled', 'email', 'id', 'mfaEnabled', 'mustChangePassword', 'name', 'role', 'updatedAt']);
      assert.equal(res.body.email, user.email);
      assert.equal(res.body.role, 'doctor');
      assert.equal((await asAdmin('GET', '/admin/users/00000000-0000-4000-8000-000000000000')).status, 404);
      assert.equal((await asAdmin('GET', '/admin/users/not-a-uuid')).status, 404);
      const doctor = await signedIn(api, 'doctor');
      assert.equal((await api.request('GET', `/admin/users/${user.id}`, { token: doctor.accessToken })).status, 403);
      assert.equal((await api.request('GET', `/admin/users/${user.id}`)).status, 401);
    });
  });

  describe('PATCH /admin/users/:id', () => {
    it('changes name, role and disabled, audits it with the field names, and refuses unknown fields', async () => {
      const user = await createUser('staff');
      const res = await asAdmin('PATCH', `/admin/users/${user.id}`, { name: 'Renamed', role: 'auditor' });
      assert.equal(res.status, 200);
      assert.equal(res.body.name, 'Renamed');
      assert.equal(res.body.role, 'auditor');
      const [row] = await auditRows('user.update', user.id);
      assert.deepEqual(row?.details, { fields: 'name,role', role: 'auditor', disabled: false, mustChangePassword: false });
      assert.equal((await asAdmin('PATCH', `/admin/users/${user.id}`, { email: 'new@x.io' })).status, 422);
      assert.equal((await asAdmin('PATCH', `/admin/users/${user.id}`, {})).status, 422);
      assert.equal((await asAdmin('PATCH', '/admin/users/00000000-0000-4000-8000-000000000000', { name: 'x' })).status, 404);
    });

    it('refuses to demote or disable the last enabled admin (409 last_admin)', async () => {
      const { ownerUrl } = await sharedDatabase();
      // Only this test's admin stays an enabled admin for the duration.
      const { rows } = await sql(ownerUrl, "update users set disabled = true where role = 'admin' and not disabled and id <> $1 returning id", [admin.id]);
      try {
        for (const change of [{ disabled: true }, { role: 'doctor' }]) {
          const res = await asAdmin('PATCH', `/admin/users/${admin.id}`, change);
          assert.equal(res.status, 409);
          assert.equal(res.body.error, 'last_admin');
        }
        const second = await createUser('admin');
        assert.equal((await asAdmin('PATCH', `/admin/users/${second.id}`, { disabled: true })).status, 200, 'another admin may be disabled');
      } finally {
        await sql(ownerUrl, 'update users set disabled = false where id = any($1::uuid[])', [rows.map((r) => r.id)]);
      }
    });
  });
});

describe('two admins demoting each other at the same moment', function () {
  this.timeout(120_000);
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let api: TestApi;

  // A database of its own: the two racers are its only admins, so "one admin stays" is exact.
  before(async () => {
    db = await migratedDatabase();
    api = await startTestApi({ env: { ...UNLIMITED, DATABASE_URL: db.appUrl }, withoutReplica: true });
  });
  after(async () => {
    await api?.close();
    await db?.drop();
  });

  it('lets exactly one win and refuses the other, never with a 500 (30 races)', async () => {
    const [first, second] = [await createUser('admin', { databaseUrl: db.ownerUrl }), await createUser('admin', { databaseUrl: db.ownerUrl })];
    for (let trial = 1; trial <= 30; trial++) {
      await sql(db.ownerUrl, "update users set role = 'admin', disabled = false where id = any($1::uuid[])", [[first.id, second.id]]);
      const [a, b] = [await signIn(api, first), await signIn(api, second)];
      const demote = (by: SignedIn, target: SignedIn, change: object) => api.request('PATCH', `/admin/users/${target.id}`, { token: by.accessToken, body: change });
      // Each trial alternates which change each side makes: a role change and a disable take the same path.
      const results = await Promise.all([demote(a, b, { role: 'doctor' }), demote(b, a, trial % 2 ? { role: 'staff' } : { disabled: true })]);
      const outcome = results.map((res) => `${res.status} ${res.body?.error ?? ''}`.trim()).sort();
      // The loser is refused as the last admin, or, when the winner committed before its request
      // was authenticated, as a caller whose session the demotion ended.
      assert.ok(['200,409 last_admin', '200,401 unauthorized'].includes(outcome.join(',')), `trial ${trial}: ${outcome.join(', ')}`);
      const { rows } = await sql(db.ownerUrl, "select count(*)::int as n from users where role = 'admin' and not disabled");
      assert.equal(rows[0].n, 1, `trial ${trial}: enabled admins`);
    }
  });
});
