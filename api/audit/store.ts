import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuditDetails, AuditOutcome, AuditRecord, QueuedRecord } from './chain.js';

/**
 * A record's columns (in `audit_queue` and `audit_logs`) in the exact text form the hash covers:
 * `occurred_at` as ISO 8601 UTC with milliseconds (drivers hand timestamps back as
 * server-formatted strings, which depend on the session's time zone).
 */
export const RECORD_COLUMNS = `id::text as id,
  to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
  actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details`;

/** The columns of `audit_logs`: a record and its place in the chain, `seq` as a decimal string (bigint). */
export const AUDIT_COLUMNS = `seq::text as seq, ${RECORD_COLUMNS}, prev_hash, hash`;

export interface QueuedRow {
  id: string;
  occurred_at: string;
  actor_id: string | null;
  actor_role: string | null;
  action: string;
  outcome: AuditOutcome;
  entity: string | null;
  entity_id: string | null;
  ip: string | null;
  request_id: string | null;
  details: AuditDetails | string;
}

export interface AuditRow extends QueuedRow {
  seq: string;
  prev_hash: string;
  hash: string;
}

export function toQueuedRecord(row: QueuedRow): QueuedRecord {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    actorId: row.actor_id,
    actorRole: row.actor_role,
    action: row.action,
    outcome: row.outcome,
    entity: row.entity,
    entityId: row.entity_id,
    ip: row.ip,
    requestId: row.request_id,
    details: typeof row.details === 'string' ? (JSON.parse(row.details) as AuditDetails) : row.details,
  };
}

export function toAuditRecord(row: AuditRow): AuditRecord {
  return { seq: row.seq, ...toQueuedRecord(row), prevHash: row.prev_hash, hash: row.hash };
}

const PAGE = 1_000;

/** Every row from `afterSeq` on, in chain order, a page at a time (keyset, so memory stays flat). */
export async function* auditRowsFrom(em: EntityManager, afterSeq = 0n, untilSeq?: bigint): AsyncGenerator<AuditRecord> {
  let after = afterSeq;
  for (;;) {
    const rows = await em.execute<AuditRow[]>(
      `select ${AUDIT_COLUMNS} from audit_logs where seq > ? ${untilSeq === undefined ? '' : 'and seq <= ?'} order by audit_logs.seq limit ${PAGE}`,
      untilSeq === undefined ? [after.toString()] : [after.toString(), untilSeq.toString()],
    );
    for (const row of rows) yield toAuditRecord(row);
    if (rows.length < PAGE) return;
    after = BigInt(rows.at(-1)!.seq);
  }
}

export interface ChainHead {
  seq: bigint;
  hash: string;
}

async function readHead(em: EntityManager, query: string): Promise<ChainHead> {
  const [head] = await em.execute<{ seq: string; hash: string }[]>(query);
  return { seq: BigInt(head!.seq), hash: head!.hash };
}

/** The chain's current end as the database keeps it (the insert trigger advances it). */
export function chainHead(em: EntityManager): Promise<ChainHead> {
  return readHead(em, 'select seq::text as seq, hash from audit_chain_head');
}
