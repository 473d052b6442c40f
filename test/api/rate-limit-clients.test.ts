// Whose budget a request spends, with each store: every limited prefix counts each client apart
// (a limiter keyed by a constant, or by the prefix alone, fails here), IPv6 clients count by /64,
// signed-in requests count per user with their role's budget, and a 429 tells the time that is
// really left.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { clientKey } from '../../api/http/client-key.js';
import { startTestApi, type TestApi } from '../support/api.js';
import type { Role } from '../../api/db/entities.js';
import { createUser, loginAttempt, signIn, testClientIp, type TestUser } from '../support/auth.js';

const MACHINE_REDIS = 'redis://127.0.0.1:6379';

/** The contract's sensitive prefixes (CONTRACT §2), written out here rather than read from the code under test. */
const CONTRACT_PREFIXES = ['auth', 'patients', 'visits', 'reports', 'xrays', 'rx', 'medicines', 'rx-presets', 'admin'];

/** A random IPv4 address of the documentation ranges (RFC 5737). */
const testIpv4 = () => `198.51.100.${1 + (randomBytes(1)[0]! % 254)}`;

const STORES = [
  { name: 'in-process store (REDIS_URL unset)', env: (): Record<string, string> => ({}) },
  { name: 'Redis store (REDIS_URL)', env: (): Record<string, string> => ({ REDIS_URL: MACHINE_REDIS, RATE_LIMIT_KEY_PREFIX: `dms-test:${randomBytes(6).toString('hex')}` }) },
];

describe('whose budget a request spends', function () {
  this.timeout(60_000);
  const apis: TestApi[] = [];
  const keyPrefixes: string[] = [];
  /** An API behind one load balancer (TRUST_PROXY_HOPS=1): the X-Forwarded-For a test writes is the client's address. */
  async function start(storeEnv: Record<string, string>, env: Record<string, string>): Promise<TestApi> {
    if (storeEnv.RATE_LIMIT_KEY_PREFIX) keyPrefixes.push(storeEnv.RATE_LIMIT_KEY_PREFIX);
    const api = await startTestApi({ env: { TRUST_PROXY_HOPS: '1', ...storeEnv, ...env } });
    apis.push(api);
    return api;
  }
  after(async () => {
    await Promise.all(apis.map((api) => api.close()));
    const redis = new Redis(MACHINE_REDIS, { maxRetriesPerRequest: 1 });
    try {
      for (const prefix of keyPrefixes) {
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length) await redis.del(...keys);
      }
    } finally {
      redis.disconnect();
    }
  });

  describe('the client key', () => {
    it('is an IPv4 address itself, an IPv4-mapped IPv6 address as IPv4, an IPv6 address its /64', () => {
      assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
      assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
      assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
      assert.equal(clientKey('2001:DB8:1:2::9'), '2001:db8:1:2::/64');
      assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
      assert.equal(clientKey('::1'), '0:0:0:0::/64');
      assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
      assert.equal(clientKey('2001:db8:1:2:3:4:192.0.2.1'), '2001:db8:1:2::/64');
      assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
    });
  });

  for (const store of STORES) {
    describe(store.name, () => {
      const send = (api: TestApi, prefix: string, client: string) =>
        prefix === 'login' ? loginAttempt(api, { clientIp: client }) : api.request('GET', `/${prefix}/x`, { headers: { 'x-forwarded-for': client } });

      it('counts sign-in attempts and each sensitive prefix per client: one client past its budget does not limit another', async () => {
        const api = await start(store.env(), { RATE_LIMIT_LOGIN_MAX: '2', RATE_LIMIT_SENSITIVE_MAX: '2' });
        for (const prefix of ['login', ...CONTRACT_PREFIXES]) {
          const [spender, other] = [testClientIp(), testIpv4()];
          const spent: number[] = [];
          for (let i = 0; i < 3; i++) spent.push((await send(api, prefix, spender)).status);
          assert.equal(spent[2], 429, `${prefix}: the third request of one client is over its budget of 2 (${spent.join(',')})`);
          assert.ok(spent.slice(0, 2).every((s) => s !== 429), `${prefix}: ${spent.join(',')}`);
          assert.notEqual((await send(api, prefix, other)).status, 429, `${prefix}: another client has a budget of its own`);
        }
      });

      it('counts an IPv6 client by its /64: other addresses of the same /64 share the budget, the next /64 has its own', async () => {
        const api = await start(store.env(), { RATE_LIMIT_LOGIN_MAX: '3', RATE_LIMIT_SENSITIVE_MAX: '3' });
        const net = `2001:db8:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;
        const inNet = (i: number) => `${net}:${randomBytes(2).toString('hex')}::${i + 1}`;
        for (const prefix of ['login', 'patients']) {
          const statuses: number[] = [];
          for (let i = 0; i < 5; i++) statuses.push((await send(api, prefix, inNet(i))).status);
          assert.deepEqual(statuses.map((s) => s === 429), [false, false, false, true, true], `${prefix}: five addresses of one /64 share 3 (${statuses.join(',')})`);
          const nextNet = `2001:db8:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}::1`;
          assert.notEqual((await send(api, prefix, nextNet)).status, 429, `${prefix}: another /64`);
        }
        const [line] = api.logs.records('auth_login_rate_limited');
        assert.match(String(line?.ip), new RegExp(`^${net}:`), 'the log keeps the address the client used');
        assert.equal(line?.client, `${net}::/64`.replace(/:0+([0-9a-f])/g, ':$1'), 'and names the budget it spent');
      });

      it("counts a signed-in user's requests on each prefix against the user's own budget: users behind one address do not share, one user from two addresses does", async () => {
        const api = await start(store.env(), { RATE_LIMIT_ROLE_MAX: 'staff=2', RATE_LIMIT_SENSITIVE_MAX: '1' });
        const clinic = testIpv4();
        const [first, second] = [await createUser('staff'), await createUser('staff')];
        const tokenOf = async (user: TestUser) => (await signIn(api, user, { 'x-forwarded-for': testClientIp() })).accessToken;
        const [firstToken, secondToken] = [await tokenOf(first), await tokenOf(second)];
        const get = (path: string, client: string, token?: string) => api.request('GET', path, { token, headers: { 'x-forwarded-for': client } });
        for (const prefix of CONTRACT_PREFIXES) {
          const path = `/${prefix}/x`;
          const spent = [await get(path, clinic, firstToken), await get(path, clinic, firstToken), await get(path, testIpv4(), firstToken)].map((r) => r.status);
          assert.equal(spent[2], 429, `${prefix}: the user's third request, from another address, is over the user's budget of 2 (${spent.join(',')})`);
          assert.ok(spent.slice(0, 2).every((s) => s !== 429), `${prefix}: ${spent.join(',')}`);
          assert.notEqual((await get(path, clinic, secondToken)).status, 429, `${prefix}: a colleague behind the same address has a budget of their own`);
          assert.notEqual((await get(path, clinic)).status, 429, `${prefix}: the address's anonymous budget is apart from its users'`);
        }
        const [line] = api.logs.records('api_sensitive_rate_limited');
        assert.equal(line?.userId, first.id);
        assert.equal(line?.role, 'staff');
        assert.equal(line?.limit, 2);
        assert.equal(line?.client, undefined, 'a signed-in budget is the user, not an address');
      });

      it('sizes the budget by role (RATE_LIMIT_ROLE_MAX), and a token that does not verify spends the anonymous budget of its address', async () => {
        const api = await start(store.env(), { RATE_LIMIT_ROLE_MAX: 'doctor=3,auditor=1', RATE_LIMIT_SENSITIVE_MAX: '1' });
        const statusesOf = async (role: Role, count: number) => {
          const { accessToken } = await signIn(api, await createUser(role), { 'x-forwarded-for': testClientIp() });
          const out: number[] = [];
          for (let i = 0; i < count; i++) out.push((await api.request('GET', '/patients', { token: accessToken, headers: { 'x-forwarded-for': testIpv4() } })).status);
          return out.map((s) => s === 429);
        };
        assert.deepEqual(await statusesOf('doctor', 4), [false, false, false, true]);
        assert.deepEqual(await statusesOf('auditor', 2), [false, true]);
        const client = testIpv4();
        const forged = `${(await signIn(api, await createUser('staff'), { 'x-forwarded-for': testClientIp() })).accessToken}x`;
        const anonymous = [];
        for (let i = 0; i < 2; i++) anonymous.push((await api.request('GET', '/patients', { token: forged, headers: { 'x-forwarded-for': client } })).status);
        assert.deepEqual(anonymous, [401, 429]);
      });

      it('answers a 429 with the time really left: Retry-After near the window, X-RateLimit-Reset in UNIX seconds', async () => {
        const api = await start(store.env(), { RATE_LIMIT_LOGIN_MAX: '1', RATE_LIMIT_LOGIN_WINDOW_S: '900' });
        const client = testClientIp();
        const before = Date.now() / 1000;
        assert.equal((await loginAttempt(api, { clientIp: client })).status, 401);
        const limited = await loginAttempt(api, { clientIp: client });
        assert.equal(limited.status, 429);
        const retryAfter = Number(limited.headers.get('retry-after'));
        assert.ok(retryAfter >= 890 && retryAfter <= 900, `Retry-After ${retryAfter}: the window began with the first attempt`);
        const reset = Number(limited.headers.get('x-ratelimit-reset'));
        assert.ok(Number.isInteger(reset) && reset >= before + 890 && reset <= Date.now() / 1000 + 901, `X-RateLimit-Reset ${reset}`);
        assert.equal(Number(limited.headers.get('x-ratelimit-remaining')), 0);
      });
    });
  }
});
