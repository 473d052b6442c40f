import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { GCRA_LUA, MemoryGcra, type LimiterReply } from '../../api/ratelimit/gcra.js';

/** A fixed clock: 2027-01-15T08:00:00Z, in milliseconds. */
const T0 = 1_800_000_000_000;
const S0 = T0 / 1000;

interface Step {
  atMs: number;
  peek?: boolean;
  /** [remaining before this request (0 = refused), reset in UNIX seconds]. */
  expect: [number, number];
}

/** One budget's life, as the contract's clients see it through X-RateLimit-Remaining/-Reset and Retry-After. */
const CASES: { name: string; max: number; durationMs: number; steps: Step[] }[] = [
  {
    name: '3 per second: all three at once, then one more each third of a second',
    max: 3, durationMs: 1000,
    steps: [
      { atMs: 0, expect: [3, S0 + 1] },
      { atMs: 0, expect: [2, S0 + 1] },
      { atMs: 0, expect: [1, S0 + 1] },
      // Refused: the next admission is one interval (333.3 ms) after the budget was spent.
      { atMs: 0, expect: [0, S0 + 1] },
      { atMs: 334, expect: [1, S0 + 2] },
      { atMs: 335, expect: [0, S0 + 1] },
      // A whole window later the whole budget is back.
      { atMs: 2_000, expect: [3, S0 + 3] },
    ],
  },
  {
    name: 'one sign-in per 900 s: the second waits the whole interval',
    max: 1, durationMs: 900_000,
    steps: [
      { atMs: 0, expect: [1, S0 + 900] },
      { atMs: 10_000, expect: [0, S0 + 900] },
      { atMs: 899_000, expect: [0, S0 + 900] },
      { atMs: 900_000, expect: [1, S0 + 1800] },
    ],
  },
  {
    name: 'a peek answers without spending',
    max: 2, durationMs: 10_000,
    steps: [
      { atMs: 0, peek: true, expect: [2, S0 + 5] },
      { atMs: 0, peek: true, expect: [2, S0 + 5] },
      { atMs: 0, expect: [2, S0 + 5] },
      { atMs: 0, expect: [1, S0 + 10] },
      { atMs: 0, expect: [0, S0 + 5] },
    ],
  },
];

type Decide = (key: string, nowMs: number, durationMs: number, max: number, peek: string) => Promise<LimiterReply> | LimiterReply;

function runCases(decide: () => Decide) {
  for (const c of CASES) {
    it(c.name, async () => {
      const key = `gcra-test:${randomBytes(6).toString('hex')}`;
      const seen = [];
      for (const step of c.steps) seen.push([...(await decide()(key, T0 + step.atMs, c.durationMs, c.max, step.peek ? '1' : '0'))].slice(0, 2));
      assert.deepEqual(seen, c.steps.map((s) => s.expect));
    });
  }
}

describe('rate-limit budgets are GCRA: a burst of the whole budget, then one request per window/max', () => {
  describe('in memory (no REDIS_URL, or while Redis does not answer)', () => {
    const memory = new MemoryGcra();
    runCases(() => memory.ratelimiter.bind(memory));
  });

  describe('in Redis (shared by every task), the same decisions', () => {
    let redis: Redis;
    const keys: string[] = [];
    before(() => {
      redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    });
    after(async () => {
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    });
    runCases(() => async (key, nowMs, durationMs, max, peek) => {
      keys.push(key);
      return (await redis.eval(GCRA_LUA, 1, key, nowMs, durationMs, max, peek)) as LimiterReply;
    });

    it('keeps one key per spender, living only until the budget is whole again', async () => {
      const key = `gcra-test:${randomBytes(6).toString('hex')}`;
      keys.push(key);
      const now = Date.now();
      for (let i = 0; i < 500; i++) await redis.eval(GCRA_LUA, 1, key, now, 300_000, 1_000_000, '0');
      assert.equal(await redis.type(key), 'string');
      // 500 requests of a 1,000,000-per-300 s budget: 500 × 0.3 ms = 150 ms until it is whole.
      const ttl = await redis.pttl(key);
      assert.ok(ttl > 0 && ttl <= 150, `TTL ${ttl} ms`);
    });
  });
});
