import type { Middleware } from 'koa';
import { routeFields } from '../http/route.js';
import type { RequestMetrics } from '../metrics/emf.js';

/**
 * One EMF record per request (api/metrics/emf.ts), written once the status is final: the route
 * template (`/patients/:id`, never the path as sent), method, status class, latency. A request that
 * escapes every handler with an error is counted as the 500 Koa will answer.
 */
export function requestMetrics(metrics: RequestMetrics | undefined): Middleware {
  if (!metrics) return (_ctx, next) => next();
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    let failed = false;
    try {
      await next();
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      metrics.record({
        route: routeFields(ctx).path,
        method: ctx.method,
        status: failed ? 500 : ctx.status,
        latencyMs: Number(process.hrtime.bigint() - started) / 1e6,
        requestId: ctx.state.requestId,
        ...(ctx.state.traceId ? { traceId: ctx.state.traceId } : {}),
      });
    }
  };
}
