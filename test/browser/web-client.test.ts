import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { request } from '../support/api.js';
import { freePort } from '../support/postgres.js';
import { pngImage } from '../support/png.js';
import { devAdminPassword, startApiProcess, started, type ApiProcess } from '../support/process.js';

/** Debian's chromium: `.ci/run` installs it on a clean machine (`apt-get install -y chromium`). */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const PAGE = readFileSync(new URL('./fixtures/web-client.html', import.meta.url));
const XRAY = pngImage(64, 48);
const PATIENT = 'Margarethe Okonkwo-Lindqvist';

/** A static web server: the web client's page and the PNG a user would pick, on an origin of its own. */
async function servePage(): Promise<{ origin: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    const body = path === '/' ? PAGE : path === '/xray.png' ? XRAY : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': path === '/' ? 'text/html; charset=utf-8' : 'image/png' });
    res.end(body);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${port}`, server };
}

describe('a web client on another origin (issue 17: the browser test)', function () {
  // A first `npm start` creates its PostgreSQL cluster and applies every migration before it listens.
  this.timeout(180_000);
  let dataDir: string;
  let profileDir: string;
  let api: ApiProcess;
  let apiUrl: string;
  let allowed: { origin: string; server: Server };
  let refused: { origin: string; server: Server };
  let browser: BrowserContext;
  let password: string;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)`);
    [allowed, refused] = await Promise.all([servePage(), servePage()]);
    dataDir = mkdtempSync(join(tmpdir(), 'dms-web-client-'));
    chmodSync(dataDir, 0o755); // as a checkout is: the embedded PostgreSQL runs as its own user when started as root
    const port = await freePort();
    apiUrl = `http://127.0.0.1:${port}`;
    // `npm start` as a front-end developer runs it: embedded PostgreSQL and S3, the web client's origin allowed.
    api = startApiProcess({ PORT: String(port), HOST: '127.0.0.1', CORS_ORIGINS: allowed.origin }, { cwd: dataDir });
    await started(api, { timeoutMs: 150_000 });
    password = devAdminPassword(api);
    const { body } = await request(apiUrl, 'POST', '/auth/login', { body: { email: 'admin@dms.local', password } });
    const created = await request(apiUrl, 'POST', '/patients', { token: body.accessToken, body: { fullName: PATIENT, dateOfBirth: '1961-04-09' } });
    assert.equal(created.status, 201);
    profileDir = mkdtempSync(join(tmpdir(), 'dms-chromium-'));
    browser = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    api?.child.kill('SIGTERM');
    await api?.exited;
    allowed?.server.close();
    refused?.server.close();
    for (const dir of [dataDir, profileDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the page from `origin` and waits for what it reports. */
  async function runPage(origin: string, extra: Record<string, string> = {}): Promise<Record<string, unknown>> {
    const page = await browser.newPage();
    try {
      const query = new URLSearchParams({ api: apiUrl, email: 'admin@dms.local', password, name: 'okonkwo', png: `${origin}/xray.png`, ...extra });
      await page.goto(`${origin}/?${query}`);
      // An expression (the suite compiles without DOM types): Playwright awaits the promise it names.
      return await page.evaluate<Record<string, unknown>>('window.outcome');
    } finally {
      await page.close();
    }
  }

  it('from an origin in CORS_ORIGINS signs in, finds a patient by part of the name, uploads a PNG X-ray with the presigned instructions and shows it', async () => {
    const outcome = await runPage(allowed.origin);
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.patient, PATIENT);
    assert.deepEqual([outcome.width, outcome.height], [64, 48], 'the browser decoded the image it downloaded');
  });

  it('cannot upload a file of another size than the one announced: the instructions still bind the size', async () => {
    const outcome = await runPage(allowed.origin, { announce: 'larger' });
    assert.equal(outcome.ok, false);
    assert.match(String(outcome.error), /^Error: upload: 403 .*SignatureDoesNotMatch/s);
  });

  it('from any other origin is refused by the browser before a request reaches the API', async () => {
    const before = api.stdout.length;
    const outcome = await runPage(refused.origin);
    assert.equal(outcome.ok, false);
    assert.match(String(outcome.error), /Failed to fetch/);
    const requests = api.stdout.slice(before).map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.event === 'http_access');
    assert.deepEqual(requests.map((line) => [line.method, line.statusCode]), [['OPTIONS', 403]], 'only the preflight, refused');
  });
});
