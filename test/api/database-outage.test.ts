import assert from 'node:assert/strict';
import { startTestApi, migrateDatabase, type TestApi } from '../support/api.js';
import { createUser, signIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { eventually, pgUrl, sql, startOwnServer, type OwnServer } from '../support/postgres.js';

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
    assert.deepEqual(ready.body.dependencies, { primary: 'down' });
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
