import assert from 'node:assert/strict';
import { startTestApi, migrateDatabase, type TestApi } from '../support/api.js';
import { eventually, pgUrl, sql, startOwnServer, type OwnServer } from '../support/postgres.js';

describe('database outage and recovery', () => {
  let server: OwnServer;
  let api: TestApi;
  before(async function () {
    this.timeout(60_000);
    server = await startOwnServer();
    await sql(pgUrl('postgres', { port: server.port }), 'create database dms');
    const url = pgUrl('dms', { port: server.port });
    await migrateDatabase(url);
    api = await startTestApi({ env: { DATABASE_URL: url }, withoutReplica: true });
  });
  after(async () => {
    await api?.close();
    server?.destroy();
  });

  it('reports 503 naming the primary while PostgreSQL is down, and recovers without a restart', async function () {
    this.timeout(60_000);
    assert.equal((await api.request('GET', '/health/ready')).status, 200);

    server.stop();
    const down = await api.request('GET', '/health/ready');
    assert.equal(down.status, 503);
    assert.equal(down.body.error, 'unavailable');
    assert.deepEqual(down.body.dependencies, { primary: 'down' });
    assert.equal((await api.request('GET', '/health')).status, 200, 'liveness touches no dependency');

    server.start();
    await eventually(async () => assert.equal((await api.request('GET', '/health/ready')).status, 200), { timeoutMs: 20_000 });
  });
});
