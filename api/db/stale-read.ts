import type { Context } from 'koa';
import { routeFields } from '../http/route.js';
import { databaseFault } from './faults.js';

/**
 * A read that may be stale, from a replica; when no replica answers (it is down, or a failover
 * promoted it and nothing points at it any more), the primary serves it instead of a 503, and
 * `replica_unavailable` says so. The primary's own absence still fails the request.
 */
export async function readPreferringReplica<T>(ctx: Context, read: (connectionType: 'read' | 'write') => Promise<T>): Promise<T> {
  try {
    return await read('read');
  } catch (error) {
    // Only "the replica is not there": a query error, a timeout or a full disk is not the replica's absence.
    const fault = databaseFault(error);
    if (fault?.cause !== 'connection' && fault?.cause !== 'server_shutdown') throw error;
    ctx.state.log.warn('replica_unavailable', { ...routeFields(ctx), cause: fault.cause, fallback: 'primary' });
    return read('write');
  }
}
