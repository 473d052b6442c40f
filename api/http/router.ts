import Router from '@koa/router';
import type { Middleware } from 'koa';

declare const guarded: unique symbol;
/**
 * Who may call a route, as the first thing the route runs. Only `requireRole`, `requireUser` and
 * `anyone` (api/auth/access.ts) make one, so a route cannot be registered without saying who may call it.
 */
export type AccessGuard = Middleware & { readonly [guarded]: true };

type Verb = 'get' | 'post' | 'patch' | 'delete';
type Register = (path: string, access: AccessGuard, ...handlers: Middleware[]) => ApiRouter;

/**
 * A router whose every route declares its own access. It has no `use`: a guard inherited from a
 * prefix is how upper-case paths once skipped the role checks, so there is no way to write one.
 * Matching is case-sensitive and strict about trailing slashes, like the canonical-path guard.
 */
export interface ApiRouter extends Record<Verb, Register> {
  /** The middleware to mount in the app (it carries `.router`, which the OpenAPI test walks). */
  routes(): ReturnType<Router['routes']>;
}

export function apiRouter({ prefix = '' }: { prefix?: string } = {}): ApiRouter {
  const router = new Router({ sensitive: true, strict: true });
  // The prefix is joined here, not by @koa/router: with `strict` it would make `/` under
  // `/patients` the path `/patients/`, which the canonical-path guard refuses.
  const register = (verb: Verb): Register => (path, access, ...handlers) => {
    router[verb](prefix && path === '/' ? prefix : `${prefix}${path}`, access, ...handlers);
    return api;
  };
  const api: ApiRouter = {
    get: register('get'),
    post: register('post'),
    patch: register('patch'),
    delete: register('delete'),
    routes: () => router.routes(),
  };
  return api;
}
