import type { Context } from 'koa';
import { routeFields } from '../http/route.js';
import { isDatabaseUnavailable } from './availability.js';

/**
 * A read that may be stale, from a replica; when no replica answers (it is down, or a failover
 * promoted it and nothing points at it any more), the primary serves it instead of a 503, and
 * `replica_unavailable` says so. The primary's own absence still fails the request.
 */
export async function readPreferringReplica<T>(ctx: Context, read: (connectionType: 'read' | 'write') => Promise<T>): Promise<T> {
  try {
    return await read('read');
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    ctx.state.log.warn('replica_unavailable', { ...routeFields(ctx), fallback: 'primary' });
    return read('write');
  }
}
