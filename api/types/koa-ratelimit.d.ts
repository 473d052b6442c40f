/** koa-ratelimit's in-process limiter (shipped in its package `files`, untyped upstream). */
declare module 'koa-ratelimit/limiter/memory.js' {
  interface LimiterStatus {
    /** Requests left before this one is counted; 0 means limited. */
    remaining: number;
    /** When the window ends, in UNIX seconds. */
    reset: number;
    total: number;
  }

  class MemoryLimiter {
    constructor(options: { id: string; db: Map<string, LimiterStatus>; max: number; duration: number; namespace?: string });
    get(): Promise<LimiterStatus>;
  }

  export = MemoryLimiter;
}

/** koa-ratelimit's Redis limiter: async-ratelimiter, whose Lua script we define on our own client. */
declare module 'koa-ratelimit/limiter/redis.js' {
  const RedisLimiter: { defineCommand: { ratelimiter: { numberOfKeys: number; lua: string } } };
  export = RedisLimiter;
}
