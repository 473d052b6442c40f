import { ConnectionException } from '@mikro-orm/core';

/**
 * What a database error says about the database (not about the query): PostgreSQL's SQLSTATE
 * classes (https://www.postgresql.org/docs/current/errcodes-appendix.html) and the socket errors
 * of a server that is not there. Each is answered 503 `unavailable` and logged as
 * `dependency_unavailable` with this cause; anything else is a bug in the query or the code.
 */
export type DatabaseFault =
  /** 08xxx, a socket error, a pool that could not connect: the server is not there. */
  | 'connection'
  /** 57P01-57P03: the server is shutting down, crashed or still starting (a restart, a failover). */
  | 'server_shutdown'
  /** 53xxx: disk full, out of memory, too many connections. */
  | 'resources'
  /** 57014: statement_timeout (or a cancel) ended the query. */
  | 'query_canceled'
  /** 25006: a write reached a read-only server (a stale connection to a demoted primary). */
  | 'read_only'
  /** 58xxx: an I/O error under PostgreSQL. */
  | 'system_error'
  /** 40001, 40P01: a serialization failure or deadlock; retried once before it is answered. */
  | 'conflict';

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

/** node-postgres and pg-pool say "not there" in words, with no code. */
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed/i;

function faultOfCode(code: string): DatabaseFault | undefined {
  if (SOCKET_CODES.has(code)) return 'connection';
  if (code === '57014') return 'query_canceled';
  if (/^57P0[1-3]$/.test(code)) return 'server_shutdown';
  if (code === '40001' || code === '40P01') return 'conflict';
  if (code === '25006') return 'read_only';
  switch (code.slice(0, 2)) {
    case '08': return 'connection';
    case '53': return 'resources';
    case '58': return 'system_error';
    default: return undefined;
  }
}

/** A database fault and the SQLSTATE that reported it (none for a socket error). */
export interface DatabaseFaultInfo {
  cause: DatabaseFault;
  sqlstate?: string;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The fault an error (or one of its causes) reports, or `undefined` when it is not the database's. */
export function databaseFault(error: unknown): DatabaseFaultInfo | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const { code, message, cause } = e as { code?: unknown; message?: unknown; cause?: unknown };
    const fault = typeof code === 'string' ? faultOfCode(code) : undefined;
    if (fault) return { cause: fault, ...(SQLSTATE.test(code as string) ? { sqlstate: code as string } : {}) };
    if (e instanceof ConnectionException) return { cause: 'connection' };
    if (typeof message === 'string' && CONNECTION_MESSAGES.test(message)) return { cause: 'connection' };
    e = cause;
  }
  return undefined;
}
