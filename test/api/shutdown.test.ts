import assert from 'node:assert/strict';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { startTestApi, type TestApi } from '../support/api.js';

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** node:http rather than fetch: the test reads the hop-by-hop `Connection` header. */
function send(url: string, method: string, path: string, { agent, body, beforeEnd }: { agent?: Agent; body?: string; beforeEnd?: () => void } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(path, url);
    const req = httpRequest({ host: target.hostname, port: target.port, method, path: target.pathname, agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    if (body === undefined) return void req.end();
    // The body's first half now, the rest once `beforeEnd` has run: the request is in flight meanwhile.
    req.write(body.slice(0, 3));
    setImmediate(() => {
      beforeEnd?.();
      req.end(body.slice(3));
    });
  });
}

describe('draining after SIGTERM', () => {
  let api: TestApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it('fails readiness and closes each connection after its response once the drain has begun', async () => {
    const running = (api = await startTestApi());
    const agent = new Agent({ keepAlive: true });
    const before = await send(running.url, 'GET', '/health', { agent });
    assert.notEqual(before.headers.connection, 'close', 'a serving task keeps connections alive');
    assert.equal((await send(running.url, 'GET', '/health/ready')).status, 200);

    running.api.deps.draining.begin(); // what SIGTERM does first
    const ready = await send(running.url, 'GET', '/health/ready', { agent });
    assert.equal(ready.status, 503);
    assert.equal(JSON.parse(ready.body).error, 'unavailable');
    assert.equal(ready.headers.connection, 'close');
    const health = await send(running.url, 'GET', '/health', { agent });
    assert.equal(health.status, 200, 'liveness still answers: the task is leaving, not broken');
    assert.equal(health.headers.connection, 'close');
    assert.equal(running.logs.records('readiness_failed').length, 0, 'a drain is not a dependency failure');
    agent.destroy();
  });

  it('answers a request in flight when SIGTERM lands with Connection: close', async () => {
    const running = await startTestApi();
    const agent = new Agent({ keepAlive: true });
    let closing: Promise<void> | undefined;
    const inFlight = await send(running.url, 'POST', '/no-such-route', { agent, body: '{"a":"b"}', beforeEnd: () => (closing = running.close()) });
    assert.equal(inFlight.status, 404, 'the in-flight request is answered');
    assert.equal(inFlight.headers.connection, 'close');
    await closing;
    agent.destroy();
  });
});
