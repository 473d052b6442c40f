import assert from 'node:assert/strict';
import pg from 'pg';
import { request, startTestApi, migrateDatabase, TEST_JWT_KEY, type TestApi } from '../support/api.js';
import { createUser, signIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { APP_ROLE, eventually, freePort, pgUrl, sql, startOwnServer, type OwnServer } from '../support/postgres.js';
import { processClient, startApiProcess, started } from '../support/process.js';

describe('database outage and recovery', () => {
  let server: OwnServer;
  let api: TestApi;
  let staff: SignedIn;
  before(async function () {
    this.timeout(60_000);
    server = await startOwnServer();
    await sql(pgUrl('postgres', { port: server.port }), 'create database dms');
    const url = pgUrl('dms', { port: server.port });
    await migrateDatabase(url);
    api = await startTestApi({ env: { DATABASE_URL: url, ...UNLIMITED }, withoutReplica: true });
    staff = await signIn(api, await createUser('staff', { databaseUrl: url }));
  });
  after(async () => {
    await api?.close();
    server?.destroy();
  });

  it('answers 503 while PostgreSQL is down, naming the primary, and recovers without a restart', async function () {
    this.timeout(60_000);
    assert.equal((await api.request('GET', '/health/ready')).status, 200);
    assert.equal((await api.request('GET', '/patients', { token: staff.accessToken })).status, 200);

    server.stop();
    const ready = await api.request('GET', '/health/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error, 'unavailable');
    assert.deepEqual(ready.body.dependencies, { primary: 'down', 'primary-pool': 'down' });
    const route = await api.request('GET', '/patients', { token: staff.accessToken });
    assert.equal(route.status, 503);
    assert.deepEqual(Object.keys(route.body).sort(), ['error', 'message', 'requestId']);
    assert.equal(route.body.error, 'unavailable');
    const write = await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: 'Ada Outage', dateOfBirth: '1990-01-01' } });
    assert.equal(write.status, 503, 'a write while the database is away is refused, not half-done');
    assert.equal((await api.request('GET', '/health')).status, 200, 'liveness touches no dependency');
    assert.equal(api.logs.records('unhandled_error').length, 0, 'an outage is not an unhandled error');

    server.start();
    await eventually(async () => assert.equal((await api.request('GET', '/health/ready')).status, 200), { timeoutMs: 20_000 });
    await eventually(async () => assert.equal((await api.request('GET', '/patients', { token: staff.accessToken })).status, 200), { timeoutMs: 20_000 });
    const created = await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: 'Ada Back', dateOfBirth: '1990-01-01' } });
    assert.equal(created.status, 201);
  });
});

/** Every patient insert waits, in its transaction, for the test's advisory lock (a held-open transaction). */
const HOLD_KEY = 2020;
const HOLD_INSERTS = `
  create function hold_visit_insert() returns trigger language plpgsql as $$
  begin perform pg_advisory_xact_lock_shared(${HOLD_KEY}); return new; end $$;
  create trigger hold_visit_insert before insert on visits for each row execute function hold_visit_insert();`;

/** Connections of the API's role waiting, inside their transaction, on the held advisory lock. */
async function heldInserts(ownerUrl: string): Promise<number> {
  const { rows } = await sql(ownerUrl, `select count(*)::int as n from pg_stat_activity
    where usename = $1 and wait_event_type = 'Lock' and wait_event = 'advisory'`, [APP_ROLE]);
  return rows[0].n as number;
}

describe('the pool after an outage with transactions open', () => {
  const POOL_MAX = 10;
  let server: OwnServer;
  let ownerUrl: string;
  let appUrl: string;
  before(async function () {
    this.timeout(60_000);
    server = await startOwnServer();
    await sql(pgUrl('postgres', { port: server.port }), 'create database dms');
    ownerUrl = pgUrl('dms', { port: server.port });
    appUrl = pgUrl('dms', { port: server.port, user: APP_ROLE });
    await migrateDatabase(ownerUrl);
    await sql(ownerUrl, HOLD_INSERTS);
  });
  after(() => server?.destroy());

  /**
   * Takes the advisory lock every visit insert waits for; `release()` lets them commit. A visit is
   * added in a transaction (the patient locked, the visit, its audit record), which holds a pool
   * connection while it waits; new patients would not: a turn's creates share one statement.
   */
  async function holdInserts(): Promise<{ release(): Promise<void> }> {
    const holder = new pg.Client({ connectionString: ownerUrl });
    holder.on('error', () => undefined); // the outage terminates it
    await holder.connect();
    await holder.query('select pg_advisory_lock($1)', [HOLD_KEY]);
    return { release: () => holder.end().catch(() => undefined) };
  }

  it('gives every pool connection back once PostgreSQL returns, and SIGTERM still exits 0 within 25 s', async function () {
    this.timeout(120_000);
    const port = await freePort();
    const api = startApiProcess({
      NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: appUrl, ...UNLIMITED,
      JWT_KEYS: JSON.stringify([TEST_JWT_KEY]), XRAY_BUCKET: 'x', AUDIT_BUCKET: 'a', AWS_REGION: 'us-east-1',
    });
    try {
      await started(api);
      const base = `http://127.0.0.1:${port}`;
      const staff = await signIn(processClient(port) as TestApi, await createUser('staff', { databaseUrl: ownerUrl }));
      const patient = await request(base, 'POST', '/patients', { token: staff.accessToken, body: { fullName: 'Held', dateOfBirth: '1990-01-01' } });
      const createPatients = () => Array.from({ length: POOL_MAX }, (_, i) =>
        request(base, 'POST', `/patients/${patient.body.id}/visits`, { token: staff.accessToken, body: { visitedAt: '2024-01-01T10:00:00Z', reason: `Held ${i}` } }));

      // Every pool connection inside an open transaction when the database goes away.
      let hold = await holdInserts();
      let inserts = createPatients();
      await eventually(async () => assert.equal(await heldInserts(ownerUrl), POOL_MAX), { timeoutMs: 20_000 });
      server.stop();
      for (const response of await Promise.all(inserts)) assert.equal(response.status, 503);
      await hold.release();
      server.start();
      await eventually(async () => assert.equal((await request(base, 'GET', '/health/ready')).status, 200), { timeoutMs: 20_000 });

      // Afterwards the pool can again hold as many transactions open at once as it has connections.
      hold = await holdInserts();
      inserts = createPatients();
      await eventually(async () => assert.equal(await heldInserts(ownerUrl), POOL_MAX, 'transactions holding a pool connection at once'), { timeoutMs: 20_000 });
      await hold.release();
      for (const response of await Promise.all(inserts)) assert.equal(response.status, 201);

      const signalled = Date.now();
      api.child.kill('SIGTERM');
      assert.equal(await api.exited, 0);
      assert.ok(Date.now() - signalled < 25_000, 'SIGTERM to exit within the contract\'s 25 s');
      assert.equal(api.events('shutdown').length, 1);
    } finally {
      api.child.kill('SIGKILL');
    }
  });
  it('fails readiness while the pool cannot hand out a connection, though the server answers', async function () {
    this.timeout(60_000);
    const api = await startTestApi({ env: { DATABASE_URL: appUrl, ...UNLIMITED }, withoutReplica: true });
    try {
      const staff = await signIn(api, await createUser('staff', { databaseUrl: ownerUrl }));
      const hold = await holdInserts();
      const patient = await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: 'Busy', dateOfBirth: '1990-01-01' } });
      const inserts = Array.from({ length: POOL_MAX }, (_, i) =>
        api.request('POST', `/patients/${patient.body.id}/visits`, { token: staff.accessToken, body: { visitedAt: '2024-01-01T10:00:00Z', reason: `Busy ${i}` } }));
      await eventually(async () => assert.equal(await heldInserts(ownerUrl), POOL_MAX), { timeoutMs: 20_000 });
      const ready = await api.request('GET', '/health/ready');
      assert.equal(ready.status, 503);
      assert.deepEqual(ready.body.dependencies, { primary: 'up', 'primary-pool': 'down' });
      assert.equal(api.logs.records('readiness_failed').length, 1);
      await hold.release();
      for (const response of await Promise.all(inserts)) assert.equal(response.status, 201);
      assert.equal((await api.request('GET', '/health/ready')).status, 200);
    } finally {
      await api.close();
    }
  });

  it('exits within 25 s of SIGTERM even when a query never returns, saying so', async function () {
    this.timeout(60_000);
    const port = await freePort();
    const api = startApiProcess({
      NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: appUrl, ...UNLIMITED,
      JWT_KEYS: JSON.stringify([TEST_JWT_KEY]), XRAY_BUCKET: 'x', AUDIT_BUCKET: 'a', AWS_REGION: 'us-east-1',
    });
    let hold: Awaited<ReturnType<typeof holdInserts>> | undefined;
    try {
      await started(api);
      const base = `http://127.0.0.1:${port}`;
      const staff = await signIn(processClient(port) as TestApi, await createUser('staff', { databaseUrl: ownerUrl }));
      const patient = await request(base, 'POST', '/patients', { token: staff.accessToken, body: { fullName: 'Never Visited', dateOfBirth: '1990-01-01' } });
      hold = await holdInserts();
      const stuck = request(base, 'POST', `/patients/${patient.body.id}/visits`, { token: staff.accessToken, body: { visitedAt: '2024-01-01T10:00:00Z', reason: 'Never Done' } }).catch(() => undefined);
      await eventually(async () => assert.equal(await heldInserts(ownerUrl), 1), { timeoutMs: 20_000 });

      const signalled = Date.now();
      api.child.kill('SIGTERM');
      const code = await api.exited;
      assert.ok(Date.now() - signalled < 25_000, 'SIGTERM to exit within the contract\'s 25 s');
      assert.equal(code, 1, 'a forced exit is not a clean one');
      assert.equal(api.events('shutdown_forced').length, 1);
      await stuck;
    } finally {
      api.child.kill('SIGKILL');
      await hold?.release();
    }
  });
});
