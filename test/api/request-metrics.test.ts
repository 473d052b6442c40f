// Per-route golden signals (issue 18): the API writes one CloudWatch Embedded Metric Format record
// per request. The records must parse as EMF the way CloudWatch Logs reads them (an `_aws` block
// whose every named dimension and metric is a member of the record, values of the right type), name
// the route template and never the path as sent, and carry no patient data.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { emfRecord, routeClass } from '../../api/metrics/emf.js';
import { LogCapture, startTestApi, type TestApi } from '../support/api.js';
import { signedIn, type SignedIn } from '../support/auth.js';

/** CloudWatch's units (MetricDatum.Unit). */
const UNITS = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits',
  'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second',
  'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
]);

/**
 * The EMF specification's rules, as CloudWatch Logs applies them when it extracts metrics:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 * Returns what is wrong; an empty list is a valid record.
 */
function emfProblems(record: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const aws = record['_aws'] as { Timestamp?: unknown; CloudWatchMetrics?: unknown } | undefined;
  if (typeof aws !== 'object' || aws === null) return ['no _aws object'];
  if (typeof aws.Timestamp !== 'number' || !Number.isInteger(aws.Timestamp) || Math.abs(aws.Timestamp - Date.now()) > 3_600_000) problems.push('_aws.Timestamp is not epoch milliseconds of now');
  if (!Array.isArray(aws.CloudWatchMetrics) || aws.CloudWatchMetrics.length === 0) return [...problems, '_aws.CloudWatchMetrics is not a non-empty array'];
  for (const directive of aws.CloudWatchMetrics as Record<string, unknown>[]) {
    const { Namespace, Dimensions, Metrics } = directive;
    if (typeof Namespace !== 'string' || !/^[A-Za-z0-9._/#:-]{1,255}$/.test(Namespace)) problems.push(`bad Namespace ${String(Namespace)}`);
    if (!Array.isArray(Dimensions)) problems.push('Dimensions is not an array');
    for (const set of (Dimensions ?? []) as unknown[]) {
      if (!Array.isArray(set) || set.length > 30) problems.push(`dimension set ${JSON.stringify(set)} is not an array of at most 30 names`);
      for (const name of (set as unknown[]) ?? []) {
        if (typeof record[name as string] !== 'string' || (record[name as string] as string).length === 0) problems.push(`dimension ${String(name)} is not a non-empty string member`);
      }
    }
    if (!Array.isArray(Metrics) || Metrics.length === 0 || Metrics.length > 100) problems.push('Metrics is not an array of 1 to 100 definitions');
    for (const metric of (Metrics ?? []) as { Name?: unknown; Unit?: unknown }[]) {
      const value = record[metric.Name as string];
      const values = Array.isArray(value) ? value : [value];
      if (typeof metric.Name !== 'string' || values.length === 0 || values.length > 100 || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        problems.push(`metric ${String(metric.Name)} has no numeric member value`);
      }
      if (metric.Unit !== undefined && !UNITS.has(metric.Unit as string)) problems.push(`metric ${String(metric.Name)} has unit ${String(metric.Unit)}`);
    }
  }
  return problems;
}

describe('request metrics: one valid EMF record per request, by route template, without PHI', function () {
  this.timeout(60_000);
  const NAMESPACE = 'DMS/test-emf';
  let api: TestApi;
  let staff: SignedIn;
  const metrics = new LogCapture();
  const records = () => metrics.lines.map((line) => JSON.parse(line) as Record<string, unknown>);

  before(async () => {
    api = await startTestApi({ env: { METRICS_NAMESPACE: NAMESPACE }, metrics });
    staff = await signedIn(api, 'staff');
  });
  after(() => api?.close());

  it('writes a record for a patient read that names /patients/:id, its method, status class and route class', async () => {
    const patient = { fullName: `Ada Quill ${randomUUID().slice(0, 6)}`, dateOfBirth: '1961-07-23', sex: 'female', phone: '+44 20 7946 0111', email: 'ada.quill@example.org', notes: 'latex allergy' };
    const created = await api.request('POST', '/patients', { token: staff.accessToken, body: patient });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    const before = metrics.lines.length;
    const read = await api.request('GET', `/patients/${id}?fullName=${encodeURIComponent(patient.fullName)}`, { token: staff.accessToken, headers: { 'X-Request-Id': 'emf-test-read-0001' } });
    assert.equal(read.status, 200);
    const missing = await api.request('GET', `/patients/${randomUUID()}`, { token: staff.accessToken });
    assert.equal(missing.status, 404);

    const written = records().slice(before);
    assert.equal(written.length, 2, 'one record per request');
    const [ok, bad] = written as [Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(emfProblems(ok), []);
    assert.deepEqual(emfProblems(bad), []);
    assert.equal((ok['_aws'] as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]!.Namespace, NAMESPACE);
    assert.deepEqual(
      [ok['Route'], ok['Method'], ok['StatusClass'], ok['RouteClass'], ok['Requests'], ok['Errors'], ok['requestId']],
      ['/patients/:id', 'GET', '2xx', 'reads', 1, 0, 'emf-test-read-0001'],
    );
    assert.ok(typeof ok['Latency'] === 'number' && ok['Latency'] > 0);
    assert.deepEqual([bad['Route'], bad['StatusClass'], bad['Errors']], ['/patients/:id', '4xx', 0]);

    // No patient data, no id, no query string: every value the patient gave, looked for in every line.
    const text = metrics.lines.join('\n');
    for (const value of [id, patient.fullName, encodeURIComponent(patient.fullName), 'Quill', patient.dateOfBirth, patient.phone, patient.email, patient.notes, 'fullName=']) {
      assert.ok(!text.includes(value), `an EMF record holds ${value}`);
    }
  });

  it('counts sign-in as auth and a change as a write, and an unmatched path as (unmatched)', async () => {
    const before = metrics.lines.length;
    await api.request('POST', '/auth/login', { body: { email: 'nobody@example.org', password: 'not the password' } });
    await api.request('POST', '/patients', { token: staff.accessToken, body: {} });
    await api.request('GET', '/no/such/route/Ada-Quill');
    const written = records().slice(before);
    assert.deepEqual(written.map((record) => [record['Route'], record['Method'], record['RouteClass'], record['StatusClass']]), [
      ['/auth/login', 'POST', 'auth', '4xx'],
      ['/patients', 'POST', 'writes', '4xx'],
      ['(unmatched)', 'GET', 'reads', '4xx'],
    ]);
    assert.ok(!metrics.lines.join('\n').includes('nobody@example.org'));
  });
});

describe('request metrics: a 5xx is an error, probes are their own class', () => {
  it('marks a 503 with Errors 1 and status class 5xx, in a record that is still valid EMF', () => {
    const record = emfRecord('DMS/unit', { route: '/patients/:id', method: 'GET', status: 503, latencyMs: 3012.5, requestId: 'r-00000001' }, Date.now());
    assert.deepEqual(emfProblems(record), []);
    assert.deepEqual([record['StatusClass'], record['Errors'], record['Latency']], ['5xx', 1, 3012.5]);
  });

  it('classes health and the API description as probes, so the load balancer’s polling flatters no objective', () => {
    assert.deepEqual(
      [routeClass('GET', '/health/ready'), routeClass('GET', '/openapi.json'), routeClass('POST', '/auth/refresh'), routeClass('GET', '/auth/me'), routeClass('DELETE', '/patients/:id'), routeClass('GET', '/reports/daily')],
      ['probes', 'probes', 'auth', 'auth', 'writes', 'reads'],
    );
  });

  it('writes nothing when METRICS_NAMESPACE is unset', async function () {
    this.timeout(60_000);
    const metrics = new LogCapture();
    const api = await startTestApi({ metrics });
    try {
      assert.equal((await api.request('GET', '/health')).status, 200);
      assert.deepEqual(metrics.lines, []);
    } finally {
      await api.close();
    }
  });
});
