import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../../api/dev-data.js';
import { request } from '../support/api.js';
import { freePort } from '../support/postgres.js';
import { pngImage } from '../support/png.js';
import { devAdminPassword, runDevAdminPassword, startApiProcess, started, type ApiProcess } from '../support/process.js';

/** A first start creates the cluster and applies every migration; later ones only start it. */
const FIRST_START_MS = 150_000;

describe('npm start in a checkout, after a crash and twice at once (issue 17, item 5)', function () {
  this.timeout(300_000);
  let checkout: string;
  let running: ApiProcess | undefined;
  let port: number;
  let password: string;

  const start = async (timeoutMs = 60_000, env: Record<string, string> = {}) => {
    const api = startApiProcess({ PORT: String(port), PRESIGN_TTL_S: '3600', ...env }, { cwd: checkout });
    await started(api, { timeoutMs });
    return api;
  };
  const call = (method: string, path: string, options: Parameters<typeof request>[3] = {}) => request(`http://127.0.0.1:${port}`, method, path, options);
  const signIn = async (withPassword: string) => call('POST', '/auth/login', { body: { email: 'admin@dms.local', password: withPassword } });
  const stop = async () => {
    running?.child.kill('SIGTERM');
    assert.equal(await running?.exited, 0);
    running = undefined;
  };

  before(async () => {
    checkout = mkdtempSync(join(tmpdir(), 'dms-checkout-'));
    chmodSync(checkout, 0o755); // as a checkout is: the embedded PostgreSQL runs as its own user when started as root
    port = await freePort();
    running = await start(FIRST_START_MS);
    password = devAdminPassword(running);
  });

  after(async () => {
    running?.child.kill('SIGKILL');
    await running?.exited;
    // Whatever a test left running on the cluster: stopped, as the next start would.
    const pid = Number(readFileSync(join(checkout, '.data', 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid && isAlive(pid)) process.kill(pid, 'SIGINT');
    rmSync(checkout, { recursive: true, force: true });
  });

  it('says what it binds: every interface unless HOST says otherwise, and where to reach it from this machine', async () => {
    const [line] = running!.events('startup');
    assert.equal(line!.bound, `0.0.0.0:${port}`);
    assert.match(String(line!.detail), new RegExp(`^listening on 0\\.0\\.0\\.0:${port} \\(every interface; from this machine http://127\\.0\\.0\\.1:${port}\\)`));
    await stop();
    running = await start(60_000, { HOST: '127.0.0.1' });
    const [local] = running.events('startup');
    assert.equal(local!.bound, `127.0.0.1:${port}`);
    assert.match(String(local!.detail), new RegExp(`^listening on http://127\\.0\\.0\\.1:${port};`));
  });

  it('a second npm start in the same checkout stops at once with one line: the first one\'s pid and how to stop it', async () => {
    const second = startApiProcess({ PORT: String(await freePort()) }, { cwd: checkout });
    assert.equal(await second.exited, 1);
    assert.deepEqual(second.stderr.filter((line) => line.startsWith('dms-api:')), [
      `dms-api: start-up failed: another dms-api (pid ${running!.child.pid}) is using ${join(checkout, '.data')}; stop it first (Ctrl-C in its terminal, or kill ${running!.child.pid}), or start this one from another checkout`,
    ]);
    assert.equal((await call('GET', '/health/ready')).status, 200, 'the first one still serves');
  });

  it('after a crash (SIGKILL) starts again by itself: it stops the PostgreSQL left running, and X-ray URLs issued before still work (the S3 port is kept)', async () => {
    const { body: session } = await signIn(password);
    const token = session.accessToken as string;
    const patient = (await call('POST', '/patients', { token, body: { fullName: 'Crash Test', dateOfBirth: '1980-01-01' } })).body;
    const visit = (await call('POST', `/patients/${patient.id}/visits`, { token, body: { visitedAt: new Date().toISOString(), reason: 'check-up' } })).body;
    const png = pngImage(4, 4);
    const { xray, upload } = (await call('POST', `/patients/${patient.id}/visits/${visit.id}/xrays`, { token, body: { contentType: 'image/png', sizeBytes: png.length } })).body;
    assert.equal((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: png })).status, 200);
    assert.equal((await call('POST', `/xrays/${xray.id}/complete`, { token })).status, 200);
    const download = (await call('GET', `/xrays/${xray.id}/download`, { token })).body;

    const orphan = Number(readFileSync(join(checkout, '.data', 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    running!.child.kill('SIGKILL');
    await running!.exited;
    assert.ok(isAlive(orphan), 'the embedded PostgreSQL outlives the API it belonged to');

    running = await start();
    const [stopped] = running.events('embedded_postgres_orphan_stopped');
    assert.equal(stopped?.pid, orphan);
    assert.ok(!isAlive(orphan));
    assert.equal((await call('GET', '/health/ready')).status, 200);
    assert.equal(running.events('embedded_s3_port_changed').length, 0);
    const fetched = await fetch(download.url);
    assert.equal(fetched.status, 200, 'the download URL issued before the crash still points at the store');
    assert.deepEqual(Buffer.from(await fetched.arrayBuffer()), png);
  });

  it('npm run dev:admin-password gives the development admin a new password (with npm start stopped) and ends the old one', async () => {
    const refused = await runDevAdminPassword(checkout);
    assert.equal(refused.code, 1, 'refused while npm start holds .data/');
    assert.match(refused.stderr, new RegExp(`another dms-api \\(pid ${running!.child.pid}\\)`));
    await stop();

    const reset = await runDevAdminPassword(checkout);
    assert.equal(reset.code, 0, reset.stderr);
    const match = /^dms-dev-admin: sign in as admin@dms\.local with (\S+) /.exec(reset.stdout);
    assert.ok(match, reset.stdout);
    running = await start();
    assert.equal((await signIn(password)).status, 401, 'the lost password no longer works');
    assert.equal((await signIn(match[1]!)).status, 200);
    password = match[1]!;
  });
});
