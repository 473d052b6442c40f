import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { reportHeavyUsers } from '../../api/audit/accesses.js';
import { runCommand } from '../../api/cli.js';
import { createLogger } from '../../api/logger.js';
import { LogCapture, sharedDatabase, type TestApi } from '../support/api.js';
import { auditRows, signedIn, type SignedIn } from '../support/auth.js';
import { startClinic } from '../support/s3.js';

describe('the auditors\' questions of the access records (issue 16)', function () {
  this.timeout(60_000);
  let api: TestApi, staff: SignedIn, doctor: SignedIn, auditor: SignedIn, admin: SignedIn;
  let reader: SignedIn, bulkReader: SignedIn;
  const patients: string[] = [];
  let from: string;
  let to: string;

  const call = (user: SignedIn, path: string) => api.request('GET', path, { token: user.accessToken });
  const window = () => `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;

  before(async () => {
    ({ api, staff, doctor, auditor, admin } = await startClinic());
    [reader, bulkReader] = await Promise.all([signedIn(api, 'staff'), signedIn(api, 'staff')]);
    from = new Date(Date.now() - 60_000).toISOString();
    for (let i = 0; i < 5; i++) patients.push((await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: `Scope ${i}`, dateOfBirth: '1980-01-01' } })).body.id);
    const visit = (await api.request('POST', `/patients/${patients[0]}/visits`, { token: doctor.accessToken, body: { visitedAt: new Date().toISOString(), reason: 'r' } })).body;
    // The reader: patient 0 twice (demographics) and its visit once; patient 1 once.
    await call(reader, `/patients/${patients[0]}`);
    await call(reader, `/patients/${patients[0]}`);
    await call(reader, `/visits/${visit.id}`);
    await call(reader, `/patients/${patients[1]}`);
    // The bulk reader: each of the five patients, one by one.
    for (const id of patients) await call(bulkReader, `/patients/${id}`);
    to = new Date(Date.now() + 60_000).toISOString();
  });
  after(() => api?.close());

  it('answers every access to a patient in a window, newest first, paged (accounting of disclosures)', async () => {
    const seen: { actorId: string; kind: string; route: string; requestId: string }[] = [];
    let cursor: string | null = null;
    do {
      const page = await call(auditor, `/admin/audit/accesses/patients/${patients[0]}?${window()}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen.map((a) => [a.actorId, a.kind, a.route]), [
      [bulkReader.id, 'demographics', '/patients/:id'],
      [reader.id, 'visit', '/visits/:id'],
      [reader.id, 'demographics', '/patients/:id'],
      [reader.id, 'demographics', '/patients/:id'],
    ]);
    assert.ok(seen.every((a) => typeof a.requestId === 'string'));
    const earlier = await call(auditor, `/admin/audit/accesses/patients/${patients[0]}?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z`);
    assert.deepEqual(earlier.body.items, [], 'only the window');
  });

  it('answers every patient a user accessed in a window, with counts by kind', async () => {
    const res = await call(admin, `/admin/audit/accesses/users/${reader.id}?${window()}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const byPatient = Object.fromEntries(res.body.items.map((p: { patientId: string }) => [p.patientId, p]));
    assert.deepEqual(Object.keys(byPatient).sort(), [patients[0], patients[1]].sort());
    assert.deepEqual(byPatient[patients[0]!].byKind, { demographics: 2, visit: 1 });
    assert.equal(byPatient[patients[0]!].accesses, 3);
    assert.deepEqual(byPatient[patients[1]!].byKind, { demographics: 1 });
  });

  it('names the users who accessed more than N distinct patients in a window', async () => {
    const res = await call(auditor, `/admin/audit/accesses/heavy-users?${window()}&minPatients=4`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const heavy = res.body.items.find((u: { actorId: string }) => u.actorId === bulkReader.id);
    assert.deepEqual(heavy, { actorId: bulkReader.id, patients: 5, accesses: 5 });
    assert.ok(!res.body.items.some((u: { actorId: string }) => u.actorId === reader.id), 'two patients is not more than four');
  });

  it('is for auditors and admins, checks its window, and audits each question', async () => {
    assert.equal((await call(staff, `/admin/audit/accesses/users/${reader.id}?${window()}`)).status, 403);
    assert.equal((await call(doctor, `/admin/audit/accesses/heavy-users?${window()}&minPatients=1`)).status, 403);
    const missing = await call(auditor, `/admin/audit/accesses/heavy-users?minPatients=1`);
    assert.equal(missing.status, 422);
    assert.deepEqual(Object.keys(missing.body.fields).sort(), ['from', 'to']);
    assert.equal((await call(auditor, `/admin/audit/accesses/heavy-users?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&minPatients=1`)).status, 422, 'more than a year');
    assert.equal((await call(auditor, `/admin/audit/accesses/heavy-users?${window()}&minPatients=0`)).status, 422);
    assert.equal((await call(auditor, `/admin/audit/accesses/patients/not-a-uuid?${window()}`)).status, 404);
    const questions = (await auditRows('audit.read')).filter((r) => r.actor_id === auditor.id).map((r) => (r.details as { query?: string }).query);
    assert.ok(['patient_accesses', 'heavy_users'].every((q) => questions.includes(q)), questions.join(','));
  });

  it('answers the same questions from the command line (npm run audit:accesses), every page', async () => {
    const ask = async (...flags: string[]) => {
      const out = new LogCapture();
      const code = await runCommand(['audit:accesses', ...flags], { env: { NODE_ENV: 'test', DATABASE_URL: (await sharedDatabase()).appUrl, LOG_LEVEL: 'error' }, stdout: out, stderr: new LogCapture() });
      return { code, result: JSON.parse(out.lines[0]!) };
    };
    const seen = await ask(`--user=${reader.id}`, `--from=${from}`, `--to=${to}`);
    assert.equal(seen.code, 0, JSON.stringify(seen.result));
    assert.deepEqual(seen.result.patients.map((p: { patientId: string }) => p.patientId).sort(), [patients[0], patients[1]].sort());
    const accesses = await ask(`--patient=${patients[0]}`, `--from=${from}`, `--to=${to}`);
    assert.equal(accesses.result.accesses.length, 4);
    const heavy = await ask('--min-patients=4', `--from=${from}`, `--to=${to}`);
    assert.ok(heavy.result.users.some((u: { actorId: string }) => u.actorId === bulkReader.id));
    const usage = await ask('--min-patients=4', '--from=yesterday', `--to=${to}`);
    assert.equal(usage.code, 1);
    assert.equal(usage.result.error, 'usage');
  });

  it('logs phi_access_heavy_user, the bulk-patient-access alarm\'s metric, for each user above the threshold in the last hour', async () => {
    const logs = new LogCapture();
    const found = await reportHeavyUsers(api.api.deps.orm.em.fork(), createLogger({ level: 'info', env: 'test', stream: logs }), 4);
    assert.ok(found >= 1);
    const line = logs.records('phi_access_heavy_user').find((r) => r.actorId === bulkReader.id);
    assert.deepEqual(line && { patients: line.patients, accesses: line.accesses, windowMinutes: line.windowMinutes, threshold: line.threshold }, { patients: 5, accesses: 5, windowMinutes: 60, threshold: 4 });
    assert.ok(!logs.records('phi_access_heavy_user').some((r) => r.actorId === reader.id));
  });

  it('finds a record as soon as its response was answered', async () => {
    const id = patients[4]!;
    const late = await signedIn(api, 'doctor');
    const requestId = `late-${randomUUID()}`;
    await api.request('GET', `/patients/${id}`, { token: late.accessToken, headers: { 'x-request-id': requestId } });
    const res = await call(auditor, `/admin/audit/accesses/patients/${id}?from=${encodeURIComponent(from)}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    assert.ok(res.body.items.some((a: { requestId: string }) => a.requestId === requestId));
  });
});
