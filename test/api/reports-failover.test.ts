import assert from 'node:assert/strict';
import { type TestApi } from '../support/api.js';
import { signedIn, type SignedIn } from '../support/auth.js';
import { freePort, pgUrl } from '../support/postgres.js';
import { startRecordsApi } from '../support/s3.js';

describe('reports after a failover: no replica answers, the primary serves them', function () {
  this.timeout(60_000);
  let api: TestApi;
  let doctor: SignedIn;
  before(async () => {
    // A replica URL nothing listens on: the replica is gone (promoted, or down).
    api = await startRecordsApi({ DATABASE_REPLICA_URLS: pgUrl('dms', { port: await freePort() }) });
    doctor = await signedIn(api, 'doctor');
  });
  after(() => api?.close());

  it('answers GET /reports/visits 200 from the primary and logs replica_unavailable, instead of a 503', async () => {
    const patient = await api.request('POST', '/patients', { token: doctor.accessToken, body: { fullName: 'Failover Report', dateOfBirth: '1970-01-01' } });
    assert.equal(patient.status, 201, JSON.stringify(patient.body));
    const visit = await api.request('POST', `/patients/${patient.body.id}/visits`, { token: doctor.accessToken, body: { visitedAt: '2031-02-03T10:00:00.000Z', reason: 'check-up' } });
    assert.equal(visit.status, 201, JSON.stringify(visit.body));
    const report = await api.request('GET', '/reports/visits?from=2031-02-02&to=2031-02-04', { token: doctor.accessToken });
    assert.equal(report.status, 200, JSON.stringify(report.body));
    assert.ok(report.body.items.find((day: { date: string }) => day.date === '2031-02-03')?.visits >= 1, 'the primary has the visit');
    assert.ok(api.logs.records('replica_unavailable').some((line) => line.fallback === 'primary' && line.path === '/reports/visits'));
  });
});
