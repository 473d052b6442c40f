import { randomUUID } from 'node:crypto';
import type { EventSubscriber, TransactionEventArgs } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import type { Logger } from '../logger.js';
import { OUTCOMES, type AuditDetails, type AuditOutcome, type QueuedRecord } from './chain.js';

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
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function checkEntry(entry: AuditEntry): void {
  if (!ACTION.test(entry.action)) throw new TypeError(`audit action "${entry.action}" is not <entity>.<verb>`);
  if (!(OUTCOMES as readonly string[]).includes(entry.outcome)) throw new TypeError(`audit outcome "${entry.outcome}" is not allowed`);
  for (const [key, value] of Object.entries(entry.details ?? {})) {
    if (Array.isArray(value)) {
      if (!value.every((id) => UUID.test(id))) throw new TypeError(`audit detail "${key}" must be a list of ids (UUIDs)`);
      continue;
    }
    const allowed = value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (!allowed) throw new TypeError(`audit detail "${key}" must be a string, finite number, boolean, null or a list of ids`);
  }
}

/** Checks an entry and makes the record a request commits: the chain fields come when it is sequenced. */
export function queuedRecord(entry: AuditEntry, occurredAt = new Date()): QueuedRecord {
  checkEntry(entry);
  return {
    id: randomUUID(),
    occurredAt: occurredAt.toISOString(),
    actorId: entry.actorId ?? null,
    actorRole: entry.actorRole ?? null,
    action: entry.action,
    outcome: entry.outcome,
    entity: entry.entity ?? null,
    entityId: entry.entityId ?? null,
    ip: entry.ip ?? null,
    requestId: entry.requestId ?? null,
    details: entry.details ?? {},
  };
}

/**
 * One statement for any number of records (one parameter: a JSON array), so a transaction's
 * records and a group commit's cost one round trip. `placeholder`: `?` for the ORM, `$n` for `pg`.
 */
export const queueInsert = (placeholder: string) => `insert into audit_queue
  (id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details)
  select id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details
    from jsonb_to_recordset(${placeholder}::jsonb) as r(id uuid, occurred_at timestamptz, actor_id text, actor_role text, action text,
      outcome text, entity text, entity_id text, ip text, request_id text, details jsonb)`;

export const queueRows = (records: QueuedRecord[]) => JSON.stringify(records.map((record) => ({
  id: record.id, occurred_at: record.occurredAt, actor_id: record.actorId, actor_role: record.actorRole, action: record.action,
  outcome: record.outcome, entity: record.entity, entity_id: record.entityId, ip: record.ip, request_id: record.requestId, details: record.details,
})));

/** Entries recorded in a transaction and not yet written: they are queued as it commits. */
const queued = new WeakMap<object, QueuedRecord[]>();
/** Records written in a transaction, logged once it has committed (a rollback logs nothing). */
const written = new WeakMap<object, QueuedRecord[]>();

/**
 * Records a sensitive action. Call it inside `em.transactional(...)` with the change it records:
 * the record is written to `audit_queue` as that transaction commits, so both commit or neither
 * does (outside a transaction it opens its own). If it cannot be written, the commit fails with
 * `AuditWriteError` and the change rolls back with it. The sequencer chains it afterwards
 * (api/audit/sequencer.ts): no request waits for the chain.
 */
export async function recordAudit(em: EntityManager, entry: AuditEntry): Promise<void> {
  const transaction = em.isInTransaction() ? em.getTransactionContext() : undefined;
  if (!transaction) return em.transactional((tx) => recordAudit(tx, entry));
  const earlier = queued.get(transaction) ?? [];
  // A transaction's records keep their order in the chain, which sequences by time: each is at least 1 ms after the one before.
  const last = earlier.at(-1);
  const now = new Date();
  const occurredAt = last && Date.parse(last.occurredAt) >= now.getTime() ? new Date(Date.parse(last.occurredAt) + 1) : now;
  queued.set(transaction, [...earlier, queuedRecord(entry, occurredAt)]);
}

/** Writes a committing transaction's records to the queue, in one statement. */
async function writeQueued(em: EntityManager, records: QueuedRecord[]): Promise<void> {
  try {
    await em.execute(queueInsert('?'), [queueRows(records)]);
  } catch (error) {
    throw new AuditWriteError(records.map((record) => record.action).join(','), { cause: error });
  }
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
export function auditLogFields(record: QueuedRecord) {
  return {
    auditId: record.id,
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
      await writeQueued(em as EntityManager, entries);
      written.set(transaction, entries);
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
