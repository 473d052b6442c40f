import type { Redis } from 'ioredis';
import type { Context, Middleware } from 'koa';
import ratelimit from 'koa-ratelimit';
import type { Config, RateLimit } from '../config.js';
import { clientKey } from '../http/client-key.js';
import { HttpError } from '../http/errors.js';
import type { Logger } from '../logger.js';
import { ExpiringWindows, ResilientRedisStore } from './store.js';

/** CONTRACT §2: rate-limited per (client IP, prefix). */
export const SENSITIVE_PREFIXES: ReadonlySet<string> = new Set(['auth', 'patients', 'visits', 'reports', 'xrays', 'rx', 'medicines', 'rx-presets', 'admin']);

const DEFAULT_KEY_PREFIX = 'dms:ratelimit';

/**
 * The first path segment when it is a sensitive prefix. Paths reach this only in their canonical
 * spelling (api/middleware/canonical-path.ts), so `/PATIENTS` never needs counting as `patients`.
 */
export function sensitivePrefix(path: string): string | undefined {
  const segment = path.split('/')[1] ?? '';
  return SENSITIVE_PREFIXES.has(segment) ? segment : undefined;
}

/** Both steps of a sign-in share the login budget: guessing a code is guessing a credential (the WAF's login rule matches both too). */
const SIGN_IN_PATHS: ReadonlySet<string> = new Set(['/auth/login', '/auth/login/mfa']);
const isLogin = (ctx: Context) => ctx.method === 'POST' && SIGN_IN_PATHS.has(ctx.path);

export interface RateLimitDeps {
  config: Config;
  log: Logger;
  /** The shared store; without it each task counts in its own memory. */
  redis?: Redis;
}

/**
 * Two budgets, each request counted against exactly one (so the X-RateLimit-* headers a client
 * sees are the budget that applies to it):
 * - `POST /auth/login` and its second step `/auth/login/mfa`: `RATE_LIMIT_LOGIN_MAX` per `RATE_LIMIT_LOGIN_WINDOW_S` per client IP;
 * - any other request under a sensitive prefix: `RATE_LIMIT_SENSITIVE_MAX` per
 *   `RATE_LIMIT_SENSITIVE_WINDOW_S` per (client IP, prefix).
 * The client is `ctx.ip` (Koa trusts exactly `TRUST_PROXY_HOPS` entries of X-Forwarded-For, see
 * createApp, so a client's own entries cannot move it to a fresh budget), an IPv6 one by its /64
 * (`clientKey`).
 */
export function rateLimits({ config, log, redis }: RateLimitDeps): Middleware {
  const prefix = config.rateLimitKeyPrefix ?? DEFAULT_KEY_PREFIX;
  // The facade is what async-ratelimiter calls in place of an ioredis client (see ResilientRedisStore).
  const store = redis
    ? { driver: 'redis' as const, db: new ResilientRedisStore(redis, log) as unknown as Redis }
    : { driver: 'memory' as const, db: new ExpiringWindows() };

  const limiter = (name: string, limit: RateLimit, event: string, id: (ctx: Context) => string | false) => {
    // `onLimited` is in koa-ratelimit 6 but not yet in its DefinitelyTyped options.
    const options: ratelimit.MiddlewareOptions & { onLimited(ctx: Context): void } = {
      ...store,
      namespace: `${prefix}:${name}`,
      max: limit.max,
      duration: limit.windowS * 1000,
      id,
      onLimited: (ctx) => {
        // koa-ratelimit truncates to whole seconds, so under a second left reads 0: never tell a client 0.
        const retryAfterS = Math.max(1, Number(ctx.response.get('Retry-After')) || 0);
        ctx.state.log.warn(event, { ip: ctx.ip, client: clientKey(ctx.ip), method: ctx.method, prefix: sensitivePrefix(ctx.path), limit: limit.max, windowS: limit.windowS, retryAfterS });
        // koa-ratelimit calls this synchronously: the throw reaches errorBody with the headers it set.
        throw new HttpError(429, 'rate_limited', `Too many requests; retry in ${retryAfterS} s.`, undefined, { 'Retry-After': String(retryAfterS) });
      },
    };
    return ratelimit(options);
  };

  const login = limiter('login', config.rateLimits.login, 'auth_login_rate_limited', (ctx) => (isLogin(ctx) ? clientKey(ctx.ip) : false));
  const sensitive = limiter('sensitive', config.rateLimits.sensitive, 'api_sensitive_rate_limited', (ctx) => {
    const segment = isLogin(ctx) ? undefined : sensitivePrefix(ctx.path);
    return segment ? `${segment}:${clientKey(ctx.ip)}` : false;
  });

  return (ctx, next) => login(ctx, () => sensitive(ctx, next));
}
