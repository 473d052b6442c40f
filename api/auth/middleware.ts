import type { Context, Middleware } from 'koa';
import { HttpError } from '../http/errors.js';
import { routeFields } from '../http/route.js';
import type { AuthUser } from '../http/state.js';
import type { LiveSessions } from './live-sessions.js';
import type { AccessTokens } from './tokens.js';

declare module 'koa' {
  interface DefaultState {
    /**
     * Verifies the request's bearer token and its session (once per request) and sets `user`;
     * throws 401 otherwise. Set by `authentication()`; routes call it through their access guard (api/auth/access.ts).
     */
    authenticate(): Promise<AuthUser>;
  }
}

const BEARER = /^Bearer ([^\s]+)$/i;

/** The bearer token of the request's Authorization header, if it has one (RFC 6750 §2.1). */
export const bearerToken = (ctx: Context): string | undefined => BEARER.exec(ctx.get('Authorization'))?.[1];

type Refusal = 'invalid_token' | 'expired_token';

function refuse(ctx: Context, reason: Refusal, detail: string): never {
  ctx.state.log.warn('auth_error', { reason, detail, ip: ctx.ip, method: ctx.method, ...routeFields(ctx) });
  // RFC 6750 §3: a request without credentials gets no error code, a bad token gets invalid_token.
  const challenge = detail === 'missing' ? 'Bearer realm="dms-api"' : 'Bearer realm="dms-api", error="invalid_token"';
  throw new HttpError(401, 'unauthorized', 'Authentication is required.', undefined, { 'WWW-Authenticate': challenge });
}

async function authenticateRequest(ctx: Context, tokens: AccessTokens, sessions: LiveSessions): Promise<AuthUser> {
  const bearer = bearerToken(ctx);
  if (!bearer) refuse(ctx, 'invalid_token', 'missing');
  const verified = tokens.verify(bearer);
  if (!verified.ok) refuse(ctx, verified.reason, verified.reason === 'expired_token' ? 'expired' : 'rejected');
  const { sub, role, sid, restriction } = verified.claims;
  if (!(await sessions.isLive(verified.claims))) refuse(ctx, 'invalid_token', 'session_ended');
  ctx.state.user = { id: sub, role, sessionId: sid, ...(restriction ? { restriction } : {}) };
  return ctx.state.user;
}

/**
 * Makes `ctx.state.authenticate` available. It does not authenticate by itself: public routes
 * (login, refresh) must work whatever stale Authorization header a client still sends.
 */
export function authentication(tokens: AccessTokens, sessions: LiveSessions): Middleware {
  return async (ctx, next) => {
    let verified: Promise<AuthUser> | undefined;
    ctx.state.authenticate = () => (verified ??= authenticateRequest(ctx, tokens, sessions));
    await next();
  };
}
