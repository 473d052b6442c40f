import Router from '@koa/router';
import type { Middleware } from 'koa';
import { jsonBody } from '../middleware/json-body.js';
import { BODY_LIMIT_BYTES } from './limits.js';

declare const guarded: unique symbol;
/**
 * Who may call a route, as the first thing the route runs. Only `requireRole`, `requireUser` and
 * `anyone` (api/auth/access.ts) make one, so a route cannot be registered without saying who may call it.
 */
export type AccessGuard = Middleware & { readonly [guarded]: true };

type Verb = 'get' | 'post' | 'patch' | 'delete';

/**
 * The JSON body parser runs after a route's access guard: no byte of a body is read (nor waited
 * for) before the request is known to be allowed (issue 15, finding 9). Public routes (sign-in)
 * parse as before, with the same 400/413/415 answers.
 */
const parseBody = jsonBody(BODY_LIMIT_BYTES);
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
    router[verb](prefix && path === '/' ? prefix : `${prefix}${path}`, access, parseBody, ...handlers);
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
