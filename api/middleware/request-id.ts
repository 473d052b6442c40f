import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../logger.js';

const WELL_FORMED = /^[A-Za-z0-9._:-]{8,128}$/;

/** Takes a well-formed `X-Request-Id` or makes one; every later log line in the request carries it. */
export function requestId(log: Logger): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('X-Request-Id');
    const id = WELL_FORMED.test(given) ? given : randomUUID();
    ctx.state.requestId = id;
    ctx.state.log = log.child({ reqId: id });
    ctx.set('X-Request-Id', id);
    await next();
  };
}
