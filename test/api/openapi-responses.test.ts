import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TOTP, URI } from 'otpauth';
import { ROLES } from '../../api/db/entities.js';
import { BODY_LIMIT_BYTES } from '../../api/http/limits.js';
import { startTestApi, type TestApi, type TestResponse } from '../support/api.js';
import { createUser, rememberSecret, signIn, strongPassword, UNLIMITED, type SignedIn } from '../support/auth.js';
import { ResponseContract } from '../support/contract.js';
import { sharedS3, startClinic } from '../support/s3.js';

const run = promisify(execFile);
/** The clinic's web client, a configured CORS origin (CORS_ORIGINS). */
const WEB_CLIENT = 'https://app.dms.test';

interface LintProblem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
}

describe('the OpenAPI document passes redocly lint (recommended rules)', function () {
  this.timeout(60_000);

  it('has no error, on the document the API serves', async () => {
    const { api } = await startClinic();
    const dir = mkdtempSync(join(tmpdir(), 'dms-openapi-'));
    try {
      const served = await api.request('GET', '/openapi.json');
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(served.body));
      // `lint` exits 1 on errors; the JSON report on stdout says which, either way.
      const { stdout } = await run('node_modules/.bin/redocly', ['lint', file, '--extends', 'recommended', '--format', 'json'], { maxBuffer: 16 * 1024 * 1024 }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
      const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: LintProblem[] };
      const errors = report.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message}`);
      assert.deepEqual(errors, []);
      assert.equal(report.totals.errors, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await api.close();
    }
  });
});

/**
 * A whole clinical day, every route by every role and the error paths, each response checked
 * against the served document (test/support/contract.ts): an undeclared status, header or body
 * shape fails the test at the request that produced it.
 */
describe('every response of a clinical day matches the OpenAPI document', function () {
  this.timeout(180_000);
  let api: TestApi, contract: ResponseContract;
  let users: Record<(typeof ROLES)[number], SignedIn>;
  const ids: Record<string, string> = {};

  before(async () => {
    // Every request comes from the web client's origin, so every response also carries the CORS headers.
    const clinic = await startClinic({ CORS_ORIGINS: WEB_CLIENT });
    api = clinic.api;
    users = { staff: clinic.staff, doctor: clinic.doctor, admin: clinic.admin, auditor: clinic.auditor };
    contract = await ResponseContract.of(api);
  });
  after(() => api?.close());

  const call = (user: SignedIn | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse> =>
    contract.request(api, method, path, { ...(user ? { token: user.accessToken } : {}), ...(body === undefined ? {} : { body }), headers: { Origin: WEB_CLIENT, ...headers } });
  const expect = async (status: number, response: Promise<TestResponse>) => {
    const res = await response;
    assert.equal(res.status, status, JSON.stringify(res.body));
    return res;
  };

  it('serves the public routes as declared', async () => {
    const health = await expect(200, call(undefined, 'GET', '/health'));
    assert.equal(health.headers.get('access-control-allow-origin'), WEB_CLIENT, 'the CORS headers are checked too');
    await expect(200, call(undefined, 'GET', '/health/ready'));
    await expect(200, call(undefined, 'GET', '/openapi.json'));
  });

  it('signs in, refreshes, enrols in MFA, changes a password and ends sessions as declared', async () => {
    const user = await createUser('staff');
    await expect(401, call(undefined, 'POST', '/auth/login', { email: user.email, password: strongPassword() }));
    await expect(422, call(undefined, 'POST', '/auth/login', { email: user.email }));
    const login = await expect(200, call(undefined, 'POST', '/auth/login', { email: user.email, password: user.password }));
    const session: SignedIn = { ...user, accessToken: rememberSecret(login.body.accessToken), refreshToken: rememberSecret(login.body.refreshToken) };
    await expect(200, call(session, 'GET', '/auth/me'));
    const refreshed = await expect(200, call(undefined, 'POST', '/auth/refresh', { refreshToken: session.refreshToken }));
    await expect(401, call(undefined, 'POST', '/auth/refresh', { refreshToken: 'not-a-refresh-token' }));
    const fresh: SignedIn = { ...user, accessToken: rememberSecret(refreshed.body.accessToken), refreshToken: rememberSecret(refreshed.body.refreshToken) };

    const enrol = await expect(200, call(fresh, 'POST', '/auth/mfa/enroll'));
    const totp = URI.parse(rememberSecret(enrol.body.otpauthUri)) as TOTP;
    rememberSecret(totp.secret.base32);
    await expect(422, call(fresh, 'POST', '/auth/mfa/confirm', { code: 'abc' }));
    const confirmed = await expect(200, call(fresh, 'POST', '/auth/mfa/confirm', { code: totp.generate() }));
    for (const code of confirmed.body.recoveryCodes as string[]) rememberSecret(code);
    await expect(409, call(fresh, 'POST', '/auth/mfa/enroll'));
    const challenge = await expect(200, call(undefined, 'POST', '/auth/login', { email: user.email, password: user.password }));
    rememberSecret(challenge.body.mfaToken);
    await expect(401, call(undefined, 'POST', '/auth/login/mfa', { mfaToken: challenge.body.mfaToken, code: '000000' }));
    const second = await expect(200, call(undefined, 'POST', '/auth/login/mfa', { mfaToken: challenge.body.mfaToken, recoveryCode: confirmed.body.recoveryCodes[0] }));
    const withMfa: SignedIn = { ...user, accessToken: rememberSecret(second.body.accessToken), refreshToken: rememberSecret(second.body.refreshToken) };
    await expect(403, call(withMfa, 'DELETE', '/auth/mfa', { password: strongPassword() }));
    await expect(204, call(withMfa, 'DELETE', '/auth/mfa', { password: user.password }));
    await expect(404, call(withMfa, 'DELETE', '/auth/mfa', { password: user.password }));

    const sessions = await expect(200, call(withMfa, 'GET', '/auth/sessions'));
    const other = (sessions.body.items as { id: string; current: boolean }[]).find((s) => !s.current);
    if (other) await expect(204, call(withMfa, 'DELETE', `/auth/sessions/${other.id}`));
    await expect(404, call(withMfa, 'DELETE', `/auth/sessions/${randomUUID()}`));
    const newPassword = strongPassword();
    await expect(204, call(withMfa, 'POST', '/auth/password', { currentPassword: user.password, newPassword }));
    const again = await signIn(api, { ...user, password: newPassword });
    await expect(204, call(again, 'POST', '/auth/logout', { refreshToken: again.refreshToken }));
  });

  it('manages users as declared', async () => {
    const admin = users.admin;
    const email = `contract-${randomBytes(4).toString('hex')}@test.dms`;
    const created = await expect(201, call(admin, 'POST', '/admin/users', { email, password: strongPassword(), role: 'staff', name: 'Contract Staff' }));
    ids.user = created.body.id;
    await expect(409, call(admin, 'POST', '/admin/users', { email, password: strongPassword(), role: 'staff', name: 'Twin' }));
    await expect(200, call(admin, 'GET', `/admin/users?email=${encodeURIComponent(email)}`));
    await expect(200, call(admin, 'GET', `/admin/users/${ids.user}`));
    await expect(200, call(admin, 'PATCH', `/admin/users/${ids.user}`, { name: 'Renamed' }));
    await expect(204, call(admin, 'DELETE', `/admin/users/${ids.user}/mfa`));
    await expect(204, call(admin, 'POST', `/admin/users/${ids.user}/revoke-sessions`));
  });

  it('keeps records through a clinical day as declared', async () => {
    const { staff, doctor, admin } = users;
    const patient = await expect(201, call(staff, 'POST', '/patients', { fullName: 'Contract Patient', dateOfBirth: '1980-02-29', phone: '+1 555 0100' }));
    ids.patient = patient.body.id;
    const key = randomUUID();
    await expect(201, call(staff, 'POST', '/patients', { fullName: 'Once Only', dateOfBirth: '1990-01-01' }, { 'Idempotency-Key': key }));
    const replay = await expect(201, call(staff, 'POST', '/patients', { fullName: 'Once Only', dateOfBirth: '1990-01-01' }, { 'Idempotency-Key': key }));
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    await expect(200, call(staff, 'GET', '/patients?q=Contract%20Patient'));
    await expect(200, call(staff, 'GET', `/patients/${ids.patient}`));
    await expect(200, call(staff, 'PATCH', `/patients/${ids.patient}`, { notes: 'allergic to penicillin' }));

    const visit = await expect(201, call(staff, 'POST', `/patients/${ids.patient}/visits`, { visitedAt: '2024-05-01T09:30:00Z', reason: 'fracture', followUpAt: '2024-05-08T09:30:00Z' }));
    ids.visit = visit.body.id;
    await expect(200, call(staff, 'GET', `/patients/${ids.patient}/visits`));
    await expect(200, call(staff, 'GET', `/visits?from=${encodeURIComponent('2024-05-01T00:00:00+02:00')}&to=${encodeURIComponent('2024-05-02T00:00:00+02:00')}`));
    await expect(200, call(staff, 'GET', '/visits?followUpDue=2024-05-08'));
    await expect(200, call(staff, 'GET', `/visits/${ids.visit}`));
    await expect(200, call(staff, 'PATCH', `/visits/${ids.visit}`, { followUpNotes: 'check the cast' }));

    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(56)]);
    const xrays = `/patients/${ids.patient}/visits/${ids.visit}/xrays`;
    const xray = await expect(201, call(doctor, 'POST', xrays, { contentType: 'image/png', sizeBytes: png.length }));
    ids.xray = xray.body.xray.id;
    rememberSecret(new URL(xray.body.upload.url).searchParams.get('X-Amz-Signature')!);
    await expect(409, call(doctor, 'POST', `/xrays/${ids.xray}/complete`));
    await expect(409, call(doctor, 'GET', `/xrays/${ids.xray}/download`));
    assert.equal((await fetch(xray.body.upload.url, { method: 'PUT', headers: xray.body.upload.headers, body: png })).status, 200);
    await expect(200, call(doctor, 'POST', `/xrays/${ids.xray}/complete`));
    rememberSecret(new URL((await expect(200, call(doctor, 'GET', `/xrays/${ids.xray}/download`))).body.url).searchParams.get('X-Amz-Signature')!);
    await expect(409, call(doctor, 'DELETE', `/xrays/${ids.xray}`));
    await expect(200, call(doctor, 'GET', xrays));
    const pending = await expect(201, call(admin, 'POST', xrays, { contentType: 'image/png', sizeBytes: png.length }));
    rememberSecret(new URL(pending.body.upload.url).searchParams.get('X-Amz-Signature')!);
    await expect(204, call(admin, 'DELETE', `/xrays/${pending.body.xray.id}`));

    const medicineName = `Contractol ${randomBytes(3).toString('hex')}`;
    const medicine = await expect(201, call(admin, 'POST', '/medicines', { name: medicineName, form: 'tablet', strength: '5 mg' }));
    ids.medicine = medicine.body.id;
    await expect(409, call(admin, 'POST', '/medicines', { name: medicineName, form: 'tablet', strength: '5 mg' }));
    await expect(200, call(staff, 'GET', `/medicines?q=${encodeURIComponent(medicineName)}`));
    await expect(200, call(staff, 'GET', `/medicines/${ids.medicine}`));

    const items = [{ medicineId: ids.medicine, dose: '1 tablet', frequency: 'twice daily', durationDays: 5 }];
    const presetName = `Contract preset ${randomBytes(3).toString('hex')}`;
    const preset = await expect(201, call(doctor, 'POST', '/rx-presets', { name: presetName, items }));
    ids.preset = preset.body.id;
    await expect(409, call(doctor, 'POST', '/rx-presets', { name: presetName, items }));
    await expect(200, call(doctor, 'GET', '/rx-presets'));
    await expect(200, call(doctor, 'GET', `/rx-presets/${ids.preset}`));
    await expect(200, call(doctor, 'PATCH', `/rx-presets/${ids.preset}`, { items }));

    const rx = await expect(201, call(doctor, 'POST', `/patients/${ids.patient}/visits/${ids.visit}/rx`, { items, notes: 'after meals' }));
    ids.rx = rx.body.id;
    await expect(200, call(doctor, 'GET', `/patients/${ids.patient}/visits/${ids.visit}/rx`));
    await expect(200, call(admin, 'GET', `/rx/${ids.rx}`));

    await expect(200, call(doctor, 'GET', '/reports/visits?from=2024-05-01&to=2024-05-07'));
    await expect(422, call(doctor, 'GET', '/reports/visits?from=2024-05-07&to=2024-05-01'));
    await expect(200, call(users.auditor, 'GET', `/admin/audit?entityId=${ids.patient}`));
    await expect(200, call(users.auditor, 'GET', '/admin/audit/verify'));
  });

  /** A request path with each `{param}` filled with a real id of this flow's records. */
  function concrete(path: string): string {
    const byPrefix: Record<string, string | undefined> = {
      '/patients/{id}': ids.patient, '/visits/{id}': ids.visit, '/xrays/{id}': ids.xray, '/rx/{id}': ids.rx, '/medicines/{id}': ids.medicine,
      '/rx-presets/{id}': ids.preset, '/admin/users/{id}': ids.user, '/auth/sessions/{id}': randomUUID(),
      '/admin/audit/accesses/patients/{id}': ids.patient, '/admin/audit/accesses/users/{id}': ids.user,
    };
    const prefix = Object.keys(byPrefix).find((p) => path.startsWith(p));
    return path.replace('{pid}', ids.patient!).replace('{vid}', ids.visit!).replace('{id}', prefix ? byPrefix[prefix]! : '');
  }

  it('answers 401 without a token and 403 to every role a route does not name, on every route', async () => {
    assert.ok(ids.rx && ids.user, 'the records flow ran first');
    for (const op of contract.operations().filter((o) => o.roles)) {
      const path = concrete(op.path);
      await expect(401, call(undefined, op.method.toUpperCase(), path));
      for (const role of ROLES.filter((r) => !op.roles!.includes(r))) await expect(403, call(users[role], op.method.toUpperCase(), path));
    }
  });

  it('answers every read to every role it names', async () => {
    // The queries the reads need (one of from/to or followUpDue for the day view).
    // The access questions of issue 16 ask about a window: the last day.
    const window = `?from=${new Date(Date.now() - 86_400_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`;
    const needs: Record<string, string> = {
      '/reports/visits': '?from=2024-05-01&to=2024-05-07', '/visits': '?followUpDue=2024-05-08',
      '/admin/audit/accesses/patients/{id}': window, '/admin/audit/accesses/users/{id}': window, '/admin/audit/accesses/heavy-users': `${window}&minPatients=1`,
    };
    for (const op of contract.operations().filter((o) => o.roles && o.method === 'get')) {
      for (const role of op.roles as (typeof ROLES)[number][]) {
        const res = await call(users[role], 'GET', `${concrete(op.path)}${needs[op.path] ?? ''}`);
        assert.equal(res.status, 200, `${role} GET ${op.path}: ${JSON.stringify(res.body)}`);
      }
    }
  });

  it('answers 400, 413 and 415 to a bad body and 422 to an unknown query parameter, on every route that reads them', async () => {
    for (const op of contract.operations().filter((o) => o.roles)) {
      const user = users[op.roles![0] as (typeof ROLES)[number]];
      const [method, path] = [op.method.toUpperCase(), concrete(op.path)];
      if (method === 'GET') {
        if (op.path === '/auth/me' || op.path.includes('{') || op.path === '/admin/audit/verify') continue;
        await expect(422, call(user, method, `${path}?unknownParameter=1`));
        continue;
      }
      await expect(400, call(user, method, path, '{"not json', { 'content-type': 'application/json' }));
      await expect(415, call(user, method, path, 'plain text', { 'content-type': 'text/plain' }));
      await expect(413, call(user, method, path, JSON.stringify({ padding: 'x'.repeat(BODY_LIMIT_BYTES) }), { 'content-type': 'application/json' }));
    }
  });

  it('answers 404 for a record that does not exist, on every route that reads one by id', async () => {
    // Not the access questions: who looked at a patient or what a user looked at is asked of ids that
    // may be gone (a soft-deleted patient, a removed user), so an unknown id is an empty answer.
    const byId = contract.operations().filter((o) => o.roles && o.method === 'get' && o.path.includes('{') && !o.path.startsWith('/admin/audit/accesses/'));
    for (const op of byId) {
      const user = users[op.roles![0] as (typeof ROLES)[number]];
      await expect(404, call(user, 'GET', op.path.replace(/\{\w+\}/g, () => randomUUID())));
    }
  });

  it('deletes as declared', async () => {
    await expect(204, call(users.doctor, 'DELETE', `/rx-presets/${ids.preset}`));
    await expect(204, call(users.staff, 'DELETE', `/patients/${ids.patient}`));
    await expect(404, call(users.staff, 'GET', `/patients/${ids.patient}`));
  });

  it('answered every route with a success, and the flow met every error status the API returns', () => {
    const missing = contract.operations().filter((op) => ![...(contract.seen.get(op.operationId) ?? [])].some((s) => s >= 200 && s < 300));
    assert.deepEqual(missing.map((op) => `${op.method} ${op.path}`), []);
    const statuses = new Set([...contract.seen.values()].flatMap((s) => [...s]));
    for (const status of [400, 401, 403, 404, 409, 413, 415, 422]) assert.ok(statuses.has(status), `no ${status} was checked`);
  });
});

describe('429 and 503 responses match the OpenAPI document', function () {
  this.timeout(60_000);

  it('answers 429 with Retry-After and the rate-limit headers, signed in or not', async () => {
    const { s3 } = await sharedS3();
    const api = await startTestApi({ env: { ...UNLIMITED, RATE_LIMIT_LOGIN_MAX: '1', RATE_LIMIT_ROLE_MAX: 'admin=1,doctor=1,staff=1,auditor=1' }, config: { s3 } });
    try {
      const contract = await ResponseContract.of(api);
      const user = await createUser('staff');
      const first = await contract.request(api, 'POST', '/auth/login', { body: { email: user.email, password: user.password } });
      assert.equal(first.status, 200);
      const token = rememberSecret(first.body.accessToken as string);
      rememberSecret(first.body.refreshToken as string);
      const limited = await contract.request(api, 'POST', '/auth/login', { body: { email: user.email, password: user.password } });
      assert.equal(limited.status, 429);
      assert.equal((await contract.request(api, 'GET', '/patients', { token })).status, 200);
      const again = await contract.request(api, 'GET', '/patients', { token });
      assert.equal(again.status, 429);
      assert.ok(Number(again.headers.get('retry-after')) >= 1);
    } finally {
      await api.close();
    }
  });

  it('answers 503 when a dependency is missing (an API without its X-ray bucket)', async () => {
    const { s3 } = await sharedS3();
    const api = await startTestApi({ env: UNLIMITED, config: { s3: { ...s3, xrayBucket: undefined } } });
    try {
      const contract = await ResponseContract.of(api);
      const doctor = await signIn(api, await createUser('doctor'));
      const patient = await contract.request(api, 'POST', '/patients', { token: doctor.accessToken, body: { fullName: 'No Bucket', dateOfBirth: '1970-01-01' } });
      const visit = await contract.request(api, 'POST', `/patients/${patient.body.id}/visits`, { token: doctor.accessToken, body: { visitedAt: '2024-05-01T09:30:00Z', reason: 'x' } });
      const res = await contract.request(api, 'POST', `/patients/${patient.body.id}/visits/${visit.body.id}/xrays`, { token: doctor.accessToken, body: { contentType: 'image/png', sizeBytes: 64 } });
      assert.equal(res.status, 503);
      assert.equal(res.body.error, 'unavailable');
    } finally {
      await api.close();
    }
  });
});
