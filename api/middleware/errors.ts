import type { Middleware } from 'koa';
import { AuditWriteError } from '../audit/record.js';
import { isDatabaseUnavailable } from '../db/availability.js';
import { HttpError, unavailable } from '../http/errors.js';
import { routeFields } from '../http/route.js';

/** Maps what a lower layer threw to the contract's error body; what is unexpected is logged, never shown. */
function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  // Fail closed: the change rolled back with its audit row, and the client may retry.
  if (error instanceof AuditWriteError) return unavailable();
  if (isDatabaseUnavailable(error)) return unavailable();
  const { status, type, expose } = (error ?? {}) as { status?: number; type?: string; expose?: boolean };
  // Errors from the body parser and Koa's own `ctx.throw` carry a status and are safe to name.
  if (status === 413) return new HttpError(413, 'payload_too_large', 'The request body is too large.');
  if (status === 415) return new HttpError(415, 'unsupported_media_type', 'Send the body as application/json.');
  if (status === 400 && (error instanceof SyntaxError || type === 'entity.parse.failed')) {
    return new HttpError(400, 'invalid_json', 'The request body is not valid JSON.');
  }
  if (typeof status === 'number' && status >= 400 && status < 500 && expose) {
    return new HttpError(status, 'bad_request', 'The request could not be understood.');
  }
  return undefined;
}

export function errorBody(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HttpError(404, 'not_found', 'No such route.');
      }
    } catch (error) {
      const known = toHttpError(error);
      if (error instanceof AuditWriteError) {
        ctx.state.log.error('audit_write_failed', { method: ctx.method, ...routeFields(ctx), ...error.logFields() });
      } else if (!known) {
        const event = error instanceof Error ? 'unhandled_error' : 'unhandled_error_non_error';
        ctx.state.log.error(event, {
          method: ctx.method,
          ...routeFields(ctx),
          ...(error instanceof Error
            ? { errorName: error.name, errorMessage: error.message, stack: error.stack }
            : { thrownType: typeof error }),
        });
      } else if (known.code === 'unavailable') {
        ctx.state.log.warn('dependency_unavailable', { ...routeFields(ctx), dependency: 'database' });
      }
      const http = known ?? new HttpError(500, 'internal_error', 'Something went wrong; the request id helps us find it.');
      ctx.status = http.status;
      if (http.headers) ctx.set(http.headers);
      ctx.body = { error: http.code, message: http.message, requestId: ctx.state.requestId, ...http.details };
    }
  };
}
