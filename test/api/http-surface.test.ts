import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from '../support/api.js';

describe('the HTTP surface every route shares (CONTRACT §2)', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  function assertErrorBody(body: unknown, code: string, requestId: string | null): void {
    assert.deepEqual(Object.keys(body as object).slice(0, 3).sort(), ['error', 'message', 'requestId']);
    const { error, message, requestId: id } = body as Record<string, string>;
    assert.equal(error, code);
    assert.ok(message.length > 0);
    assert.equal(id, requestId);
    assert.doesNotMatch(JSON.stringify(body), /at .*\.(ts|js):\d+|stack|select |node_modules/i);
  }

  describe('request ids', () => {
    it('echoes a well-formed X-Request-Id', async () => {
      const res = await api.request('GET', '/health', { headers: { 'x-request-id': 'client-req-0001' } });
      assert.equal(res.headers.get('x-request-id'), 'client-req-0001');
    });
    it('replaces a malformed one with a generated id', async () => {
      const res = await api.request('GET', '/health', { headers: { 'x-request-id': 'bad id\twith<script>' } });
      assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    });
  });

  describe('error bodies', () => {
    it('answers an unknown route 404 with the contract body', async () => {
      const res = await api.request('GET', '/no/such/route');
      assert.equal(res.status, 404);
      assertErrorBody(res.body, 'not_found', res.headers.get('x-request-id'));
    });
    it('answers malformed JSON 400 invalid_json, never 500', async () => {
      const res = await api.request('POST', '/no/such/route', { body: '{"a":', headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400);
      assertErrorBody(res.body, 'invalid_json', res.headers.get('x-request-id'));
    });
    it('answers an oversized body 413', async () => {
      const res = await api.request('POST', '/no/such/route', { body: { blob: 'x'.repeat(200 * 1024) } });
      assert.equal(res.status, 413);
      assertErrorBody(res.body, 'payload_too_large', res.headers.get('x-request-id'));
    });
    it('answers a body that is not JSON 415', async () => {
      const res = await api.request('POST', '/no/such/route', { body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(res.status, 415);
      assertErrorBody(res.body, 'unsupported_media_type', res.headers.get('x-request-id'));
    });
  });

  describe('security headers', () => {
    it('are on successes and errors alike', async () => {
      for (const path of ['/health', '/nope']) {
        const res = await api.request('GET', path);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
        assert.equal(res.headers.get('x-frame-options'), 'DENY');
        assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
        assert.equal(res.headers.get('x-powered-by'), null);
      }
    });
  });

  describe('health', () => {
    it('GET /health answers while the process serves', async () => {
      const res = await api.request('GET', '/health');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { status: 'ok' });
    });
    it('GET /health/ready reports the primary and the replica', async () => {
      const res = await api.request('GET', '/health/ready');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.dependencies, { primary: 'up', 'primary-pool': 'up', 'replica-1': 'up' });
    });
    it('GET /health/ready is 503 naming a dependency that does not answer', async () => {
      const broken = await startTestApi({ env: { DATABASE_REPLICA_URLS: 'postgres://nobody@127.0.0.1:1/none' } });
      try {
        const res = await broken.request('GET', '/health/ready');
        assert.equal(res.status, 503);
        assert.equal(res.body.error, 'unavailable');
        assert.deepEqual(res.body.dependencies, { primary: 'up', 'primary-pool': 'up', 'replica-1': 'down' });
      } finally {
        await broken.close();
      }
    });
  });

  describe('logs (CONTRACT §5)', () => {
    it('writes one JSON object per line with an http_access record per request', async () => {
      const res = await api.request('GET', '/health?email=patient@example.com', { headers: { 'x-request-id': 'log-check-0001', 'x-forwarded-for': '203.0.113.9' } });
      assert.equal(res.status, 200);
      const access = api.logs.records('http_access').find((r) => r.reqId === 'log-check-0001');
      assert.ok(access, 'no http_access line for the request');
      for (const field of ['timestamp', 'level', 'event', 'service', 'env', 'reqId', 'method', 'path', 'statusCode', 'durationMs', 'ip']) {
        assert.ok(field in access, `http_access lacks ${field}`);
      }
      assert.equal(access.path, '/health', 'the query string (which may hold PHI) is not logged');
      assert.equal(access.statusCode, 200);
      assert.equal(access.ip, '127.0.0.1', 'with TRUST_PROXY_HOPS=0 a client-sent X-Forwarded-For is ignored');
      for (const line of api.logs.lines) assert.doesNotThrow(() => JSON.parse(line), line);
    });

    it('names the route template and its ids, never the path as typed (a name typed into a path is PHI)', async () => {
      const id = '0b7c6a4e-2f1d-4c3b-9a8e-7d6c5b4a3f21';
      const typed = { 'name-as-id': '/patients/zebulon-quixotewright', 'name-encoded': '/patients/Zebulon%20Quixotewright', 'id': `/patients/${id}` };
      for (const [label, path] of Object.entries(typed)) {
        const res = await api.request('GET', path, { headers: { 'x-request-id': `route-log-${label}` } });
        assert.ok([401, 404].includes(res.status), `${path}: ${res.status}`);
      }
      const logged = (label: string) => api.logs.lines.filter((line) => line.includes(`route-log-${label}`)).map((line) => JSON.parse(line));
      assert.deepEqual(logged('id').find((r) => r.event === 'http_access')?.ids, { id });
      assert.equal(logged('id').find((r) => r.event === 'http_access')?.path, '/patients/:id');
      assert.equal(logged('name-as-id').find((r) => r.event === 'http_access')?.path, '/patients/:id');
      assert.equal(logged('name-encoded').find((r) => r.event === 'http_access')?.path, '(unmatched)');
      const all = JSON.stringify([...logged('name-as-id'), ...logged('name-encoded')]);
      assert.ok(logged('name-as-id').some((r) => r.event === 'auth_error'), 'the refusal is logged too, and checked');
      assert.doesNotMatch(all, /zebulon|quixotewright/i);
    });
  });
});
