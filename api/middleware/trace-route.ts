import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import type { Middleware } from 'koa';
import { routeFields } from '../http/route.js';

/**
 * Names the request's server span by its route template (`GET /patients/:id`, never the path as
 * sent) once routing is done, and keeps the trace id for the EMF record. Without tracing there is no
 * span and this does nothing.
 */
export function traceRoute(): Middleware {
  return async (ctx, next) => {
    const span = trace.getSpan(context.active());
    if (!span || !isSpanContextValid(span.spanContext())) return next();
    ctx.state.traceId = span.spanContext().traceId;
    try {
      await next();
    } finally {
      const { path } = routeFields(ctx);
      span.updateName(`${ctx.method} ${path}`);
      span.setAttribute('http.route', path);
    }
  };
}
