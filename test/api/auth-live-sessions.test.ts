import assert from 'node:assert/strict';
import { sharedDatabase, startTestApi, type TestApi } from '../support/api.js';
import { signedIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { eventually, sql } from '../support/postgres.js';

/**
 * Each task caches which sessions are live (the check runs on every request); these prove the
 * cache never outlives a revocation.
 */
describe('session checks with the per-task cache', function () {
  this.timeout(60_000);
  let first: TestApi;
  let second: TestApi;
  before(async () => {
    first = await startTestApi({ env: UNLIMITED });
    second = await startTestApi({ env: UNLIMITED });
    // Both tasks listen for ended sessions before the tests rely on it.
    await eventually(() => listeners(2), { timeoutMs: 10_000 });
  });
  after(async () => {
    await first?.close();
    await second?.close();
  });

  async function listeners(atLeast: number): Promise<void> {
    const { name, ownerUrl } = await sharedDatabase();
    const { rows } = await sql(ownerUrl, "select count(*)::int as n from pg_stat_activity where datname = $1 and query = 'listen dms_session_ended'", [name]);
    assert.ok(rows[0].n >= atLeast, `${rows[0].n} listeners`);
  }

  const works = async (api: TestApi, user: SignedIn) => (await api.request('GET', '/auth/me', { token: user.accessToken })).status;

  it('refuses a session revoked on another task once the commit notification arrives', async () => {
    const admin = await signedIn(first, 'admin');
    const doctor = await signedIn(first, 'doctor');
    assert.equal(await works(second, doctor), 200);
    assert.equal(await works(second, doctor), 200, 'now cached on the second task');
    const revoked = Date.now();
    assert.equal((await first.request('POST', `/admin/users/${doctor.id}/revoke-sessions`, { token: admin.accessToken })).status, 204);
    await eventually(async () => assert.equal(await works(second, doctor), 401), { timeoutMs: 2_000, intervalMs: 5 });
    assert.ok(Date.now() - revoked < 1_000, `took ${Date.now() - revoked} ms`);
  });

  it('refuses a session the same task revoked on the very next request', async () => {
    const admin = await signedIn(first, 'admin');
    const staff = await signedIn(first, 'staff');
    assert.equal(await works(first, staff), 200);
    assert.equal((await first.request('PATCH', `/admin/users/${staff.id}`, { token: admin.accessToken, body: { disabled: true } })).status, 200);
    assert.equal(await works(first, staff), 401);
  });

  it('refuses a session ended straight in the database (another writer, a script)', async () => {
    const auditor = await signedIn(second, 'auditor');
    assert.equal(await works(second, auditor), 200);
    const { ownerUrl } = await sharedDatabase();
    await sql(ownerUrl, "update auth_sessions set revoked_at = now(), revoked_reason = 'admin_revoke' where user_id = $1", [auditor.id]);
    await eventually(async () => assert.equal(await works(second, auditor), 401), { timeoutMs: 2_000, intervalMs: 5 });
  });

  it('asks the database on every request while its listener is down, and listens again after', async () => {
    const doctor = await signedIn(second, 'doctor');
    assert.equal(await works(second, doctor), 200);
    const { name, ownerUrl } = await sharedDatabase();
    await sql(ownerUrl, "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query = 'listen dms_session_ended'", [name]);
    await eventually(async () => assert.ok(second.logs.records('session_listener_lost').length > 0));
    // No notification can reach a task that is not listening: the next request must still see the revocation.
    await sql(ownerUrl, "update auth_sessions set revoked_at = now(), revoked_reason = 'admin_revoke' where user_id = $1", [doctor.id]);
    assert.equal(await works(second, doctor), 401);
    await eventually(async () => assert.ok(second.logs.records('session_listener_recovered').length > 0), { timeoutMs: 10_000 });
    await eventually(() => listeners(2), { timeoutMs: 10_000 });
  });
});
