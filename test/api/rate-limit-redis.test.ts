import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { createLogger } from '../../api/logger.js';
import { ResilientRedisStore } from '../../api/ratelimit/store.js';
import { LogCapture, startTestApi, type TestApi } from '../support/api.js';
import { loginAttempt, testClientIp } from '../support/auth.js';
import { eventually, freePort } from '../support/postgres.js';

/** The machine's Redis, shared with other runs: each test counts under a key prefix of its own. */
const MACHINE_REDIS = 'redis://127.0.0.1:6379';

/** A redis-server of our own that a test may stop and start again on the same port. */
class OwnRedis {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const server = new OwnRedis(await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await eventually(async () => {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
      } finally {
        probe.disconnect();
      }
    });
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/** `count` sign-in attempts from one client, sent in turn to each API (as a load balancer would). */
async function acrossApis(apis: TestApi[], count: number, clientIp: string, forged?: (i: number) => string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((await loginAttempt(apis[i % apis.length]!, { clientIp, forged: forged?.(i) })).status);
  return out;
}

const served = (statuses: number[]) => statuses.filter((s) => s !== 429).length;

describe('the requests of one turn ask Redis in one pipeline, each decided as if alone', () => {
  const prefix = `dms-test:${randomBytes(6).toString('hex')}`;
  const redis = new Redis(MACHINE_REDIS, { maxRetriesPerRequest: 1 });
  before(() => redis.ping());
  after(async () => {
    await deleteKeys(MACHINE_REDIS, prefix);
    redis.disconnect();
  });

  it('admits exactly the budget of one spender out of more requests in one turn, and sends them together', async () => {
    const store = new ResilientRedisStore(redis, createLogger({ level: 'error', env: 'test', stream: new LogCapture() }));
    const pipeline = redis.pipeline.bind(redis);
    let pipelines = 0;
    redis.pipeline = ((...args: Parameters<typeof pipeline>) => {
      pipelines += 1;
      return pipeline(...args);
    }) as typeof redis.pipeline;
    const now = Date.now();
    const replies = await Promise.all([
      ...Array.from({ length: 5 }, () => store.ratelimiter(`${prefix}:one`, now, 60_000, 3, '0')),
      store.ratelimiter(`${prefix}:other`, now, 60_000, 3, '0'),
    ]);
    assert.deepEqual(replies.map(([remaining]) => remaining), [3, 2, 1, 0, 0, 3], 'in the order asked, each spender on its own budget');
    assert.equal(pipelines, 1, 'one pipeline for the turn');
    const next = await store.ratelimiter(`${prefix}:one`, now, 60_000, 3, '0');
    assert.equal(next[0], 0, 'the next turn sees what the pipeline spent');
    assert.equal(pipelines, 2);
  });
});

describe('rate limits shared in Redis by several API tasks (REDIS_URL)', function () {
  this.timeout(60_000);
  const apis: TestApi[] = [];
  /** Our keys in the machine's Redis (our own redis-server keeps nothing once stopped). */
  const prefixes: string[] = [];
  /** Two API tasks behind one load balancer (TRUST_PROXY_HOPS=1), sharing one store under a fresh prefix. */
  async function twoTasks(redisUrl: string, env: Record<string, string> = {}): Promise<TestApi[]> {
    const prefix = `dms-test:${randomBytes(6).toString('hex')}`;
    if (redisUrl === MACHINE_REDIS) prefixes.push(prefix);
    const settings = { REDIS_URL: redisUrl, RATE_LIMIT_KEY_PREFIX: prefix, TRUST_PROXY_HOPS: '1', ...env };
    const pair = await Promise.all([startTestApi({ env: settings }), startTestApi({ env: settings })]);
    apis.push(...pair);
    return pair;
  }
  after(async () => {
    await Promise.all(apis.map((api) => api.close()));
    await Promise.all(prefixes.map((prefix) => deleteKeys(MACHINE_REDIS, prefix)));
  });

  it('two API processes allow exactly RATE_LIMIT_LOGIN_MAX sign-ins from one IP in a window, between them', async () => {
    const tasks = await twoTasks(MACHINE_REDIS, { RATE_LIMIT_LOGIN_MAX: '5' });
    const statuses = await acrossApis(tasks, 12, testClientIp());
    assert.equal(served(statuses), 5, `statuses ${statuses.join(',')}`);
    assert.deepEqual(statuses.slice(5), Array(7).fill(429));
    assert.ok(tasks.every((api) => api.logs.records('auth_login_rate_limited').length > 0), 'both tasks refuse once the shared budget is spent');
  });

  it('a forged X-Forwarded-For, sent to either task, does not reset the budget', async () => {
    const tasks = await twoTasks(MACHINE_REDIS, { RATE_LIMIT_LOGIN_MAX: '4' });
    const client = testClientIp();
    const statuses = await acrossApis(tasks, 10, client, (i) => `203.0.113.${i + 1}, ${testClientIp()}`);
    assert.equal(served(statuses), 4, `statuses ${statuses.join(',')}`);
    assert.ok(tasks.flatMap((api) => api.logs.records('auth_login_rate_limited')).every((r) => r.ip === client));
  });

  it('shares the sensitive-prefix budget too', async () => {
    const tasks = await twoTasks(MACHINE_REDIS, { RATE_LIMIT_SENSITIVE_MAX: '3' });
    const client = testClientIp();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await tasks[i % 2]!.request('GET', '/admin/users', { headers: { 'x-forwarded-for': client } })).status);
    assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429]);
  });

  describe('when Redis stops answering', () => {
    let redis: OwnRedis;
    before(async () => {
      redis = await OwnRedis.start();
    });
    after(async () => {
      redis.resume();
      await redis.stop();
    });

    it('each task falls back to its own budget (bounded, never a 500), logs the outage once, and shares again once Redis is back', async () => {
      const tasks = await twoTasks(redis.url, { RATE_LIMIT_LOGIN_MAX: '3', RATE_LIMIT_SENSITIVE_MAX: '1000' });
      const events = (event: string) => tasks.map((api) => api.logs.records(event).length);

      assert.equal(served(await acrossApis(tasks, 8, testClientIp())), 3, 'shared while Redis answers');

      await redis.stop();
      const during = await acrossApis(tasks, 12, testClientIp());
      assert.ok(during.every((s) => s === 401 || s === 429), `never a 500: ${during.join(',')}`);
      assert.equal(served(during), 6, `each of the two tasks allows its own 3: ${during.join(',')}`);
      assert.equal((await loginAttempt(tasks[0]!, { clientIp: testClientIp() })).status, 401, 'another client still gets in');
      for (const api of tasks) {
        assert.equal((await api.request('GET', '/auth/me')).status, 401, 'other sensitive routes answer');
        assert.equal((await api.request('GET', '/health')).status, 200);
      }
      assert.deepEqual(events('rate_limit_store_unavailable'), [1, 1], 'one warning per task per outage');
      assert.equal(tasks[0]!.logs.records('rate_limit_store_unavailable')[0]?.level, 'warn');

      await redis.start();
      // ioredis reconnects on its own (back-off up to 2 s); the next counted request is in Redis again.
      await eventually(async () => {
        for (const api of tasks) await loginAttempt(api, { clientIp: testClientIp() });
        assert.deepEqual(events('rate_limit_store_recovered'), [1, 1]);
      }, { timeoutMs: 15_000, intervalMs: 250 });
      assert.equal(served(await acrossApis(tasks, 8, testClientIp())), 3, 'shared again');
      assert.deepEqual(events('rate_limit_store_unavailable'), [1, 1]);
    });

    it('treats a Redis that hangs as down after half a second, and does not wait on it for every request', async () => {
      const tasks = await twoTasks(redis.url, { RATE_LIMIT_LOGIN_MAX: '3', RATE_LIMIT_SENSITIVE_MAX: '1000' });
      assert.equal((await loginAttempt(tasks[0]!, { clientIp: testClientIp() })).status, 401);
      redis.pause();
      try {
        const started = Date.now();
        const during = await acrossApis(tasks, 10, testClientIp());
        const elapsedMs = Date.now() - started;
        assert.equal(served(during), 6, `each task its own 3: ${during.join(',')}`);
        assert.ok(elapsedMs < 3_000, `10 requests took ${elapsedMs} ms: one 500 ms wait per task, not one per request`);
        for (const api of tasks) assert.equal(api.logs.records('rate_limit_store_unavailable')[0]?.cause, 'timed out');
      } finally {
        redis.resume();
      }
      await eventually(async () => {
        for (const api of tasks) await loginAttempt(api, { clientIp: testClientIp() });
        assert.deepEqual(tasks.map((api) => api.logs.records('rate_limit_store_recovered').length), [1, 1]);
      }, { timeoutMs: 15_000, intervalMs: 250 });
    });
  });
});
