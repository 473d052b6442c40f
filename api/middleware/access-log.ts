import type { Middleware } from 'koa';
import { routeFields } from '../http/route.js';

/** One `http_access` line per request, written after the response status is final. */
export function accessLog(): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      ctx.state.log.info('http_access', {
        method: ctx.method,
        ...routeFields(ctx),
        statusCode: ctx.status,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        ...(ctx.state.user ? { userId: ctx.state.user.id } : {}),
        ip: ctx.ip,
      });
    }
  };
}
