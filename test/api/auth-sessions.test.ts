import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sharedDatabase, startTestApi, type TestApi } from '../support/api.js';
import { auditRows, createUser, rememberSecret, signedIn, signIn, strongPassword, UNLIMITED, type SignedIn } from '../support/auth.js';
import { sql } from '../support/postgres.js';

/** A well-formed refresh token that was never issued. */
const neverIssued = () => rememberSecret(randomBytes(32).toString('base64url'));

describe('sessions: refresh, reuse, logout and revocation', function () {
  this.timeout(60_000);
  let api: TestApi;
  let admin: SignedIn;
  before(async () => {
    api = await startTestApi({ env: UNLIMITED });
    admin = await signedIn(api, 'admin');
  });
  after(() => api.close());

  const refresh = async (refreshToken: string) => {
    const res = await api.request('POST', '/auth/refresh', { body: { refreshToken } });
    if (res.status === 200) {
      rememberSecret(res.body.accessToken);
      rememberSecret(res.body.refreshToken);
    }
    return res;
  };
  const me = (token: string) => api.request('GET', '/auth/me', { token });

  describe('POST /auth/refresh', () => {
    it('answers a new pair and spends the presented refresh token', async () => {
      const user = await signedIn(api, 'staff');
      const first = await refresh(user.refreshToken);
      assert.equal(first.status, 200);
      assert.deepEqual(Object.keys(first.body).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'tokenType']);
      assert.notEqual(first.body.refreshToken, user.refreshToken);
      assert.equal((await me(first.body.accessToken)).status, 200);
      const second = await refresh(first.body.refreshToken);
      assert.equal(second.status, 200, 'the rotated token works once');
    });

    it('stores refresh tokens only as SHA-256 hashes', async () => {
      const user = await signedIn(api, 'staff');
      const { ownerUrl } = await sharedDatabase();
      const { rows } = await sql(ownerUrl, `select t.token_hash from auth_refresh_tokens t join auth_sessions s on s.id = t.session_id where s.user_id = $1`, [user.id]);
      assert.equal(rows.length, 1);
      assert.match(rows[0].token_hash, /^[0-9a-f]{64}$/);
      const dump = JSON.stringify((await sql(ownerUrl, 'select * from auth_refresh_tokens')).rows);
      assert.ok(!dump.includes(user.refreshToken));
    });

    it('refuses a token that is unknown or not one of ours with 401', async () => {
      for (const refreshToken of ['x'.repeat(43), 'not a token', neverIssued()]) {
        const res = await refresh(refreshToken);
        assert.equal(res.status, 401);
        assert.equal(res.body.error, 'unauthorized');
      }
      assert.equal((await api.request('POST', '/auth/refresh', { body: {} })).status, 422);
    });

    it('ends with the family 12 hours after sign-in, however often it rotated', async () => {
      const user = await signedIn(api, 'doctor');
      const rotated = await refresh(user.refreshToken);
      const sid = (JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid;
      const { rows } = await sql((await sharedDatabase()).ownerUrl, `select extract(epoch from expires_at - created_at)::int as s from auth_sessions where id = $1`, [sid]);
      assert.equal(rows[0].s, 12 * 3600);
      await sql((await sharedDatabase()).ownerUrl, `update auth_sessions set created_at = now() - interval '12 hours 1 second', expires_at = now() - interval '1 second' where id = $1`, [sid]);
      assert.equal((await refresh(rotated.body.refreshToken)).status, 401);
      assert.equal((await me(rotated.body.accessToken)).status, 401, 'the access tokens of an ended session stop too');
    });
  });

  describe('a spent refresh token presented again (reuse)', () => {
    it('revokes its whole family: the newest refresh token and the access tokens stop at once', async () => {
      const user = await signedIn(api, 'doctor');
      const rotated = await refresh(user.refreshToken);
      assert.equal(rotated.status, 200);

      const replay = await refresh(user.refreshToken);
      assert.equal(replay.status, 401);
      assert.equal((await refresh(rotated.body.refreshToken)).status, 401, 'the legitimate newest token is dead too');
      assert.equal((await me(rotated.body.accessToken)).status, 401);
      assert.equal((await me(user.accessToken)).status, 401);

      const [line] = api.logs.records('auth_refresh_reuse').filter((r) => r.userId === user.id);
      assert.ok(line, 'auth_refresh_reuse is logged');
      assert.equal(typeof line.ip, 'string');
      const [row] = (await auditRows('auth.refresh_reuse')).filter((r) => r.actor_id === user.id);
      assert.equal(row?.outcome, 'denied');
      assert.equal(row?.entity_id, line.sessionId);
    });

    it('leaves the user\'s other sessions alone', async () => {
      const user = await createUser('staff');
      const laptop = await signIn(api, user);
      const phone = await signIn(api, user);
      await refresh(laptop.refreshToken);
      await refresh(laptop.refreshToken);
      assert.equal((await me(phone.accessToken)).status, 200);
      assert.equal((await refresh(phone.refreshToken)).status, 200);
    });

    it('lets exactly one of two racing refreshes with the same token win, and the loser revokes the family', async () => {
      const user = await signedIn(api, 'staff');
      const results = await Promise.all([refresh(user.refreshToken), refresh(user.refreshToken)]);
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 401]);
      const winner = results.find((r) => r.status === 200)!;
      assert.equal((await refresh(winner.body.refreshToken)).status, 401);
    });
  });

  describe('POST /auth/logout', () => {
    it('answers 204, spends the refresh token and stops the access token', async () => {
      const user = await signedIn(api, 'doctor');
      const res = await api.request('POST', '/auth/logout', { token: user.accessToken, body: { refreshToken: user.refreshToken } });
      assert.equal(res.status, 204);
      assert.equal((await refresh(user.refreshToken)).status, 401);
      assert.equal((await me(user.accessToken)).status, 401);
      const [row] = (await auditRows('auth.logout')).filter((r) => r.actor_id === user.id);
      assert.equal(row?.outcome, 'success');
      assert.equal(api.logs.records('auth_refresh_reuse').filter((r) => r.userId === user.id).length, 0, 'a token after logout is not theft');
    });

    it('needs a signed-in caller and cannot end another user\'s session', async () => {
      const victim = await signedIn(api, 'staff');
      assert.equal((await api.request('POST', '/auth/logout', { body: { refreshToken: victim.refreshToken } })).status, 401);
      const other = await signedIn(api, 'staff');
      assert.equal((await api.request('POST', '/auth/logout', { token: other.accessToken, body: { refreshToken: victim.refreshToken } })).status, 204);
      assert.equal((await refresh(victim.refreshToken)).status, 200, 'the victim still refreshes');
    });
  });

  describe('POST /admin/users/:id/revoke-sessions', () => {
    it('stops the user\'s access tokens on the next request and every refresh token', async () => {
      const user = await createUser('doctor');
      const a = await signIn(api, user);
      const b = await signIn(api, user);
      assert.equal((await me(a.accessToken)).status, 200);

      const res = await api.request('POST', `/admin/users/${user.id}/revoke-sessions`, { token: admin.accessToken });
      assert.equal(res.status, 204);
      for (const session of [a, b]) {
        assert.equal((await me(session.accessToken)).status, 401);
        assert.equal((await refresh(session.refreshToken)).status, 401);
      }
      assert.ok(api.logs.records('auth_error').some((r) => r.reason === 'invalid_token' && r.detail === 'session_ended'));
      const [row] = await auditRows('session.revoke', user.id);
      assert.equal(row?.actor_id, admin.id);
      assert.deepEqual(row?.details, { reason: 'admin_revoke', sessionsRevoked: 2 });
      assert.equal((await signIn(api, user)).role, 'doctor', 'the user can sign in again');
    });

    it('is 404 for a user that does not exist, and admin-only', async () => {
      assert.equal((await api.request('POST', '/admin/users/00000000-0000-4000-8000-000000000000/revoke-sessions', { token: admin.accessToken })).status, 404);
      assert.equal((await api.request('POST', '/admin/users/not-a-uuid/revoke-sessions', { token: admin.accessToken })).status, 404);
      const doctor = await signedIn(api, 'doctor');
      assert.equal((await api.request('POST', `/admin/users/${doctor.id}/revoke-sessions`, { token: doctor.accessToken })).status, 403);
    });
  });

  describe('changing a user ends their sessions at once', () => {
    it('disabling: tokens stop, and the user cannot sign in', async () => {
      const user = await signedIn(api, 'staff');
      const res = await api.request('PATCH', `/admin/users/${user.id}`, { token: admin.accessToken, body: { disabled: true } });
      assert.equal(res.status, 200);
      assert.equal(res.body.disabled, true);
      assert.equal((await me(user.accessToken)).status, 401);
      assert.equal((await refresh(user.refreshToken)).status, 401);
      assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } })).status, 401);
      const [row] = await auditRows('session.revoke', user.id);
      assert.equal((row?.details as { reason: string }).reason, 'user_disabled');
    });

    it('a new role: tokens carrying the old role stop', async () => {
      const user = await signedIn(api, 'staff');
      await api.request('PATCH', `/admin/users/${user.id}`, { token: admin.accessToken, body: { role: 'doctor' } });
      assert.equal((await me(user.accessToken)).status, 401);
      const again = await signIn(api, user);
      assert.equal((await me(again.accessToken)).body.role, 'doctor');
    });

    it('a new password set by an admin: old sessions stop, the new password works', async () => {
      const user = await signedIn(api, 'auditor');
      const password = strongPassword();
      assert.equal((await api.request('PATCH', `/admin/users/${user.id}`, { token: admin.accessToken, body: { password } })).status, 200);
      assert.equal((await me(user.accessToken)).status, 401);
      assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } })).status, 401);
      await signIn(api, { ...user, password });
    });

    it('a new name only: sessions go on', async () => {
      const user = await signedIn(api, 'doctor');
      await api.request('PATCH', `/admin/users/${user.id}`, { token: admin.accessToken, body: { name: 'Dr. Renamed' } });
      assert.equal((await me(user.accessToken)).status, 200);
    });
  });
});
