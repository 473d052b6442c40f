import type { Redis } from 'ioredis';
import MemoryLimiter from 'koa-ratelimit/limiter/memory.js';
import RedisLimiter from 'koa-ratelimit/limiter/redis.js';
import { withTimeout } from '../health.js';
import type { Logger } from '../logger.js';

type Window = Awaited<ReturnType<MemoryLimiter['get']>>;

const SWEEP_INTERVAL_MS = 60_000;

/**
 * The in-process counters (koa-ratelimit's memory driver keeps one entry per client and never
 * drops it): windows that have ended are swept, so one-off client addresses cannot grow the heap
 * without bound.
 */
export class ExpiringWindows extends Map<string, Window> {
  private lastSweepMs = Date.now();

  override set(key: string, window: Window): this {
    const now = Date.now();
    if (now - this.lastSweepMs >= SWEEP_INTERVAL_MS) {
      this.lastSweepMs = now;
      for (const [k, w] of this) if (w.reset * 1000 <= now) this.delete(k);
    }
    // The limiter returns this same object to koa-ratelimit, which prints `reset` in
    // X-RateLimit-Reset: whole seconds, as the Redis store answers. Rounded up, so a window may
    // last up to a second longer, never shorter, and ends exactly when the header says.
    window.reset = Math.ceil(window.reset);
    return super.set(key, window);
  }
}

/** A Redis command that takes longer than this is treated as an outage (same-AZ Redis answers in ~1 ms). */
const REDIS_TIMEOUT_MS = 500;
/** After a failure, requests count in memory for this long before Redis is tried again (so a hung Redis costs one slow request per 2 s, not 500 ms each). */
const RETRY_AFTER_FAILURE_MS = 2_000;
const COMMAND = 'dmsRateLimit';

/** `reset`: UNIX seconds. */
type LimiterReply = [remaining: number, reset: number, total: number];
type RedisWithLimiter = Redis & { [COMMAND](key: string, nowMs: number, durationMs: number, max: number, peek: string): Promise<LimiterReply> };

/**
 * What koa-ratelimit's Redis driver (async-ratelimiter) is given as its `db`: it calls
 * `db.ratelimiter(key, nowMs, durationMs, max, peek)` once per request.
 *
 * - While Redis answers, the counters are shared by every task (async-ratelimiter's sliding-window
 *   Lua script, run on our client).
 * - While it does not (closed, refusing, slower than 500 ms), each task counts in its own memory
 *   and tries Redis again at most every 2 s:
 *   the budget becomes per task, still bounded, never open, never a 500 (koa-ratelimit as shipped
 *   answers 500 when its Redis is closed) and never a lock-out of everyone. The outage is logged
 *   once (`rate_limit_store_unavailable`), and its end once (`rate_limit_store_recovered`).
 * - The script answers `reset` already in whole UNIX seconds (it floors milliseconds / 1000), which
 *   is what koa-ratelimit prints in X-RateLimit-Reset and counts Retry-After from: passed on as is.
 */
export class ResilientRedisStore {
  private readonly redis: RedisWithLimiter;
  private readonly fallback = new ExpiringWindows();
  private outage = false;
  private nextAttemptAt = 0;

  constructor(redis: Redis, private readonly log: Logger) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, RedisLimiter.defineCommand.ratelimiter);
    this.redis = redis as RedisWithLimiter;
  }

  async ratelimiter(key: string, nowMs: number, durationMs: number, max: number, peek: string): Promise<LimiterReply> {
    if (this.redis.status === 'ready' && Date.now() >= this.nextAttemptAt) {
      try {
        const reply = await withTimeout(this.redis[COMMAND](key, nowMs, durationMs, max, peek), REDIS_TIMEOUT_MS);
        this.recovered();
        return reply;
      } catch (error) {
        // ioredis and the timeout say what failed ("Connection is closed.", "timed out"); never a credential.
        this.unavailable(error instanceof Error ? error.message.slice(0, 120) : 'non_error');
      }
    } else if (this.redis.status !== 'ready') {
      this.unavailable(`connection_${this.redis.status}`);
    }
    const window = await new MemoryLimiter({ id: key, db: this.fallback, max, duration: durationMs }).get();
    return [window.remaining, window.reset, window.total];
  }

  private unavailable(cause: string): void {
    this.nextAttemptAt = Date.now() + RETRY_AFTER_FAILURE_MS;
    if (this.outage) return;
    this.outage = true;
    this.log.warn('rate_limit_store_unavailable', {
      store: 'redis',
      cause,
      detail: 'Redis does not answer: each task now counts rate limits in its own memory until it does',
    });
  }

  private recovered(): void {
    if (!this.outage) return;
    this.outage = false;
    this.log.info('rate_limit_store_recovered', { store: 'redis', detail: 'rate limits are counted in Redis again' });
  }
}
