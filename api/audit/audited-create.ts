import { ReferenceKind, wrap, type EntityDictionary, type EntityMetadata, type EntityName, type EntityProperty, type RequiredEntityData } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { databaseFault } from '../db/faults.js';
import type { Logger } from '../logger.js';
import { perTurn } from '../turn-batching.js';
import type { QueuedRecord } from './chain.js';
import { auditLogFields, queueInsert, queueRows, queuedRecord, recordAudit, type AuditEntry } from './record.js';

/** One new row (column → value, as JSON) and the record of its creation. */
interface Create {
  row: Record<string, unknown>;
  record: QueuedRecord;
}

/** The creates of one table on one pool: together with the rest of the turn's, or alone. */
interface Creates {
  /** The table's columns as the statement writes them, in its order. */
  columns: EntityProperty[];
  /** The primary key's column: how a statement's rows are matched to its creates. */
  idColumn: string;
  /** The new row; `undefined` when the turn's statement failed and each create must run alone. */
  together(create: Create): Promise<Record<string, unknown> | undefined>;
  alone(create: Create): Promise<Record<string, unknown>>;
}

const creates = new WeakMap<pg.Pool, Map<string, Creates>>();

function createsOf(pool: pg.Pool, meta: EntityMetadata): Creates {
  const byTable = creates.get(pool) ?? new Map<string, Creates>();
  creates.set(pool, byTable);
  const known = byTable.get(meta.tableName);
  if (known) return known;
  const columns = meta.props.filter((prop) => prop.kind === ReferenceKind.SCALAR && prop.persist !== false);
  const idColumn = meta.properties[meta.primaryKeys[0]!]!.fieldNames[0]!;
  const names = columns.map((prop) => prop.fieldNames[0]).join(', ');
  const typed = columns.map((prop) => `${prop.fieldNames[0]} ${prop.columnTypes[0]}`).join(', ');
  const statement = `with created as (
      insert into ${meta.tableName} (${names}) select ${names} from jsonb_to_recordset($1::jsonb) as r(${typed}) returning *
    ), queued as (${queueInsert('$2')})
    select * from created`;
  const insert = async (batch: Create[]) => {
    const { rows } = await pool.query<Record<string, unknown>>(statement, [JSON.stringify(batch.map((create) => create.row)), queueRows(batch.map((create) => create.record))]);
    const byId = new Map(rows.map((row) => [String(row[idColumn]), row]));
    return batch.map((create) => byId.get(String(create.row[idColumn]))!);
  };
  const together = perTurn(async (batch: Create[]) => {
    try {
      return await insert(batch);
    } catch (error) {
      // One statement fails for all its rows: alone, each finds out whether the failure is its own.
      if (batch.length > 1) return batch.map(() => undefined);
      throw error;
    }
  });
  const made: Creates = { columns, idColumn, together, alone: async (create) => (await insert([create]))[0]! };
  byTable.set(meta.tableName, made);
  return made;
}

/** The row as the table stores it: every column, `onCreate` values made here (the new id among them). */
function newRow<T extends object>(em: EntityManager, meta: EntityMetadata<T>, columns: EntityProperty[], data: RequiredEntityData<T>): Record<string, unknown> {
  const values: Record<string, unknown> = { ...data };
  const platform = em.getPlatform();
  const row: Record<string, unknown> = {};
  for (const prop of columns) {
    if (prop.onCreate && values[prop.name] === undefined) values[prop.name] = prop.onCreate(values as T, em);
    if (values[prop.name] === undefined && (prop.default !== undefined || prop.defaultRaw !== undefined)) {
      throw new TypeError(`createAudited: ${meta.className}.${prop.name} has a database default; give its value`);
    }
    const value = values[prop.name] ?? null;
    row[prop.fieldNames[0]!] = prop.customType ? prop.customType.convertToDatabaseValue(value, platform) : value;
  }
  return row;
}

/**
 * Creates one entity with its audit record. Outside a transaction, in one statement on the pool
 * (`with created as (insert …), queued as (insert into audit_queue …) select * from created`),
 * shared by every create of the table in the same turn of the event loop: the rows and their
 * records commit together or not at all, as in a transaction, in one round trip and one WAL flush
 * for all of them, where a transaction per create makes four round trips (begin, the insert, the
 * queue insert, commit) and flushes once each.
 *
 * A statement that fails cannot say which of its rows the failure belongs to, so: a shared one is
 * run again by each create alone; alone, a conflict (40001, 40P01) runs it once more, as
 * `retryingConflicts` does a transaction; a fault of the database (no connection, a timeout, a
 * full disk) is answered as it is; anything else runs the change again as a transaction with
 * `recordAudit`, which tells a bad change (a 409, a bug) from a record that cannot be written (503
 * `audit_write_failed`). Inside a transaction (an `Idempotency-Key` request) it is that
 * transaction's change. `entry` is given the new entity's id, made by the entity's `onCreate`.
 */
export async function createAudited<T extends object>(
  em: EntityManager,
  log: Logger,
  entity: EntityName<T>,
  data: RequiredEntityData<T>,
  entry: (id: string) => AuditEntry,
): Promise<T> {
  const asTransaction = () => em.transactional(async (tx) => {
    const created = tx.create(entity, data);
    await tx.flush();
    await recordAudit(tx, entry(String(wrap(created, true).getPrimaryKey())));
    return created;
  });
  if (em.isInTransaction()) return asTransaction();
  const meta = em.getMetadata().get(entity);
  const made = createsOf(await em.getConnection('write').getNativeClient(), meta);
  const row = newRow(em, meta, made.columns, data);
  const create: Create = { row, record: queuedRecord(entry(String(row[made.idColumn]))) };
  let stored: Record<string, unknown> | undefined;
  // Only the statement is tried again: once it has committed, nothing may run the create a second time.
  for (let attempt = 1; stored === undefined; attempt++) {
    try {
      stored = (attempt === 1 ? await made.together(create) : undefined) ?? await made.alone(create);
    } catch (error) {
      const fault = databaseFault(error);
      if (fault?.cause === 'conflict' && attempt === 1) {
        log.warn('transaction_retried', { sqlstate: fault.sqlstate });
        continue;
      }
      if (fault) throw error;
      return asTransaction();
    }
  }
  log.info('audit', auditLogFields(create.record));
  return em.map(entity, stored as EntityDictionary<T>);
}
