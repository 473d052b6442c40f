import type { Middleware } from 'koa';
import { HttpError } from '../http/errors.js';

/**
 * The one spelling of every path the API serves: lower-case letters, digits and `-._~` in non-empty
 * segments, no trailing slash, no percent-encoding, no dot segments (`/` itself aside).
 *
 * Why refuse rather than normalise: a path is read by several layers (this app's routers and their
 * guards, the rate limiter's prefixes, the WAF, the access log). When two of them disagree on what
 * `/PATIENTS` or `/%70atients` is, one guards a path the other never routes (the hole of
 * `@koa/router` 15.7, whose prefix guards matched case-sensitively while its routes did not).
 * If only one spelling is ever routed, every layer sees the same path. Ids are lower-case UUIDs.
 */
const CANONICAL_PATH = /^(?:\/(?!\.{1,2}(?:\/|$))[a-z0-9._~-]+)+$|^\/$/;

export const isCanonicalPath = (path: string): boolean => CANONICAL_PATH.test(path);

/** 404 for any other spelling, before anything else reads the path. */
export function canonicalPath(): Middleware {
  return async (ctx, next) => {
    if (!isCanonicalPath(ctx.path)) throw new HttpError(404, 'not_found', 'No such route.');
    await next();
  };
}
