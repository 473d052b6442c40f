import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { TOTP, URI } from 'otpauth';
import { loadConfig } from '../../api/config.js';
import type { Role } from '../../api/db/entities.js';
import { openApiDocument } from '../../api/openapi/document.js';
import { sharedDatabase, startTestApi, type TestApi } from '../support/api.js';
import { UNLIMITED, auditRows, createUser, rememberSecret, signIn, strongPassword, type SignedIn, type TestUser } from '../support/auth.js';
import { sql } from '../support/postgres.js';

/**
 * Issue 15, "what a clinic expects of accounts": TOTP multi-factor sign-in, the mandatory-MFA
 * policy, forced and self-service password changes, and a user's own sessions. The codes are
 * computed by another TOTP implementation (`otpauth`) than the API's (`otplib`), from the
 * otpauth:// URI the API hands out, as an authenticator app would.
 */

const STEP_S = 30;

/** An authenticator app: it reads the URI once and computes codes. */
class Authenticator {
  readonly totp: TOTP;
  constructor(uri: string) {
    this.totp = URI.parse(rememberSecret(uri)) as TOTP;
    rememberSecret(this.totp.secret.base32);
  }
  /** The code of the step `stepsAhead` after now (the API accepts one step of drift either way). Six digits: too short for the log scan. */
  code(stepsAhead = 0): string {
    return this.totp.generate({ timestamp: Date.now() + stepsAhead * STEP_S * 1000 });
  }
}

describe('multi-factor sign-in (TOTP) and the account rules a clinic expects', () => {
  let api: TestApi;
  let admin: SignedIn;

  const call = (method: string, path: string, token: string | undefined, body?: unknown) => api.request(method, path, { ...(token ? { token } : {}), ...(body === undefined ? {} : { body }) });
  const login = (user: TestUser) => api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } });
  const secondStep = async (mfaToken: string, proof: { code: string } | { recoveryCode: string }) => {
    const res = await api.request('POST', '/auth/login/mfa', { body: { mfaToken, ...proof } });
    if (res.status === 200) rememberSecret(res.body.accessToken), rememberSecret(res.body.refreshToken);
    return res;
  };
  /** Signs in up to the second step and answers its token. */
  const firstStep = async (user: TestUser): Promise<string> => {
    const res = await login(user);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).sort(), ['expiresIn', 'mfaRequired', 'mfaToken'], 'no access token before the second step');
    assert.equal(res.body.mfaRequired, true);
    return rememberSecret(res.body.mfaToken as string);
  };

  /**
   * Calls every operation of the OpenAPI document that needs a token with a restricted session's
   * token: each one that does not list the restriction in `x-restricted-sessions` must refuse it
   * with 403 and the restriction's code. Answers the operations that list it (not called).
   */
  async function operationsServing(token: string, restriction: 'mfa_enrolment' | 'password_change'): Promise<string[]> {
    const { paths } = openApiDocument() as { paths: Record<string, Record<string, { 'x-roles'?: Role[]; 'x-restricted-sessions'?: string[] }>> };
    const serving: string[] = [];
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(operations)) {
        if (!op['x-roles']) continue;
        if (op['x-restricted-sessions']?.includes(restriction)) {
          serving.push(`${method} ${path}`);
          continue;
        }
        const concrete = path.replace(/\{\w+\}/g, () => randomUUID());
        const refused = await call(method.toUpperCase(), concrete, token, method === 'get' ? undefined : {});
        assert.deepEqual([refused.status, refused.body.error], [403, `${restriction}_required`], `${method} ${path}`);
      }
    }
    return serving.sort();
  }

  /** A user of `role`, enrolled: the authenticator and the recovery codes. */
  async function enrolled(role: Role): Promise<{ user: SignedIn; app: Authenticator; recoveryCodes: string[] }> {
    const user = await signIn(api, await createUser(role));
    const enrol = await call('POST', '/auth/mfa/enroll', user.accessToken);
    assert.equal(enrol.status, 200, JSON.stringify(enrol.body));
    const app = new Authenticator(enrol.body.otpauthUri);
    const confirm = await call('POST', '/auth/mfa/confirm', user.accessToken, { code: app.code() });
    assert.equal(confirm.status, 200, JSON.stringify(confirm.body));
    return { user, app, recoveryCodes: (confirm.body.recoveryCodes as string[]).map((code) => rememberSecret(code)) };
  }

  before(async () => {
    api = await startTestApi({ env: { ...UNLIMITED, MFA_REQUIRED_ROLES: 'admin,doctor' } });
    // The first admin enrols like any other, then signs in with a code.
    const first = await createUser('admin');
    const restricted = await signIn(api, first);
    const enrol = await call('POST', '/auth/mfa/enroll', restricted.accessToken);
    const app = new Authenticator(enrol.body.otpauthUri);
    assert.equal((await call('POST', '/auth/mfa/confirm', restricted.accessToken, { code: app.code() })).status, 200);
    const signedInAdmin = await secondStep(await firstStep(first), { code: app.code(1) });
    assert.equal(signedInAdmin.status, 200);
    admin = { ...first, accessToken: signedInAdmin.body.accessToken, refreshToken: signedInAdmin.body.refreshToken };
  });
  after(() => api?.close());

  describe('a doctor enrols and signs in with codes from an authenticator app', () => {
    let doctor: SignedIn;
    let app: Authenticator;
    let recoveryCodes: string[];

    before(async () => {
      ({ user: doctor, app, recoveryCodes } = await enrolled('doctor'));
    });

    it('enrolment hands out an otpauth:// URI for SHA-1, 6 digits, 30 s, naming the clinic system and the user', async () => {
      assert.equal(app.totp.issuer, 'DMS');
      assert.equal(app.totp.label, doctor.email);
      assert.deepEqual([app.totp.algorithm, app.totp.digits, app.totp.period], ['SHA1', 6, 30]);
      assert.ok(app.totp.secret.bytes.length >= 16, '128 bits or more');
      const [row] = await auditRows('auth.mfa_enable', doctor.id);
      assert.deepEqual(row?.details, { recoveryCodes: 10 });
    });

    it('confirming answers ten distinct recovery codes, stored only as hashes', async () => {
      assert.equal(new Set(recoveryCodes).size, 10);
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select code_hash from auth_mfa_recovery_codes where user_id = $1', [doctor.id]);
      assert.equal(rows.length, 10);
      const stored = JSON.stringify(rows);
      for (const code of recoveryCodes) assert.ok(!stored.includes(code) && !stored.includes(code.replace(/-/g, '')));
    });

    it('turning MFA on ended the sessions signed in without it', async () => {
      assert.equal((await call('GET', '/auth/me', doctor.accessToken)).status, 401);
    });

    it('the password alone answers mfaRequired and an mfaToken, no access token; the code then answers the token pair', async () => {
      const signedInWithCode = await secondStep(await firstStep(doctor), { code: app.code(1) });
      assert.equal(signedInWithCode.status, 200, JSON.stringify(signedInWithCode.body));
      assert.equal(signedInWithCode.body.restricted, undefined);
      const me = await call('GET', '/auth/me', signedInWithCode.body.accessToken);
      assert.deepEqual([me.status, me.body.id], [200, doctor.id]);
      const again = await call('POST', '/auth/mfa/enroll', signedInWithCode.body.accessToken);
      assert.deepEqual([again.status, again.body.error], [409, 'mfa_already_enabled'], 'the secret is handed out once');
      assert.ok(!JSON.stringify(again.body).includes(app.totp.secret.base32));
      const [row] = (await auditRows('auth.login')).filter((r) => r.actor_id === doctor.id).slice(-1);
      assert.deepEqual(row?.details, { method: 'totp' });
    });

    it('a code is single-use: the same code again, or the one that confirmed enrolment, is refused like a wrong password', async () => {
      const used = app.code(1);
      for (const code of [used, app.code(0)]) {
        const res = await secondStep(await firstStep(doctor), { code });
        assert.deepEqual([res.status, res.body.error], [401, 'invalid_credentials'], code);
      }
      assert.ok(api.logs.records('auth_login_bad_mfa_code').some((line) => line.userId === doctor.id && line.reason === 'bad_mfa_code'));
    });

    it('a recovery code signs in once; the same recovery code again is refused', async () => {
      const recoveryCode = recoveryCodes[0]!;
      const first = await secondStep(await firstStep(doctor), { recoveryCode: recoveryCode.toUpperCase() });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const [row] = (await auditRows('auth.login')).filter((r) => r.actor_id === doctor.id).slice(-1);
      assert.deepEqual(row?.details, { method: 'recovery_code', recoveryCodesLeft: 9 });
      const again = await secondStep(await firstStep(doctor), { recoveryCode });
      assert.deepEqual([again.status, again.body.error], [401, 'invalid_credentials']);
    });

    it('an mfaToken is single-use and refuses a code of another user', async () => {
      const mfaToken = await firstStep(doctor);
      const other = await enrolled('staff');
      assert.equal((await secondStep(mfaToken, { recoveryCode: other.recoveryCodes[0]! })).status, 401);
      const ok = await secondStep(mfaToken, { recoveryCode: recoveryCodes[1]! });
      assert.equal(ok.status, 200, 'a wrong code does not spend the challenge');
      assert.equal((await secondStep(mfaToken, { recoveryCode: recoveryCodes[2]! })).status, 401, 'a used challenge');
      assert.equal((await secondStep(rememberSecret(randomUUID()), { code: '123456' })).status, 401, 'an unknown token');
      const both = await api.request('POST', '/auth/login/mfa', { body: { mfaToken, code: '123456', recoveryCode: recoveryCodes[3] } });
      assert.equal(both.status, 422);
    });
  });

  describe('wrong codes count towards the same lock-out as wrong passwords', () => {
    it('ten wrong codes lock the account: then even the right code is refused', async () => {
      const { user, app } = await enrolled('doctor');
      for (let i = 0; i < 10; i++) {
        const mfaToken = await firstStep(user);
        assert.equal((await secondStep(mfaToken, { code: i % 2 ? '000000' : '999999' })).status, 401);
      }
      const locked = await secondStep(await firstStep(user).catch(() => 'locked'), { code: app.code(1) });
      assert.equal(locked.status, 401);
      const [lockout] = await auditRows('auth.lockout', user.id);
      assert.ok(lockout, 'audited as auth.lockout');
    });

    it('an mfaToken closes after five wrong codes', async () => {
      const { user, recoveryCodes } = await enrolled('staff');
      const mfaToken = await firstStep(user);
      for (let i = 0; i < 5; i++) assert.equal((await secondStep(mfaToken, { code: '000000' })).status, 401);
      assert.equal((await secondStep(mfaToken, { recoveryCode: recoveryCodes[0]! })).status, 401);
    });
  });

  describe('under the mandatory policy, an admin without MFA can do nothing but enrol', () => {
    it('signs in to a session restricted to enrolment, which every other operation of the document refuses', async () => {
      const user = await createUser('admin');
      const res = await login(user);
      assert.equal(res.status, 200);
      assert.equal(res.body.restricted, 'mfa_enrolment');
      const token = rememberSecret(res.body.accessToken as string);
      rememberSecret(res.body.refreshToken as string);
      assert.deepEqual(await operationsServing(token, 'mfa_enrolment'), ['post /auth/logout', 'post /auth/mfa/confirm', 'post /auth/mfa/enroll']);
      assert.ok(api.logs.records('auth_error').some((line) => line.reason === 'restricted_session' && line.userId === user.id));

      // A refreshed pair is as restricted as the one it replaces.
      const refreshed = await api.request('POST', '/auth/refresh', { body: { refreshToken: res.body.refreshToken } });
      assert.equal(refreshed.body.restricted, 'mfa_enrolment');
      rememberSecret(refreshed.body.accessToken as string);
      rememberSecret(refreshed.body.refreshToken as string);
      assert.equal((await call('GET', '/admin/users', refreshed.body.accessToken)).status, 403);

      // Enrolling ends the restricted session; signing in with a code opens the admin routes.
      const enrol = await call('POST', '/auth/mfa/enroll', refreshed.body.accessToken);
      const app = new Authenticator(enrol.body.otpauthUri);
      assert.equal((await call('POST', '/auth/mfa/confirm', refreshed.body.accessToken, { code: app.code() })).status, 200);
      assert.equal((await call('POST', '/auth/mfa/enroll', refreshed.body.accessToken)).status, 401, 'the restricted session ended');
      const full = await secondStep(await firstStep(user), { code: app.code(1) });
      assert.equal((await call('GET', '/admin/users', full.body.accessToken)).status, 200);
    });

    it('a role the policy does not cover signs in without MFA, and may turn MFA off with its password; a covered role may not', async () => {
      const staff = await signIn(api, await createUser('staff'));
      assert.equal((await call('GET', '/patients', staff.accessToken)).status, 200);
      const { user, app } = await enrolled('staff');
      const session = await secondStep(await firstStep(user), { code: app.code(1) });
      const wrong = await call('DELETE', '/auth/mfa', session.body.accessToken, { password: 'not-the-password' });
      assert.deepEqual([wrong.status, wrong.body.error], [403, 'wrong_password']);
      assert.equal((await call('DELETE', '/auth/mfa', session.body.accessToken, { password: user.password })).status, 204);
      const plain = await login(user);
      assert.ok(plain.body.accessToken, 'the password alone signs in again');
      rememberSecret(plain.body.accessToken as string);
      rememberSecret(plain.body.refreshToken as string);

      const doctor = await enrolled('doctor');
      const doctorSession = await secondStep(await firstStep(doctor.user), { code: doctor.app.code(1) });
      const refused = await call('DELETE', '/auth/mfa', doctorSession.body.accessToken, { password: doctor.user.password });
      assert.deepEqual([refused.status, refused.body.error], [409, 'mfa_required']);
    });
  });

  describe("an admin resets a user's MFA", () => {
    it('turns it off, ends every session of the user, and is audited; under the policy the user enrols again', async () => {
      const { user, app } = await enrolled('doctor');
      const listed = async () => (await call('GET', `/admin/users?email=${encodeURIComponent(user.email)}`, admin.accessToken)).body.items[0].mfaEnabled as boolean;
      assert.equal(await listed(), true, 'the admin sees MFA on');
      const session = await secondStep(await firstStep(user), { code: app.code(1) });
      const reset = await call('DELETE', `/admin/users/${user.id}/mfa`, admin.accessToken);
      assert.equal(reset.status, 204);
      assert.equal((await call('GET', '/patients', session.body.accessToken)).status, 401);
      const [row] = await auditRows('user.mfa_reset', user.id);
      assert.equal(row?.actor_id, admin.id);
      assert.deepEqual(row?.details, { hadMfa: true });
      assert.equal(await listed(), false);
      const again = await login(user);
      assert.equal(again.body.restricted, 'mfa_enrolment');
      rememberSecret(again.body.accessToken as string);
      rememberSecret(again.body.refreshToken as string);
    });
  });

  describe('passwords: a forced reset and a change by the user', () => {
    it('mustChangePassword ends the sessions; the next sign-in can only change the password, then signs in again', async () => {
      const user = await signIn(api, await createUser('staff'));
      const forced = await call('PATCH', `/admin/users/${user.id}`, admin.accessToken, { mustChangePassword: true });
      assert.deepEqual([forced.status, forced.body.mustChangePassword], [200, true]);
      assert.equal((await call('GET', '/patients', user.accessToken)).status, 401);

      const restricted = await login(user);
      assert.equal(restricted.body.restricted, 'password_change');
      const token = rememberSecret(restricted.body.accessToken as string);
      rememberSecret(restricted.body.refreshToken as string);
      assert.deepEqual(await operationsServing(token, 'password_change'), ['post /auth/logout', 'post /auth/password']);

      const newPassword = strongPassword();
      const wrong = await call('POST', '/auth/password', token, { currentPassword: 'not-the-password', newPassword });
      assert.deepEqual([wrong.status, wrong.body.error], [403, 'wrong_password']);
      const weak = await call('POST', '/auth/password', token, { currentPassword: user.password, newPassword: 'qwertyuiopas' });
      assert.deepEqual([weak.status, Object.keys(weak.body.fields ?? {})], [422, ['newPassword']]);
      assert.equal((await call('POST', '/auth/password', token, { currentPassword: user.password, newPassword })).status, 204);
      assert.equal((await call('GET', '/auth/me', token)).status, 401, 'the restricted session ended with the change');
      const rows = await auditRows('user.password_change', user.id);
      assert.deepEqual(rows.map((r) => [r.outcome, r.details]), [['failure', { reason: 'bad_password' }], ['success', { forced: true }]]);

      const after = await signIn(api, { ...user, password: newPassword });
      assert.equal((await call('GET', '/patients', after.accessToken)).status, 200);
    });

    it("a user's own change keeps this session and ends every other one", async () => {
      const user = await createUser('staff');
      const here = await signIn(api, user);
      const elsewhere = await signIn(api, user);
      const newPassword = strongPassword();
      assert.equal((await call('POST', '/auth/password', here.accessToken, { currentPassword: user.password, newPassword })).status, 204);
      assert.equal((await call('GET', '/auth/me', here.accessToken)).status, 200);
      assert.equal((await call('GET', '/auth/me', elsewhere.accessToken)).status, 401);
      assert.equal((await login(user)).status, 401, 'the old password is gone');
    });
  });

  describe('a user lists their own sessions and ends one', () => {
    it('lists the live sessions, marks the current one, ends another, and cannot end someone else\'s', async () => {
      const user = await createUser('staff');
      const here = await signIn(api, user);
      const elsewhere = await signIn(api, user);
      const stranger = await signIn(api, await createUser('staff'));
      const list = await call('GET', '/auth/sessions', here.accessToken);
      assert.equal(list.status, 200);
      assert.equal(list.body.items.length, 2);
      assert.equal(list.body.nextCursor, null);
      const [current, other] = [list.body.items.find((s: { current: boolean }) => s.current), list.body.items.find((s: { current: boolean }) => !s.current)];
      assert.ok(current && other);
      assert.equal(current.ip, '127.0.0.1');

      assert.equal((await call('DELETE', `/auth/sessions/${other.id}`, stranger.accessToken)).status, 404, "another user's session");
      assert.equal((await call('DELETE', `/auth/sessions/${other.id}`, here.accessToken)).status, 204);
      assert.equal((await call('GET', '/auth/me', elsewhere.accessToken)).status, 401);
      assert.equal((await call('DELETE', `/auth/sessions/${other.id}`, here.accessToken)).status, 404, 'already ended');
      assert.equal((await call('GET', '/auth/sessions', here.accessToken)).body.items.length, 1);
      const [row] = await auditRows('session.revoke', other.id);
      assert.equal(row?.actor_id, user.id);
    });
  });
});

describe('the second step of a sign-in shares the login rate limit (RATE_LIMIT_LOGIN_MAX)', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ env: { RATE_LIMIT_LOGIN_MAX: '3', RATE_LIMIT_SENSITIVE_MAX: '100000' } });
  });
  after(() => api?.close());

  it('counts code attempts and password attempts against one budget per client: past it, 429 for both', async () => {
    const attempt = () => api.request('POST', '/auth/login/mfa', { body: { mfaToken: rememberSecret(randomUUID().repeat(2)), code: '123456' } });
    for (let i = 0; i < 3; i++) assert.equal((await attempt()).status, 401);
    const limited = await attempt();
    assert.deepEqual([limited.status, limited.body.error], [429, 'rate_limited']);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    const login = await api.request('POST', '/auth/login', { body: { email: 'nobody@test.dms', password: 'not-a-real-password' } });
    assert.equal(login.status, 429, 'the password step shares the budget');
    assert.ok(api.logs.records('auth_login_rate_limited').length >= 2);
  });
});

describe('MFA_REQUIRED_ROLES: which roles must sign in with MFA', () => {
  const base = { DATABASE_URL: 'postgres://u@h/d', AWS_REGION: 'us-east-2', XRAY_BUCKET: 'x', AUDIT_BUCKET: 'a', JWT_KEYS: JSON.stringify([{ kid: 'k', alg: 'HS256', secret: 'x'.repeat(32) }]), S3_ENDPOINT: 'http://s3.local' };

  it('defaults to admin and doctor in production, to none elsewhere (the test suite signs in without MFA)', () => {
    assert.deepEqual(loadConfig({ ...base, NODE_ENV: 'production' }).mfaRequiredRoles, ['admin', 'doctor']);
    assert.deepEqual(loadConfig({ NODE_ENV: 'test' }).mfaRequiredRoles, []);
    assert.deepEqual(loadConfig({ NODE_ENV: 'development' }).mfaRequiredRoles, []);
  });

  it('takes a comma-separated list of roles, or none, and names the variable for an unknown role', () => {
    assert.deepEqual(loadConfig({ NODE_ENV: 'test', MFA_REQUIRED_ROLES: 'admin, auditor' }).mfaRequiredRoles, ['admin', 'auditor']);
    assert.deepEqual(loadConfig({ ...base, NODE_ENV: 'production', MFA_REQUIRED_ROLES: 'none' }).mfaRequiredRoles, []);
    assert.throws(() => loadConfig({ NODE_ENV: 'test', MFA_REQUIRED_ROLES: 'admin,root' }), /^ConfigError: MFA_REQUIRED_ROLES: unknown role "root"/);
  });
});
