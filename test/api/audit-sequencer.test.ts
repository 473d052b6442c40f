import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request, migratedDatabase, migrateDatabase, TEST_JWT_KEY, type TestApi, type TestResponse } from '../support/api.js';
import { auditChained } from '../support/audit.js';
import { createUser, signIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { APP_ROLE, createDatabase, eventually, freePort, pgUrl, sql, startOwnServer, type OwnServer } from '../support/postgres.js';
import { processClient, startApiProcess, started, type ApiProcess } from '../support/process.js';

/** An API process on `databaseUrl`, listening on a port of its own. */
async function apiProcess(databaseUrl: string): Promise<{ process: ApiProcess; base: string; port: number }> {
  const port = await freePort();
  const process = startApiProcess({
    NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', ...UNLIMITED,
    JWT_KEYS: JSON.stringify([TEST_JWT_KEY]), XRAY_BUCKET: 'x', AUDIT_BUCKET: 'a', AWS_REGION: 'us-east-1',
  });
  await started(process);
  return { process, base: `http://127.0.0.1:${port}`, port };
}

/** One request of the load: a registration (an audited change) or a read of a patient (an access record). */
interface Sent {
  kind: 'write' | 'read';
  requestId: string;
  res: TestResponse | undefined;
}

async function load(bases: string[], staff: SignedIn, patientId: string, requests: number, concurrency: number): Promise<Sent[]> {
  const sent: Sent[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < requests; i = next++) {
      const kind = i % 2 === 0 ? 'write' : 'read';
      const requestId = `load-${kind}-${randomUUID()}`;
      const base = bases[i % bases.length]!;
      const headers = { 'x-request-id': requestId };
      const res = await (kind === 'write'
        ? request(base, 'POST', '/patients', { token: staff.accessToken, headers, body: { fullName: `Load ${i}`, dateOfBirth: '1990-01-01' } })
        : request(base, 'GET', `/patients/${patientId}`, { token: staff.accessToken, headers })).catch(() => undefined);
      sent.push({ kind, requestId, res });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return sent;
}

/** Every answered success has its record on the trail: a change its `patient.create`, a read its access record. */
async function assertEverySuccessRecorded(ownerUrl: string, sent: Sent[]): Promise<number> {
  const answered = sent.filter((s) => s.res && s.res.status < 300);
  const { rows } = await sql(ownerUrl, `select request_id, action, entity_id from audit_trail where request_id = any($1)`, [answered.map((s) => s.requestId)]);
  const byRequest = new Map(rows.map((row) => [row.request_id as string, row]));
  for (const { kind, requestId, res } of answered) {
    const row = byRequest.get(requestId);
    assert.ok(row, `${kind} ${requestId} answered ${res!.status} but left no record`);
    if (kind === 'write') assert.deepEqual([row.action, row.entity_id], ['patient.create', res!.body.id]);
    else assert.equal(row.action, 'phi.access');
  }
  return answered.length;
}

describe('the sequencer with two API processes on one database', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  const processes: ApiProcess[] = [];
  after(async () => {
    for (const process of processes) process.child.kill('SIGKILL');
    await db?.drop();
  });

  it('elects one sequencer, keeps one chain under concurrent load on both, and hands over when the leader dies', async function () {
    this.timeout(180_000);
    db = await migratedDatabase();
    const [a, b] = [await apiProcess(db.appUrl), await apiProcess(db.appUrl)];
    processes.push(a!.process, b!.process);
    const leaders = () => processes.filter((p) => p.events('audit_sequencer_leading').length > 0);
    await eventually(async () => assert.equal(leaders().length, 1), { timeoutMs: 20_000 });

    const staff = await signIn(processClient(a!.port) as TestApi, await createUser('staff', { databaseUrl: db.ownerUrl }));
    const auditor = await signIn(processClient(b!.port) as TestApi, await createUser('auditor', { databaseUrl: db.ownerUrl }));
    const patient = await request(a!.base, 'POST', '/patients', { token: staff.accessToken, body: { fullName: 'Read Often', dateOfBirth: '1980-01-01' } });
    const sent = await load([a!.base, b!.base], staff, patient.body.id, 400, 32);
    assert.deepEqual([...new Set(sent.map((s) => s.res?.status))].sort(), [200, 201]);
    await auditChained(db.ownerUrl);
    assert.equal(await assertEverySuccessRecorded(db.ownerUrl, sent), 400);
    assert.equal(leaders().length, 1, 'never two sequencers');

    const report = await request(b!.base, 'GET', '/admin/audit/verify', { token: auditor.accessToken });
    assert.equal(report.body.ok, true, JSON.stringify(report.body));
    // The verify records its own audit.verify after it has read the chain, and the sequencer chains
    // that at once: count the rows up to the head it verified, not the rows there are by now.
    const chained = (await sql(db.ownerUrl, 'select count(*)::int as n from audit_logs where seq <= (select seq from audit_logs where hash = $1)', [report.body.headHash])).rows[0].n;
    assert.equal(report.body.checked, chained);
    assert.ok(chained > 400);

    // The leader dies: PostgreSQL ends its session and its lock; the other task takes over.
    const [leader] = leaders();
    const survivor = leader === a!.process ? b! : a!;
    leader!.child.kill('SIGKILL');
    await leader!.exited;
    const more = await load([survivor.base], staff, patient.body.id, 20, 4);
    await eventually(async () => assert.equal(survivor.process.events('audit_sequencer_leading').length, 1), { timeoutMs: 20_000 });
    await auditChained(db.ownerUrl);
    assert.equal(await assertEverySuccessRecorded(db.ownerUrl, more), 20);
    assert.equal((await request(survivor.base, 'GET', '/admin/audit/verify', { token: auditor.accessToken })).body.ok, true);
  });
});

describe('no record lost when the database stops mid-load', () => {
  let server: OwnServer;
  let api: ApiProcess | undefined;
  after(() => {
    api?.child.kill('SIGKILL');
    server?.destroy();
  });

  it('has a record for every success a client was answered, changes and reads alike', async function () {
    this.timeout(180_000);
    server = await startOwnServer();
    await sql(pgUrl('postgres', { port: server.port }), 'create database dms');
    const ownerUrl = pgUrl('dms', { port: server.port });
    await migrateDatabase(ownerUrl);
    const started = await apiProcess(pgUrl('dms', { port: server.port, user: APP_ROLE }));
    api = started.process;
    const staff = await signIn(processClient(started.port) as TestApi, await createUser('staff', { databaseUrl: ownerUrl }));
    const patient = await request(started.base, 'POST', '/patients', { token: staff.accessToken, body: { fullName: 'Read In Outage', dateOfBirth: '1980-01-01' } });

    // The database stops once the load is under way, with requests in flight.
    const running = load([started.base], staff, patient.body.id, 600, 16);
    await eventually(async () => assert.ok((await sql(ownerUrl, 'select count(*)::int as n from patients')).rows[0].n > 100), { timeoutMs: 60_000 });
    server.stop();
    const sent = await running;
    server.start();

    const statuses = new Set(sent.map((s) => s.res?.status));
    assert.ok(statuses.has(503), `some requests met the outage: ${[...statuses].join(', ')}`);
    const answered = await assertEverySuccessRecorded(ownerUrl, sent);
    assert.ok(answered > 100, `${answered} successes`);
    const { rows } = await sql(ownerUrl, `select count(*)::int as n from patients where full_name like 'Load %'`);
    assert.equal(rows[0].n, (await sql(ownerUrl, `select count(*)::int as n from audit_trail where action = 'patient.create'`)).rows[0].n - 1, 'every committed patient has its record, and no record lacks its patient');
  });
});
