import type { Middleware } from 'koa';
import { ROLES, type Role } from '../db/entities.js';
import { forbidden } from '../http/errors.js';
import { routeFields } from '../http/route.js';
import type { AccessGuard } from '../http/router.js';

const guard = (middleware: Middleware) => middleware as AccessGuard;

/**
 * Lets the request through when it is authenticated and its role is one of `roles`: 401 without
 * a valid token and live session, 403 `forbidden` (logged as `auth_error` `missing_role`) otherwise.
 */
export function requireRole(...roles: Role[]): AccessGuard {
  return guard(async (ctx, next) => {
    const user = await ctx.state.authenticate();
    if (!roles.includes(user.role)) {
      ctx.state.log.warn('auth_error', { reason: 'missing_role', userId: user.id, role: user.role, allowed: roles.join(','), ip: ctx.ip, method: ctx.method, ...routeFields(ctx) });
      throw forbidden();
    }
    await next();
  });
}

/** Any signed-in user, whatever the role. */
export const requireUser = (): AccessGuard => requireRole(...ROLES);

/** A public route (sign-in, refresh, health): said out loud, so that no route is public by omission. */
export const anyone = (): AccessGuard => guard((_ctx, next) => next());
