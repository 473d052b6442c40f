import { randomUUID } from 'node:crypto';
import type { EventSubscriber, TransactionEventArgs } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import type { Logger } from '../logger.js';
import { OUTCOMES, hashRecord, type AuditDetails, type AuditOutcome, type AuditRecord } from './chain.js';
import { lockChainHead } from './store.js';

/** What a caller says about a sensitive action; the chain fields are filled in here. */
export interface AuditEntry {
  /** `<entity>.<verb>`, e.g. `patient.create`, `auth.login`. */
  action: string;
  outcome: AuditOutcome;
  entity?: string;
  entityId?: string;
  actorId?: string | null;
  actorRole?: string | null;
  ip?: string;
  requestId?: string;
  /** Ids, codes and counts only: never PHI. */
  details?: AuditDetails;
}

/** The audit row could not be written: the change it records must not commit (503, `audit_write_failed`). */
export class AuditWriteError extends Error {
  /** `action`: the action of each row that could not be written, comma-separated. */
  constructor(readonly action: string, options: { cause: unknown }) {
    super(`audit row for ${action} could not be written`, options);
    this.name = 'AuditWriteError';
  }

  /** Safe to log: the action and the database's error code, never the statement or its values. */
  logFields(): { action: string; errorName: string | undefined; errorCode?: string } {
    const { code } = (this.cause ?? {}) as { code?: unknown };
    const cause = this.cause instanceof Error ? this.cause : undefined;
    return { action: this.action, errorName: cause?.name, ...(typeof code === 'string' ? { errorCode: code } : {}) };
  }
}

const ACTION = /^[a-z][a-z0-9_.-]{0,63}$/;

function checkEntry(entry: AuditEntry): void {
  if (!ACTION.test(entry.action)) throw new TypeError(`audit action "${entry.action}" is not <entity>.<verb>`);
  if (!(OUTCOMES as readonly string[]).includes(entry.outcome)) throw new TypeError(`audit outcome "${entry.outcome}" is not allowed`);
  for (const [key, value] of Object.entries(entry.details ?? {})) {
    const allowed = value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (!allowed) throw new TypeError(`audit detail "${key}" must be a string, finite number, boolean or null`);
  }
}

/** Entries recorded in a transaction and not yet written: they join the chain as it commits. */
const queued = new WeakMap<object, AuditEntry[]>();
/** Rows written in a transaction, logged once it has committed (a rollback logs nothing). */
const written = new WeakMap<object, AuditRecord[]>();

/**
 * Records a sensitive action. Call it inside `em.transactional(...)` with the change it records:
 * the row is appended to the chain as that transaction commits, so both commit or neither does
 * (outside a transaction it opens its own). If the row cannot be written, the commit fails with
 * `AuditWriteError` and the change rolls back with it.
 *
 * Writing at commit keeps the chain lock the last lock a transaction takes, held only for the
 * insert and the commit: audited writes queue briefly instead of deadlocking on row locks taken
 * after an early audit call.
 */
export async function recordAudit(em: EntityManager, entry: AuditEntry): Promise<void> {
  checkEntry(entry);
  const transaction = em.isInTransaction() ? em.getTransactionContext() : undefined;
  if (!transaction) return em.transactional((tx) => recordAudit(tx, entry));
  queued.set(transaction, [...(queued.get(transaction) ?? []), entry]);
}

/** Appends entries to the chain inside the committing transaction, one after the other. */
async function appendToChain(em: EntityManager, entries: AuditEntry[]): Promise<AuditRecord[]> {
  const records: AuditRecord[] = [];
  try {
    let head = await lockChainHead(em);
    for (const entry of entries) {
      const unsigned: Omit<AuditRecord, 'hash'> = {
        seq: (head.seq + 1n).toString(),
        id: randomUUID(),
        occurredAt: new Date().toISOString(),
        actorId: entry.actorId ?? null,
        actorRole: entry.actorRole ?? null,
        action: entry.action,
        outcome: entry.outcome,
        entity: entry.entity ?? null,
        entityId: entry.entityId ?? null,
        ip: entry.ip ?? null,
        requestId: entry.requestId ?? null,
        details: entry.details ?? {},
        prevHash: head.hash,
      };
      const record = { ...unsigned, hash: hashRecord(unsigned) };
      await em.execute(
        `insert into audit_logs (seq, id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details, prev_hash, hash)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?)`,
        [record.seq, record.id, record.occurredAt, record.actorId, record.actorRole, record.action, record.outcome,
          record.entity, record.entityId, record.ip, record.requestId, JSON.stringify(record.details), record.prevHash, record.hash],
      );
      records.push(record);
      head = { seq: BigInt(record.seq), hash: record.hash };
    }
  } catch (error) {
    throw new AuditWriteError(entries.map((entry) => entry.action).join(','), { cause: error });
  }
  return records;
}

/** Who did it, from where, in which request: the parts of an entry every route fills the same way. */
export function auditActor(ctx: Context): Pick<AuditEntry, 'actorId' | 'actorRole' | 'ip' | 'requestId'> {
  return {
    actorId: ctx.state.user?.id ?? null,
    actorRole: ctx.state.user?.role ?? null,
    ip: ctx.ip,
    requestId: ctx.state.requestId,
  };
}

/** The `audit` log line of a record: ids only, like the row. */
export function auditLogFields(record: AuditRecord) {
  return {
    auditId: record.id,
    seq: record.seq,
    action: record.action,
    outcome: record.outcome,
    entity: record.entity,
    entityId: record.entityId,
    actorId: record.actorId,
    actorRole: record.actorRole,
    ip: record.ip,
    ...(record.requestId ? { reqId: record.requestId } : {}),
    details: record.details,
  };
}

/**
 * Writes each transaction's recorded entries as it commits, and logs them as event `audit` once
 * it has (registered with the ORM, so every transaction of the process is covered).
 */
export function auditSubscriber(log: Logger): EventSubscriber {
  return {
    async beforeTransactionCommit({ em, transaction }: TransactionEventArgs) {
      const entries = transaction && queued.get(transaction);
      if (!transaction || !entries?.length) return;
      queued.delete(transaction);
      written.set(transaction, await appendToChain(em as EntityManager, entries));
    },
    afterTransactionCommit({ transaction }: TransactionEventArgs) {
      if (!transaction) return;
      for (const record of written.get(transaction) ?? []) log.info('audit', auditLogFields(record));
      written.delete(transaction);
    },
    afterTransactionRollback({ transaction }: TransactionEventArgs) {
      if (!transaction) return;
      queued.delete(transaction);
      written.delete(transaction);
    },
  };
}
