import type { Middleware } from 'koa';
import { HttpError } from '../http/errors.js';
import { IDEMPOTENCY_HEADER } from '../http/idempotency.js';
import type { RouteMethods } from '../http/route-methods.js';

/** What a browser client may send: its token, a JSON body, a create's idempotency key, its own request id. */
const ALLOWED_REQUEST_HEADERS = ['Authorization', 'Content-Type', IDEMPOTENCY_HEADER, 'X-Request-Id'].join(', ');

/** What a browser client may read beyond the CORS-safelisted headers: how long to wait, which request it was, its budget. */
const EXPOSED_RESPONSE_HEADERS = [
  'Retry-After', 'X-Request-Id', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'WWW-Authenticate', 'Idempotent-Replayed',
].join(', ');

/** How long a browser may reuse a preflight's answer (Chromium caps it at 2 h, Firefox at 24 h). */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * Cross-origin requests from the configured web client origins (`CORS_ORIGINS`, exact
 * `scheme://host[:port]` strings) and no others.
 *
 * A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here and
 * goes no further: never authenticated, never counted by the rate limiter, no database. It gets 204
 * with the route's methods and the allowed headers only for an allowed origin and a path a route
 * serves (the browser itself refuses a method or header not listed); 403 `origin_not_allowed` or
 * 404 `not_found` otherwise, without CORS headers, so the browser refuses the request it was about to send.
 *
 * Other requests from an allowed origin get `Access-Control-Allow-Origin` naming it (never `*`) and
 * the exposed headers, on errors too, so a client can read a 401 or a 429's `Retry-After`. No
 * `Access-Control-Allow-Credentials`: the API takes bearer tokens, never cookies, so a browser
 * never needs to send credentials, and a page of another origin cannot ride on a session.
 * Every response varies by `Origin`: a cache must never hand one origin's answer to another.
 */
export function cors(origins: readonly string[], routeMethods: RouteMethods): Middleware {
  const allowed = new Set(origins);
  return async (ctx, next) => {
    ctx.vary('Origin');
    const origin = ctx.get('Origin');
    const requestedMethod = ctx.get('Access-Control-Request-Method');
    if (ctx.method === 'OPTIONS' && origin && requestedMethod) {
      const methods = routeMethods(ctx.path);
      if (!methods) throw new HttpError(404, 'not_found', 'No such route.');
      if (!allowed.has(origin)) throw new HttpError(403, 'origin_not_allowed', 'This origin may not call the API from a browser.');
      ctx.set({
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Methods': methods.join(', '),
        'Access-Control-Allow-Headers': ALLOWED_REQUEST_HEADERS,
        'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_S),
      });
      ctx.status = 204;
      return;
    }
    if (origin && allowed.has(origin)) {
      ctx.set({ 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': EXPOSED_RESPONSE_HEADERS });
    }
    await next();
  };
}
