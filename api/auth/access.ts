import type { Middleware } from 'koa';
import { ROLES, type Role } from '../db/entities.js';
import { forbidden, HttpError } from '../http/errors.js';
import { routeFields } from '../http/route.js';
import type { AccessGuard } from '../http/router.js';
import type { SessionRestriction } from './entities.js';

const guard = (middleware: Middleware) => middleware as AccessGuard;

/** What a restricted session is told everywhere but its one step. */
const RESTRICTED: Record<SessionRestriction, () => HttpError> = {
  mfa_enrolment: () => new HttpError(403, 'mfa_enrolment_required', 'Your role must sign in with a second factor: enrol first (POST /auth/mfa/enroll, then POST /auth/mfa/confirm), then sign in again.'),
  password_change: () => new HttpError(403, 'password_change_required', 'An administrator asked you to change your password: POST /auth/password, then sign in again.'),
};

/**
 * The one access check every route runs first: 401 without a valid token and live session; 403
 * for a restricted session on a route that is not its step (`auth_error` `restricted_session`),
 * then 403 `forbidden` for a role not in `roles` (`auth_error` `missing_role`).
 */
function access(roles: readonly Role[], restrictionsAllowed: readonly SessionRestriction[]): AccessGuard {
  return guard(async (ctx, next) => {
    const user = await ctx.state.authenticate();
    if (user.restriction && !restrictionsAllowed.includes(user.restriction)) {
      ctx.state.log.warn('auth_error', { reason: 'restricted_session', restriction: user.restriction, userId: user.id, ip: ctx.ip, method: ctx.method, ...routeFields(ctx) });
      throw RESTRICTED[user.restriction]();
    }
    if (!roles.includes(user.role)) {
      ctx.state.log.warn('auth_error', { reason: 'missing_role', userId: user.id, role: user.role, allowed: roles.join(','), ip: ctx.ip, method: ctx.method, ...routeFields(ctx) });
      throw forbidden();
    }
    await next();
  });
}

/** Lets the request through when it is authenticated, not restricted, and its role is one of `roles`. */
export function requireRole(...roles: Role[]): AccessGuard {
  return access(roles, []);
}

/**
 * Any signed-in user, whatever the role; a restricted session only on the routes of its step
 * (`alsoRestricted`): enrolling in MFA, changing the password, signing out.
 */
export const requireUser = ({ alsoRestricted = [] }: { alsoRestricted?: readonly SessionRestriction[] } = {}): AccessGuard => access(ROLES, alsoRestricted);

/** A public route (sign-in, refresh, health): said out loud, so that no route is public by omission. */
export const anyone = (): AccessGuard => guard((_ctx, next) => next());
