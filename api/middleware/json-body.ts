import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { HttpError } from '../http/errors.js';

/** DELETE too: `DELETE /auth/mfa` carries the password. */
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

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
