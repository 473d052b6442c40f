import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../api/config.js';
import { SENSITIVE_PREFIXES } from '../../api/ratelimit/middleware.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { loginAttempt, testClientIp } from '../support/auth.js';

const statuses = (responses: { status: number }[]) => responses.map((r) => r.status);

async function inTurn<T>(count: number, attempt: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < count; i++) out.push(await attempt(i));
  return out;
}

describe('rate limits (in-process store: REDIS_URL unset)', function () {
  this.timeout(60_000);
  const apis: TestApi[] = [];
  const start = async (env: Record<string, string>) => {
    const api = await startTestApi({ env });
    apis.push(api);
    return api;
  };
  after(() => Promise.all(apis.map((api) => api.close())));

  describe('sign-in attempts per client IP (RATE_LIMIT_LOGIN_MAX / _WINDOW_S)', () => {
    let api: TestApi;
    before(async () => {
      api = await start({ RATE_LIMIT_LOGIN_MAX: '3', RATE_LIMIT_LOGIN_WINDOW_S: '900' });
    });

    it('answers 429 rate_limited past the budget, with Retry-After and X-RateLimit-* headers', async () => {
      const responses = await inTurn(4, () => loginAttempt(api));
      assert.deepEqual(statuses(responses), [401, 401, 401, 429]);
      const first = responses[0]!;
      assert.equal(first.headers.get('x-ratelimit-limit'), '3');
      assert.equal(first.headers.get('x-ratelimit-remaining'), '2');
      const limited = responses[3]!;
      assert.equal(limited.body.error, 'rate_limited');
      assert.equal(limited.body.requestId, limited.headers.get('x-request-id'));
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 900, `Retry-After ${retryAfter}`);
      assert.equal(limited.headers.get('x-ratelimit-limit'), '3');
      assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
      const reset = Number(limited.headers.get('x-ratelimit-reset'));
      assert.ok(Number.isInteger(reset) && reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 901, `X-RateLimit-Reset ${reset}`);
    });

    it('logs auth_login_rate_limited with the client IP, and the refused attempt never reaches the password check', async () => {
      const [line] = api.logs.records('auth_login_rate_limited');
      assert.equal(line?.level, 'warn');
      assert.equal(line?.ip, '127.0.0.1');
      assert.equal(api.logs.records('auth_login_invalid_user').length, 3);
    });

    it('leaves other routes to their own budget', async () => {
      assert.equal((await api.request('GET', '/auth/me')).status, 401);
      assert.equal((await api.request('GET', '/health')).status, 200);
    });

    it('gives the budget back when the window has passed', async () => {
      const short = await start({ RATE_LIMIT_LOGIN_MAX: '2', RATE_LIMIT_LOGIN_WINDOW_S: '1' });
      assert.deepEqual(statuses(await inTurn(3, () => loginAttempt(short))), [401, 401, 429]);
      // The in-process store ends windows on whole seconds (X-RateLimit-Reset), so up to 1 s later.
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      assert.equal((await loginAttempt(short)).status, 401);
    });
  });

  describe('sensitive prefixes per (client IP, prefix) (RATE_LIMIT_SENSITIVE_MAX / _WINDOW_S)', () => {
    let api: TestApi;
    before(async () => {
      api = await start({ RATE_LIMIT_SENSITIVE_MAX: '3', RATE_LIMIT_SENSITIVE_WINDOW_S: '300' });
    });

    it('answers 429 past the budget of one prefix and logs api_sensitive_rate_limited', async () => {
      const responses = await inTurn(4, () => api.request('GET', '/admin/users'));
      assert.deepEqual(statuses(responses), [401, 401, 401, 429]);
      assert.equal(responses[3]!.body.error, 'rate_limited');
      assert.ok(Number(responses[3]!.headers.get('retry-after')) >= 1);
      const [line] = api.logs.records('api_sensitive_rate_limited');
      assert.equal(line?.ip, '127.0.0.1');
      assert.equal(line?.prefix, 'admin', 'the prefix, not the path as typed (which may hold PHI)');
    });

    it('counts each prefix apart; another spelling of a prefix reaches nothing, so it is no way round the budget', async () => {
      const paths = ['/patients', '/PATIENTS/1', '/%70atients/2', '/patients/3', '/patients/4', '/patients/5'];
      assert.deepEqual(statuses(await inTurn(6, (i) => api.request('GET', paths[i]!))), [401, 404, 404, 401, 401, 429]);
      assert.notEqual((await api.request('GET', '/visits/1')).status, 429);
    });

    it('limits every sensitive prefix of the contract and nothing else', async () => {
      const one = await start({ RATE_LIMIT_SENSITIVE_MAX: '1' });
      for (const prefix of SENSITIVE_PREFIXES) {
        await one.request('GET', `/${prefix}/x`);
        assert.equal((await one.request('GET', `/${prefix}/x`)).status, 429, prefix);
      }
      for (const path of ['/health', '/health/ready', '/no-such-prefix', '/rxx', '/authentic']) {
        await one.request('GET', path);
        assert.notEqual((await one.request('GET', path)).status, 429, path);
      }
    });
  });

  describe('configuration', () => {
    it('takes a Redis key prefix (RATE_LIMIT_KEY_PREFIX) and refuses one that is not a plain name', () => {
      assert.equal(loadConfig({ RATE_LIMIT_KEY_PREFIX: 'dms:staging' }).rateLimitKeyPrefix, 'dms:staging');
      assert.throws(() => loadConfig({ RATE_LIMIT_KEY_PREFIX: 'dms *' }), (error: unknown) => error instanceof ConfigError && error.variable === 'RATE_LIMIT_KEY_PREFIX');
    });

    it('takes per-role budgets for signed-in users (RATE_LIMIT_ROLE_MAX, RATE_LIMIT_USER_WINDOW_S) and refuses what is not role=max', () => {
      assert.deepEqual(loadConfig({}).rateLimits.user, { maxByRole: { admin: 300, doctor: 600, staff: 600, auditor: 300 }, windowS: 300 });
      const set = loadConfig({ RATE_LIMIT_ROLE_MAX: ' staff=900, auditor=50 ', RATE_LIMIT_USER_WINDOW_S: '60' }).rateLimits.user;
      assert.deepEqual(set, { maxByRole: { admin: 300, doctor: 600, staff: 900, auditor: 50 }, windowS: 60 });
      for (const bad of ['staff', 'staff=', 'nurse=10', 'staff=0', 'staff=10,staff=20', 'staff=1e3', 'staff=10;doctor=20']) {
        assert.throws(() => loadConfig({ RATE_LIMIT_ROLE_MAX: bad }), (error: unknown) => error instanceof ConfigError && error.variable === 'RATE_LIMIT_ROLE_MAX', bad);
      }
      assert.throws(() => loadConfig({ RATE_LIMIT_USER_WINDOW_S: '0' }), (error: unknown) => error instanceof ConfigError && error.variable === 'RATE_LIMIT_USER_WINDOW_S');
    });
  });

  describe('the client IP behind the load balancer (TRUST_PROXY_HOPS)', () => {
    it('with one trusted hop: a forged X-Forwarded-For does not give a fresh budget; another client has its own', async () => {
      const api = await start({ TRUST_PROXY_HOPS: '1', RATE_LIMIT_LOGIN_MAX: '3' });
      const client = testClientIp();
      const forged = await inTurn(5, (i) => loginAttempt(api, { clientIp: client, forged: i === 0 ? undefined : `10.0.0.${i}, 192.0.2.${i}` }));
      assert.deepEqual(statuses(forged), [401, 401, 401, 429, 429]);
      assert.deepEqual([...new Set(api.logs.records('auth_login_invalid_user').map((r) => r.ip))], [client]);
      assert.equal((await loginAttempt(api, { clientIp: testClientIp() })).status, 401);
    });

    it('with none (the default): X-Forwarded-For is ignored and the socket address counts', async () => {
      const api = await start({ RATE_LIMIT_LOGIN_MAX: '2' });
      const responses = await inTurn(3, () => loginAttempt(api, { clientIp: testClientIp() }));
      assert.deepEqual(statuses(responses), [401, 401, 429]);
      assert.equal(api.logs.records('auth_login_rate_limited')[0]?.ip, '127.0.0.1');
    });
  });
});
