import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from '../support/api.js';
import { signedIn, type SignedIn } from '../support/auth.js';

const WEB_APP = 'http://app.dms.test:5173';
const OTHER_SITE = 'https://evil.example';

/** What a browser sends before a cross-origin request it may not send unasked. */
const preflight = (api: TestApi, path: string, origin: string, method = 'GET', headers = 'authorization') =>
  api.request('OPTIONS', path, { headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });

describe('CORS: browsers on the configured web client origins, and only those (issue 17)', () => {
  let api: TestApi;
  let doctor: SignedIn;
  before(async () => {
    // A sensitive-prefix budget of 2 anonymous requests: a preflight counted against it would show at once.
    api = await startTestApi({ env: { CORS_ORIGINS: `${WEB_APP},https://app.dms.test`, RATE_LIMIT_SENSITIVE_MAX: '2', RATE_LIMIT_ROLE_MAX: 'doctor=1000' } });
    doctor = await signedIn(api, 'doctor');
  });
  after(() => api.close());

  describe('preflights', () => {
    it('answer an allowed origin 204 with the route\'s methods, the allowed headers and a max age, without a token', async () => {
      const res = await preflight(api, '/patients', WEB_APP, 'POST', 'authorization, content-type, idempotency-key');
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), WEB_APP);
      assert.deepEqual(res.headers.get('access-control-allow-methods')!.split(', ').sort(), ['GET', 'POST']);
      assert.deepEqual(res.headers.get('access-control-allow-headers')!.toLowerCase().split(', ').sort(), ['authorization', 'content-type', 'idempotency-key', 'x-request-id']);
      assert.equal(res.headers.get('access-control-max-age'), '600');
      assert.equal(res.headers.get('access-control-allow-credentials'), null, 'bearer tokens: a browser never sends credentials');
      assert.match(res.headers.get('vary') ?? '', /Origin/);
    });

    it('serve a templated path (ids) with its own methods', async () => {
      const res = await preflight(api, `/patients/${crypto.randomUUID()}`, WEB_APP, 'PATCH');
      assert.equal(res.status, 204);
      assert.ok(res.headers.get('access-control-allow-methods')!.split(', ').includes('PATCH'));
    });

    it('are never rate-limited nor authenticated: many of them leave the anonymous budget of a sensitive prefix untouched', async () => {
      for (let i = 0; i < 6; i += 1) assert.equal((await preflight(api, '/medicines', WEB_APP)).status, 204);
      const res = await api.request('GET', '/medicines', { headers: { origin: WEB_APP } });
      assert.equal(res.status, 401, 'the first real anonymous request is still within its budget of 2');
      assert.equal(res.headers.get('x-ratelimit-remaining'), '1');
    });

    it('refuse an origin not in CORS_ORIGINS (403, no CORS headers): the browser does not send the request', async () => {
      for (const origin of [OTHER_SITE, 'http://app.dms.test', `${WEB_APP}.evil.example`, 'null']) {
        const res = await preflight(api, '/patients', origin);
        assert.equal(res.status, 403, origin);
        assert.equal(res.body.error, 'origin_not_allowed');
        assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
      }
    });

    it('refuse a path no route serves (404, no CORS headers), in any spelling', async () => {
      for (const path of ['/no-such-route', '/PATIENTS', '/patients/']) {
        const res = await preflight(api, path, WEB_APP);
        assert.equal(res.status, 404, path);
        assert.equal(res.headers.get('access-control-allow-origin'), null, path);
      }
    });
  });

  describe('requests', () => {
    it('from an allowed origin name it (never *) and expose the headers a client reads, on successes and errors', async () => {
      const ok = await api.request('GET', '/patients', { token: doctor.accessToken, headers: { origin: WEB_APP } });
      assert.equal(ok.status, 200);
      const unauthorized = await api.request('GET', '/patients', { headers: { origin: WEB_APP } });
      assert.equal(unauthorized.status, 401);
      for (const res of [ok, unauthorized]) {
        assert.equal(res.headers.get('access-control-allow-origin'), WEB_APP);
        const exposed = res.headers.get('access-control-expose-headers')!.toLowerCase().split(', ');
        for (const header of ['retry-after', 'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) assert.ok(exposed.includes(header), header);
        assert.match(res.headers.get('vary') ?? '', /Origin/);
        assert.equal(res.headers.get('access-control-allow-credentials'), null);
      }
    });

    it('from an allowed origin can read a 429 and its Retry-After', async () => {
      const statuses: number[] = [];
      let res;
      do {
        res = await api.request('GET', '/reports/visits', { headers: { origin: WEB_APP } });
        statuses.push(res.status);
      } while (res.status !== 429 && statuses.length < 3);
      assert.deepEqual(statuses, [401, 401, 429], 'a budget of 2 anonymous requests');
      assert.equal(res.headers.get('access-control-allow-origin'), WEB_APP);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
    });

    it('from any other origin get no CORS headers (the browser withholds the response), and same-origin callers are unchanged', async () => {
      const other = await api.request('GET', '/patients', { token: doctor.accessToken, headers: { origin: OTHER_SITE } });
      const sameOrigin = await api.request('GET', '/patients', { token: doctor.accessToken });
      for (const res of [other, sameOrigin]) {
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('access-control-allow-origin'), null);
        assert.equal(res.headers.get('access-control-expose-headers'), null);
        assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin', 'no-cors loads (an <img> of another site) stay refused');
      }
    });
  });

  it('is off without CORS_ORIGINS: every preflight is refused', async () => {
    const plain = await startTestApi();
    try {
      const res = await preflight(plain, '/patients', WEB_APP);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    } finally {
      await plain.close();
    }
  });
});
