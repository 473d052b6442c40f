// Traces (issue 18): with tracing on, a request to GET /patients/:id is one trace whose server span
// is named by the route template, with a child span for each SQL statement and Redis command it
// ran; no span holds the patient's data or id, the query string, the bearer token or a SQL
// parameter value; the request's log lines and EMF record carry the trace id.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { scrubAttributes, scrubSql } from '../../api/tracing/scrub.js';
import { startTracing, type Tracing } from '../../api/tracing/tracing.js';
import { LogCapture, startTestApi, type TestApi } from '../support/api.js';
import { eventually } from '../support/postgres.js';
import { signedIn, type SignedIn } from '../support/auth.js';

/**
 * The server spans exported since `from`, once there is one: the HTTP instrumentation ends a server
 * span when the response is flushed, which in one process can come just after the client has read it.
 */
const serverSpans = (exporter: InMemorySpanExporter, from = 0) =>
  eventually(async () => {
    const found = exporter.getFinishedSpans().slice(from).filter((span) => span.kind === SpanKind.SERVER);
    assert.ok(found.length > 0, 'no server span exported yet');
    return found;
  });

/** Everything of a span that leaves the process, as text. */
const exported = (span: ReadableSpan) => JSON.stringify({ name: span.name, attributes: span.attributes, events: span.events, status: span.status });

describe('tracing: GET /patients/:id is a server span named by its route, with its SQL and Redis calls as children, and no PHI', function () {
  this.timeout(60_000);
  const exporter = new InMemorySpanExporter();
  const metrics = new LogCapture();
  let tracing: Tracing;
  let api: TestApi;
  let staff: SignedIn;

  before(async () => {
    tracing = startTracing({ exporter, sampleRatio: 1, environment: 'test', exportEachSpan: true });
    api = await startTestApi({
      env: { REDIS_URL: 'redis://127.0.0.1:6379', RATE_LIMIT_KEY_PREFIX: `dms:test:tracing:${randomUUID()}`, METRICS_NAMESPACE: 'DMS/test-tracing' },
      metrics,
    });
    staff = await signedIn(api, 'staff');
  });
  after(async () => {
    await api?.close();
    await tracing?.shutdown();
  });

  it('traces the read with its route, SQL and Redis spans, and keeps the patient, the token and the parameters out of every span', async () => {
    const patient = { fullName: `Grace Tracewell ${randomUUID().slice(0, 6)}`, dateOfBirth: '1958-02-11', sex: 'female', phone: '+44 20 7946 0222', email: 'grace.tracewell@example.org', notes: 'sulfa allergy' };
    const created = await api.request('POST', '/patients', { token: staff.accessToken, body: patient });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    const before = exporter.getFinishedSpans().length;

    const read = await api.request('GET', `/patients/${id}?fullName=${encodeURIComponent(patient.fullName)}`, { token: staff.accessToken, headers: { 'X-Request-Id': 'trace-test-read-0001' } });
    assert.equal(read.status, 200);

    const servers = await serverSpans(exporter, before);
    const spans = exporter.getFinishedSpans().slice(before);
    assert.deepEqual(servers.map((span) => span.name), ['GET /patients/:id']);
    const server = servers[0]!;
    assert.equal(server.attributes['http.route'], '/patients/:id');
    assert.equal(server.attributes['http.response.status_code'], 200);
    const traceId = server.spanContext().traceId;

    // Descendants of the server span, through any intermediate span (a pool checkout).
    const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]));
    const descendsFromServer = (span: ReadableSpan): boolean => {
      for (let parent = span.parentSpanContext?.spanId; parent; parent = byId.get(parent)?.parentSpanContext?.spanId) {
        if (parent === server.spanContext().spanId) return true;
      }
      return false;
    };
    const children = spans.filter((span) => span !== server && span.spanContext().traceId === traceId && descendsFromServer(span));
    const sql = children.filter((span) => span.attributes['db.system.name'] === 'postgresql' && typeof span.attributes['db.query.text'] === 'string');
    const redis = children.filter((span) => span.attributes['db.system.name'] === 'redis');
    assert.ok(sql.some((span) => /\bfrom\b.*\bpatients?\b/i.test(String(span.attributes['db.query.text']))), `a SQL span reads the patient: ${sql.map((span) => span.attributes['db.query.text']).join(' | ')}`);
    assert.ok(redis.length > 0, 'a Redis span (the rate-limit counter)');
    assert.ok(redis.every((span) => !('db.query.text' in span.attributes) || !/\s/.test(String(span.attributes['db.query.text']))), 'Redis commands without their arguments');

    // Nothing of the patient, the token or the request's query string in any span of the run: the
    // create's too, whose INSERT the ORM sends with the values written into the SQL.
    const text = exporter.getFinishedSpans().map(exported).join('\n');
    for (const value of [id, patient.fullName, 'Tracewell', patient.dateOfBirth, patient.phone, patient.email, patient.notes, 'fullName=', staff.accessToken, staff.accessToken.slice(-20), 'Bearer', 'url.query', 'url.path']) {
      assert.ok(!text.includes(value), `a span holds ${value}`);
    }

    // The request's log lines and its EMF record carry the same trace id as its request id.
    const lines = api.logs.records().filter((record) => record['reqId'] === 'trace-test-read-0001');
    assert.ok(lines.length > 0);
    assert.ok(lines.every((record) => record['traceId'] === traceId), JSON.stringify(lines));
    const emf = metrics.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((record) => record['requestId'] === 'trace-test-read-0001');
    assert.deepEqual(emf.map((record) => record['traceId']), [traceId]);
  });

  it('does not trace the load balancer’s health checks', async () => {
    exporter.reset();
    assert.equal((await api.request('GET', '/health')).status, 200);
    assert.deepEqual(exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.SERVER), []);
  });

  it('ignores a client’s traceparent: the trace id is the API’s own', async () => {
    exporter.reset();
    const forced = '0af7651916cd43dd8448eb211c80319c';
    await api.request('GET', '/auth/me', { token: staff.accessToken, headers: { traceparent: `00-${forced}-b7ad6b7169203331-01` } });
    const [server] = await serverSpans(exporter);
    assert.notEqual(server.spanContext().traceId, forced);
  });
});

describe('tracing: an AWS SDK call is a span of its own, named by service and operation, without the object key', function () {
  this.timeout(30_000);
  it('traces S3 HeadObject from a client made before tracing started, as the tests’ and the app’s are', async () => {
    // Nothing listens on port 9: the call fails at once, after the instrumentation has opened its span.
    const client = new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const exporter = new InMemorySpanExporter();
    const tracing = startTracing({ exporter, sampleRatio: 1, environment: 'test', exportEachSpan: true });
    try {
      const key = `patients/${randomUUID()}/xrays/${randomUUID()}.png`;
      await trace.getTracer('test').startActiveSpan('request', async (span) => {
        await assert.rejects(client.send(new HeadObjectCommand({ Bucket: 'dms-test-xray', Key: key })));
        span.end();
      });
      const [call] = exporter.getFinishedSpans().filter((span) => span.name === 'S3.HeadObject');
      assert.ok(call, exporter.getFinishedSpans().map((span) => span.name).join(', '));
      assert.deepEqual([call.attributes['rpc.system'], call.attributes['rpc.service'], call.attributes['rpc.method']], ['aws-api', 'S3', 'HeadObject']);
      assert.ok(!exporter.getFinishedSpans().map(exported).join('\n').includes(key.split('/')[1]!), 'no part of the object key');
    } finally {
      client.destroy();
      await tracing.shutdown();
    }
  });
});

describe('tracing: the scrubber lets out only what is on its list', () => {
  it('drops paths, queries, headers and client addresses, and blanks SQL literals', () => {
    const attributes = scrubAttributes({
      'http.request.method': 'GET',
      'http.route': '/patients/:id',
      'url.path': '/patients/5b0f0c52-7d0e-4a3c-9d52-3ef0a1c1f001',
      'url.query': 'fullName=Ada',
      'http.request.header.authorization': 'Bearer eyJ',
      'client.address': '203.0.113.7',
      'db.postgresql.values': '["Ada"]',
      'db.query.text': "select * from patients where full_name = 'Ada O''Neil' and born > 1960 and id = $1 and t0.x = e1.y",
    });
    assert.deepEqual(attributes, {
      'http.request.method': 'GET',
      'http.route': '/patients/:id',
      'db.query.text': "select * from patients where full_name = '?' and born > ? and id = $1 and t0.x = e1.y",
    });
    assert.equal(scrubSql('limit 20 offset 40'), 'limit ? offset ?');
  });
});
