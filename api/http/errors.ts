/**
 * An error whose status, machine code and message are safe to show a client
 * (CONTRACT §2: `{"error", "message", "requestId"}`, never internals).
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra fields for the body, e.g. the invalid field names of a 422. */
    readonly details?: Record<string, unknown>,
    /** Extra response headers, e.g. `Retry-After`. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const unauthorized = () => new HttpError(401, 'unauthorized', 'Authentication is required.');
export const forbidden = () => new HttpError(403, 'forbidden', 'Your role may not do this.');
export const notFound = (code = 'not_found', what = 'The resource') =>
  new HttpError(404, code, `${what} does not exist.`);
export const conflict = (code: string, message: string) => new HttpError(409, code, message);
export const unavailable = () =>
  new HttpError(503, 'unavailable', 'The service is temporarily unavailable; try again shortly.');

/** 422 with each bad field and what is wrong with it. */
export const validationFailed = (fields: Record<string, string>) =>
  new HttpError(422, 'validation_failed', `Invalid input: ${Object.keys(fields).join(', ')}.`, { fields });
