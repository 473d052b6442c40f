/**
 * GCRA, the generic cell rate algorithm (ITU-T I.371; as in redis-cell and Stripe's limiter): a
 * budget of `max` requests per `duration` is one number per spender, its theoretical arrival time
 * (`tat`), instead of a log of every request in the window. Each request admitted pushes `tat` one
 * emission interval (`duration / max`) further; a request is refused while that would put `tat`
 * more than `duration` ahead of now. So a spender may use all `max` at once and then gets one more
 * every `duration / max`, and every decision is O(1) in time and memory whatever the budget.
 *
 * The answer is what koa-ratelimit's Redis driver expects from `db.ratelimiter(...)`:
 * `[remaining, reset, total]`, with `remaining` counted before this request (0 = refused) and
 * `reset` in whole UNIX seconds: when the whole budget is back for an admitted request, when the
 * next request will be admitted for a refused one (koa-ratelimit turns it into Retry-After).
 *
 * This file is the definition; `GCRA_LUA` below is the same steps for Redis, and the tests run
 * both against one table of cases.
 */
export type LimiterReply = [remaining: number, reset: number, total: number];

/**
 * Float slack, in milliseconds and in requests: `duration / max` is rarely exact in binary, and a
 * budget of 3 per second must not refuse its third request because 3 × 333.33… > 1000.
 */
const SLACK = 1e-6;

/** One decision: the reply, and the spender's new `tat` (undefined when it does not change). */
export function gcra(tat: number | undefined, nowMs: number, durationMs: number, max: number): { reply: LimiterReply; tat?: number } {
  const interval = durationMs / max;
  const start = Math.max(tat ?? nowMs, nowMs);
  const backlog = start - nowMs;
  if (backlog + interval > durationMs + SLACK) return { reply: [0, Math.ceil((start + interval - durationMs) / 1000), max] };
  const remaining = Math.floor((durationMs - backlog) / interval + SLACK);
  return { reply: [remaining, Math.ceil((start + interval) / 1000), max], tat: start + interval };
}

/**
 * The same steps in Redis: `GET` the spender's `tat`, `SET` it with a TTL of exactly the time
 * until the budget is whole again (so idle spenders cost nothing). ARGV as async-ratelimiter
 * passes them: now (ms, fractional), duration (ms), max, peek ('1': answer without counting).
 * Redis turns Lua numbers into integer replies, so every number returned is whole already.
 */
export const GCRA_LUA = `
local now = tonumber(ARGV[1])
local duration = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local interval = duration / max
local start = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local backlog = start - now
if backlog + interval > duration + ${SLACK} then
  return {0, math.ceil((start + interval - duration) / 1000), max}
end
if ARGV[4] ~= '1' then
  redis.call('SET', KEYS[1], string.format('%.3f', start + interval), 'PX', math.ceil(backlog + interval))
end
return {math.floor((duration - backlog) / interval + ${SLACK}), math.ceil((start + interval) / 1000), max}
`;

const SWEEP_INTERVAL_MS = 60_000;

/**
 * GCRA in one process's memory: without `REDIS_URL`, and while Redis does not answer. Spenders
 * whose budget is whole again are swept, so one-off client addresses cannot grow the heap.
 */
export class MemoryGcra {
  private readonly tats = new Map<string, number>();
  private lastSweepMs = Date.now();

  ratelimiter(key: string, nowMs: number, durationMs: number, max: number, peek: string): LimiterReply {
    if (nowMs - this.lastSweepMs >= SWEEP_INTERVAL_MS) {
      this.lastSweepMs = nowMs;
      for (const [k, tat] of this.tats) if (tat <= nowMs) this.tats.delete(k);
    }
    const { reply, tat } = gcra(this.tats.get(key), nowMs, durationMs, max);
    if (tat !== undefined && peek !== '1') this.tats.set(key, tat);
    return reply;
  }
}
