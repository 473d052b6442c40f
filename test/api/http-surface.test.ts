import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../../api/server.js';
import { postgresProbe } from '../../api/health.js';
import { sharedDatabase, startTestApi, type TestApi } from '../support/api.js';
import { signedIn } from '../support/auth.js';

/**
 * Sends a request's head and only the first bytes of a declared 64 KiB body over a raw socket, and
 * resolves with what the server answered once it closes the connection, or `undefined` if it is
 * still waiting for the body after `patienceMs` (the rest of the body is never sent).
 */
function trickledBody(url: string, method: string, path: string, headers: Record<string, string> = {}, patienceMs = 5_000): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    const gaveUp = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, patienceMs);
    socket.on('data', (chunk) => (answer += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(gaveUp);
      resolve(answer);
    });
    const head = Object.entries({ host: hostname, 'content-type': 'application/json', 'content-length': String(64 * 1024), ...headers })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n{"fullName": "`);
  });
}

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
    // Bodies are parsed only for routes the caller may call (below): the public sign-in route shows the answers.
    it('answers malformed JSON 400 invalid_json, never 500', async () => {
      const res = await api.request('POST', '/auth/login', { body: '{"a":', headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400);
      assertErrorBody(res.body, 'invalid_json', res.headers.get('x-request-id'));
    });
    it('answers an oversized body 413', async () => {
      const res = await api.request('POST', '/auth/login', { body: { blob: 'x'.repeat(200 * 1024) } });
      assert.equal(res.status, 413);
      assertErrorBody(res.body, 'payload_too_large', res.headers.get('x-request-id'));
    });
    it('answers a body that is not JSON 415', async () => {
      const res = await api.request('POST', '/auth/login', { body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(res.status, 415);
      assertErrorBody(res.body, 'unsupported_media_type', res.headers.get('x-request-id'));
    });
  });

  describe('a body is read only once the request is known to be allowed (issue 15, finding 9)', () => {
    it('refuses a request without a token at once, without waiting for its body, and closes the connection', async () => {
      const answer = await trickledBody(api.url, 'POST', '/patients');
      assert.ok(answer !== undefined, 'the server waited for the body of a request it was going to refuse');
      assert.match(answer, /^HTTP\/1\.1 401 /);
      assert.match(answer, /\r\nconnection: close\r\n/i);
    });

    it('refuses a signed-in role the route does not allow the same way (403), and an unknown route (404)', async () => {
      const staff = await signedIn(api, 'staff');
      const forbidden = await trickledBody(api.url, 'POST', '/admin/users', { authorization: `Bearer ${staff.accessToken}` });
      assert.match(forbidden ?? '(no answer)', /^HTTP\/1\.1 403 /);
      assert.match(await trickledBody(api.url, 'POST', '/no/such/route') ?? '(no answer)', /^HTTP\/1\.1 404 /);
    });

    it('reads the body of an allowed request: a signed-in doctor creating a patient, the public sign-in', async () => {
      const doctor = await signedIn(api, 'doctor');
      const created = await api.request('POST', '/patients', { token: doctor.accessToken, body: { fullName: 'Test Patient', dateOfBirth: '1980-01-02' } });
      assert.equal(created.status, 201);
      assert.equal((await api.request('POST', '/patients', { token: doctor.accessToken, body: '{"fullName":', headers: { 'content-type': 'application/json' } })).status, 400);
      assert.equal((await trickledBody(api.url, 'POST', '/auth/login', {}, 500)), undefined, 'the sign-in waits for its body');
    });

    it('gives a request a bounded time to arrive whole (Node answers 408 past it); keep-alive still outlives the ALB idle timeout', async () => {
      const { server } = api.api;
      assert.equal(server.requestTimeout, REQUEST_TIMEOUT_MS);
      assert.equal(server.headersTimeout, HEADERS_TIMEOUT_MS);
      assert.ok(REQUEST_TIMEOUT_MS > 0 && REQUEST_TIMEOUT_MS <= 30_000, `requestTimeout ${REQUEST_TIMEOUT_MS} ms (Node's default is 300 000)`);
      assert.ok(HEADERS_TIMEOUT_MS > 0 && HEADERS_TIMEOUT_MS <= REQUEST_TIMEOUT_MS);
      assert.ok(server.keepAliveTimeout > 60_000, 'keep-alive outlives the ALB idle timeout, whatever the request timeouts');
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
    it('GET /health/ready is 200 degraded, not 503, when only a replica does not answer (gone after a failover)', async () => {
      const noReplica = await startTestApi({ env: { DATABASE_REPLICA_URLS: 'postgres://nobody@127.0.0.1:1/none' } });
      try {
        const res = await noReplica.request('GET', '/health/ready');
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { status: 'degraded', dependencies: { primary: 'up', 'primary-pool': 'up', 'replica-1': 'down' } });
        assert.equal(noReplica.logs.records('readiness_failed').length, 0, 'a missing replica is not the database unreachable');
        assert.deepEqual(noReplica.logs.records('readiness_degraded').at(-1)?.dependencies, res.body.dependencies);
      } finally {
        await noReplica.close();
      }
    });
  });

  describe('readiness proves the primary accepts writes', () => {
    it('fails the primary probe on a standby in recovery (DATABASE_URL left on a replica), passes it on the primary', async () => {
      const db = await sharedDatabase();
      await postgresProbe('primary', db.appUrl, { writable: true }).check();
      await assert.rejects(postgresProbe('primary', db.replicaAppUrl, { writable: true }).check(), /standby in recovery/);
      await postgresProbe('replica-1', db.replicaAppUrl, { optional: true }).check();
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
