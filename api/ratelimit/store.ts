import type { Redis } from 'ioredis';
import { withTimeout } from '../health.js';
import type { Logger } from '../logger.js';
import { perTurn } from '../turn-batching.js';
import { GCRA_LUA, MemoryGcra, type LimiterReply } from './gcra.js';

/** A Redis command that takes longer than this is treated as an outage (same-AZ Redis answers in ~1 ms). */
const REDIS_TIMEOUT_MS = 500;
/** After a failure, requests count in memory for this long before Redis is tried again (so a hung Redis costs one slow request per 2 s, not 500 ms each). */
const RETRY_AFTER_FAILURE_MS = 2_000;
const COMMAND = 'dmsRateLimitGcra';

type LimiterArgs = [key: string, nowMs: number, durationMs: number, max: number, peek: string];
/** A pipeline of the client the script was defined on: it has the command too. */
type LimiterPipeline = { [COMMAND](...args: LimiterArgs): void; exec(): Promise<[Error | null, unknown][] | null> };

/**
 * What koa-ratelimit's Redis driver (async-ratelimiter) is given as its `db`: it calls
 * `db.ratelimiter(key, nowMs, durationMs, max, peek)` once per request.
 *
 * - While Redis answers, the budgets are shared by every task (GCRA, api/ratelimit/gcra.ts: one
 *   `GET` and one `SET` per request in a Lua script, whatever the budget's size). The requests that
 *   ask in one turn of the event loop go to Redis as one pipeline: one write and one wake-up of
 *   Redis for all of them, each decided exactly as alone (Redis runs them one after another).
 * - While it does not (closed, refusing, slower than 500 ms), each task counts in its own memory
 *   and tries Redis again at most every 2 s:
 *   the budget becomes per task, still bounded, never open, never a 500 (koa-ratelimit as shipped
 *   answers 500 when its Redis is closed) and never a lock-out of everyone. The outage is logged
 *   once (`rate_limit_store_unavailable`), and its end once (`rate_limit_store_recovered`).
 * - `reset` comes back in whole UNIX seconds, which is what koa-ratelimit prints in
 *   X-RateLimit-Reset and counts Retry-After from: passed on as is.
 */
export class ResilientRedisStore {
  private readonly fallback = new MemoryGcra();
  private outage = false;
  private nextAttemptAt = 0;
  /** This turn's requests, as one pipeline: each reply, or the error of its own command. */
  private readonly ask = perTurn(async (batch: LimiterArgs[]) => {
    const pipeline = this.redis.pipeline() as unknown as LimiterPipeline;
    for (const args of batch) pipeline[COMMAND](...args);
    return (await pipeline.exec()) ?? [];
  });

  constructor(private readonly redis: Redis, private readonly log: Logger) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: GCRA_LUA });
  }

  async ratelimiter(key: string, nowMs: number, durationMs: number, max: number, peek: string): Promise<LimiterReply> {
    if (this.redis.status === 'ready' && Date.now() >= this.nextAttemptAt) {
      try {
        const [error, reply] = (await withTimeout(this.ask([key, nowMs, durationMs, max, peek]), REDIS_TIMEOUT_MS)) ?? [new Error('no reply')];
        if (error) throw error;
        this.recovered();
        return reply as LimiterReply;
      } catch (error) {
        // ioredis and the timeout say what failed ("Connection is closed.", "timed out"); never a credential.
        this.unavailable(error instanceof Error ? error.message.slice(0, 120) : 'non_error');
      }
    } else if (this.redis.status !== 'ready') {
      this.unavailable(`connection_${this.redis.status}`);
    }
    return this.fallback.ratelimiter(key, nowMs, durationMs, max, peek);
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
