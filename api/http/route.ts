import type { RouterContext } from '@koa/router';
import type { Context } from 'koa';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SEQUENCE = /^[0-9]{1,19}$/;

/**
 * What a log line says of a request's path (its `path` field): the route template it matched
 * (`/patients/:id`), and the ids in it apart (`ids`). Never the path as sent: a client can type
 * anything there, a patient's name included. A parameter that is not an id's shape is replaced,
 * since it was not an id the API issued.
 */
export function routeFields(ctx: Context): { path: string; ids?: Record<string, string> } {
  const { _matchedRoute: template, params } = ctx as Context & Partial<RouterContext>;
  if (typeof template !== 'string') return { path: '(unmatched)' };
  const entries = Object.entries(params ?? {});
  if (entries.length === 0) return { path: template };
  const ids = Object.fromEntries(entries.map(([name, value]) => [name, UUID.test(value) || SEQUENCE.test(value) ? value : '(not an id)']));
  return { path: template, ids };
}
