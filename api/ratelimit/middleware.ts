import type { Redis } from 'ioredis';
import type { Context, Middleware } from 'koa';
import ratelimit from 'koa-ratelimit';
import { bearerToken } from '../auth/middleware.js';
import type { AccessTokens } from '../auth/tokens.js';
import type { Config, RateLimit } from '../config.js';
import { ROLES, type Role } from '../db/entities.js';
import { clientKey } from '../http/client-key.js';
import { HttpError } from '../http/errors.js';
import type { Logger } from '../logger.js';
import { MemoryGcra } from './gcra.js';
import { ResilientRedisStore } from './store.js';

/** CONTRACT §2: the rate-limited prefixes. */
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
  /** Tells a signed-in request (a valid access token) from an anonymous one. */
  tokens: AccessTokens;
}

/** Whose budget a request spends: a signed-in user's, or an anonymous client's. */
type Spender = { userId: string; role: Role } | { client: string };

/**
 * Each request counts against exactly one budget (so the X-RateLimit-* headers a client sees are
 * the budget that applies to it):
 * - `POST /auth/login` and its second step `/auth/login/mfa`: `RATE_LIMIT_LOGIN_MAX` per
 *   `RATE_LIMIT_LOGIN_WINDOW_S` per client, signed in or not;
 * - any other request under a sensitive prefix, **signed in** (a bearer token whose signature and
 *   claims verify): the budget of the token's role (`RATE_LIMIT_ROLE_MAX`) per
 *   `RATE_LIMIT_USER_WINDOW_S` per (user, prefix), wherever the user is: a clinic behind one NAT
 *   address no longer shares one budget;
 * - any other request under a sensitive prefix, **anonymous** (no token, or one that does not
 *   verify): `RATE_LIMIT_SENSITIVE_MAX` per `RATE_LIMIT_SENSITIVE_WINDOW_S` per (client, prefix).
 * A client is `ctx.ip` (Koa trusts exactly `TRUST_PROXY_HOPS` entries of X-Forwarded-For, see
 * createApp, so a client's own entries cannot move it to a fresh budget), an IPv6 one by its /64
 * (`clientKey`). The session behind a token is not checked here (authentication does that next):
 * a revoked token still spends its own user's budget, never a fresh one, and cannot be forged.
 */
export function rateLimits({ config, log, redis, tokens }: RateLimitDeps): Middleware {
  const prefix = config.rateLimitKeyPrefix ?? DEFAULT_KEY_PREFIX;
  const spenders = new WeakMap<Context, Spender>();
  // koa-ratelimit's Redis driver (async-ratelimiter) calls `db.ratelimiter(...)` and nothing else:
  // both stores answer it with GCRA, in Redis or in this process's memory (api/ratelimit/gcra.ts).
  const store = { driver: 'redis' as const, db: (redis ? new ResilientRedisStore(redis, log) : new MemoryGcra()) as unknown as Redis };

  const limiter = (name: string, limit: RateLimit, event: string, id: (ctx: Context) => string) => {
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
        ctx.state.log.warn(event, { ip: ctx.ip, ...spenders.get(ctx), method: ctx.method, prefix: sensitivePrefix(ctx.path), limit: limit.max, windowS: limit.windowS, retryAfterS });
        // koa-ratelimit calls this synchronously: the throw reaches errorBody with the headers it set.
        throw new HttpError(429, 'rate_limited', `Too many requests; retry in ${retryAfterS} s.`, undefined, { 'Retry-After': String(retryAfterS) });
      },
    };
    return ratelimit(options);
  };

  /** The key of the spender's budget under a limiter's namespace: a client, or a user on one prefix. */
  const keyOf = (ctx: Context) => {
    const spender = spenders.get(ctx)!;
    const who = 'userId' in spender ? spender.userId : spender.client;
    return isLogin(ctx) ? who : `${sensitivePrefix(ctx.path)}:${who}`;
  };
  const { login: loginLimit, sensitive, user } = config.rateLimits;
  const login = limiter('login', loginLimit, 'auth_login_rate_limited', keyOf);
  const anonymous = limiter('sensitive', sensitive, 'api_sensitive_rate_limited', keyOf);
  const byRole = new Map(ROLES.map((role) => [role, limiter('user', { max: user.maxByRole[role], windowS: user.windowS }, 'api_sensitive_rate_limited', keyOf)]));

  return (ctx, next) => {
    if (!sensitivePrefix(ctx.path)) return next();
    const bearer = isLogin(ctx) ? undefined : bearerToken(ctx);
    const verified = bearer === undefined ? undefined : tokens.verify(bearer);
    if (verified?.ok) {
      spenders.set(ctx, { userId: verified.claims.sub, role: verified.claims.role });
      return byRole.get(verified.claims.role)!(ctx, next);
    }
    spenders.set(ctx, { client: clientKey(ctx.ip) });
    return (isLogin(ctx) ? login : anonymous)(ctx, next);
  };
}
