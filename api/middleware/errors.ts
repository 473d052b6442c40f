import type { Middleware } from 'koa';
import { AuditWriteError } from '../audit/record.js';
import { databaseFault, type DatabaseFault, type DatabaseFaultInfo } from '../db/faults.js';
import { HttpError, unavailable } from '../http/errors.js';
import { routeFields } from '../http/route.js';

/**
 * Faults that say what state the database is in, whichever statement met them first: an audit
 * write that meets one is logged as that fault (a P1 database problem), not as `audit_write_failed`
 * (a P0 "the trail cannot be written"). A database that refuses the audit row itself (disk full,
 * a revoked grant, a trigger) is still `audit_write_failed`.
 */
const STATE_OF_THE_DATABASE: readonly DatabaseFault[] = ['connection', 'server_shutdown', 'query_canceled', 'conflict', 'read_only'];

/** The database fault behind an error, if the error is the database's doing and not the audit trail's. */
function faultOf(error: unknown): DatabaseFaultInfo | undefined {
  if (!(error instanceof AuditWriteError)) return databaseFault(error);
  const fault = databaseFault(error.cause);
  return fault && STATE_OF_THE_DATABASE.includes(fault.cause) ? fault : undefined;
}

/** Maps what a lower layer threw to the contract's error body; what is unexpected is logged, never shown. */
function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  // Fail closed: the change rolled back with its audit row, and the client may retry.
  if (error instanceof AuditWriteError) return unavailable();
  if (databaseFault(error)) return unavailable();
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
      const fault = faultOf(error);
      if (fault) {
        // Counted by the database alarms; `cause` tells an outage from a timeout from a full disk.
        ctx.state.log.warn('dependency_unavailable', {
          method: ctx.method,
          ...routeFields(ctx),
          dependency: 'database',
          ...fault,
          ...(error instanceof AuditWriteError ? { during: 'audit_write', action: error.action } : {}),
        });
      } else if (error instanceof AuditWriteError) {
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
      }
      const http = known ?? new HttpError(500, 'internal_error', 'Something went wrong; the request id helps us find it.');
      ctx.status = http.status;
      if (http.headers) ctx.set(http.headers);
      ctx.body = { error: http.code, message: http.message, requestId: ctx.state.requestId, ...http.details };
    }
  };
}
