import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { TEST_JWT_KEY, sharedDatabase } from '../support/api.js';
import { freePort } from '../support/postgres.js';
import { startApiProcess as startProcess, started as hasStarted } from '../support/process.js';

describe('the API process', () => {
  it('stops on a malformed DATABASE_URL with one line naming it, no stack trace', async () => {
    const { exited, stderr, stdout } = startProcess({ DATABASE_URL: 'not-a-url' });
    assert.notEqual(await exited, 0);
    assert.equal(stderr.length, 1, stderr.join('\n'));
    assert.match(stderr[0]!, /DATABASE_URL/);
    assert.doesNotMatch(stderr.join('\n'), /\s+at\s/);
    assert.deepEqual(stdout, []);
  });

  it('refuses to start in production without its variables', async () => {
    const { exited, stderr } = startProcess({ NODE_ENV: 'production' });
    assert.notEqual(await exited, 0);
    assert.equal(stderr.length, 1);
    assert.match(stderr[0]!, /DATABASE_URL: is required when NODE_ENV=production/);
  });

  it('on SIGTERM finishes the request in flight, then exits 0 within 25 s', async function () {
    this.timeout(60_000);
    const db = await sharedDatabase();
    const port = await freePort();
    const started = startProcess({
      NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: db.appUrl,
      JWT_KEYS: JSON.stringify([TEST_JWT_KEY]), XRAY_BUCKET: 'x', AUDIT_BUCKET: 'a', AWS_REGION: 'us-east-1',
    });
    try {
      await hasStarted(started);
      for (const line of started.stdout) assert.doesNotThrow(() => JSON.parse(line), line);

      // A request whose body is still arriving when SIGTERM lands: it must still be answered.
      const inFlight = new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/slow-upload', headers: { 'content-type': 'application/json', 'content-length': '11' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write('{"a":');
        setTimeout(() => {
          started.child.kill('SIGTERM');
          setTimeout(() => req.end('"abc"}'), 500);
        }, 200);
      });
      const signalled = Date.now();
      assert.equal(await inFlight, 404, 'the in-flight request got its answer');
      assert.equal(await started.exited, 0);
      assert.ok(Date.now() - signalled < 25_000);
      const events = started.stdout.map((line) => JSON.parse(line).event);
      assert.ok(events.includes('shutdown'), events.join(','));
    } finally {
      started.child.kill('SIGKILL');
    }
  });
});
