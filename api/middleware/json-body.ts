import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { HttpError } from '../http/errors.js';

/** DELETE too: `DELETE /auth/mfa` carries the password. */
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * A request answered before its body was read in full (refused by its route's guard, an unknown
 * route, a rate limit) closes its connection after the answer: Node would otherwise go on reading
 * the body, and a client trickling one would hold the socket until the request timeout.
 */
export function closeWhenBodyUnread(): Middleware {
  return async (ctx, next) => {
    await next();
    if (!ctx.req.complete) ctx.set('Connection', 'close');
  };
}

/** JSON request bodies only, capped at `limitBytes` (413 past it, 400 when malformed). */
export function jsonBody(limitBytes: number): Middleware {
  const parse = bodyParser({ enableTypes: ['json'], parsedMethods: [...WITH_BODY], jsonLimit: limitBytes, jsonStrict: true, encoding: 'utf-8' });
  return async (ctx, next) => {
    if (!WITH_BODY.has(ctx.method)) return next();
    if (ctx.request.length !== 0 && ctx.request.type && !ctx.is('application/json')) {
      throw new HttpError(415, 'unsupported_media_type', 'Send the body as application/json.');
    }
    await parse(ctx, next);
  };
}
