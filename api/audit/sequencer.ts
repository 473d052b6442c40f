import pg from 'pg';
import type { Logger } from '../logger.js';
import { hashRecord } from './chain.js';
import { RECORD_COLUMNS, toQueuedRecord, type QueuedRow } from './store.js';

/** Queue rows folded into the chain per transaction. */
export const SEQUENCE_BATCH_ROWS = 2_000;
/**
 * The session-level advisory lock the sequencers of every API task compete for: the one holding it
 * sequences, the others wait to take over. (The chain lock of migration 0006, 7308327773616469, is
 * taken per batch, so a one-off sequencing, e.g. `audit:verify`, still never runs beside a batch.)
 */
export const SEQUENCER_LOCK = '7308327773616470';

/**
 * Folds up to `limit` committed records of `audit_queue` into the chain, in one transaction on
 * `client`, and answers how many (an empty queue takes neither the transaction nor the lock).
 * Under the chain lock it reads the head and the oldest queued rows (a fresh snapshot: everything
 * committed until then), hashes each as it will be stored, and hands ids and hashes to
 * `audit_sequence()`, which copies the rows unchanged, checks they extend the head and takes them
 * out of the queue. Rows that commit meanwhile are the next batch's: a batch holds rows that all
 * committed before any row of the next one.
 */
export async function sequenceBatch(client: pg.ClientBase, limit = SEQUENCE_BATCH_ROWS): Promise<number> {
  // Most polls of a quiet clinic find nothing: one statement, not a transaction under the chain lock.
  // A row that commits just after it is the next poll's, as it would be after the batch's snapshot.
  const { rows: [queue] } = await client.query<{ empty: boolean }>('select not exists (select from audit_queue) as empty');
  if (queue!.empty) return 0;
  await client.query('begin');
  try {
    const { rows: [head] } = await client.query<{ seq: string; hash: string }>('select seq, hash from audit_lock_chain_head()');
    // The table's columns, not the text ones selected under the same names: only those are on the queue's index, so a backlog is read, not sorted, batch after batch.
    const { rows } = await client.query<QueuedRow>(`select ${RECORD_COLUMNS} from audit_queue order by audit_queue.occurred_at, audit_queue.id limit ${Number(limit)}`);
    if (rows.length === 0) {
      await client.query('commit');
      return 0;
    }
    let seq = BigInt(head!.seq);
    let prevHash = head!.hash;
    const ids: string[] = [];
    const hashes: string[] = [];
    for (const row of rows) {
      seq += 1n;
      const hash = hashRecord({ seq: seq.toString(), ...toQueuedRecord(row), prevHash });
      ids.push(row.id);
      hashes.push(hash);
      prevHash = hash;
    }
    await client.query('select audit_sequence($1, $2, $3::uuid[], $4::text[])', [(BigInt(head!.seq) + 1n).toString(), head!.hash, ids, hashes]);
    await client.query('commit');
    return rows.length;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/**
 * Sequences everything committed so far on `client` (a one-off: `audit:export` anchors what was
 * committed before it started; tests). Beside a running `AuditSequencer` it is safe: batches
 * take turns on the chain lock.
 */
export async function sequencePending(client: pg.ClientBase): Promise<number> {
  let total = 0;
  for (let moved = -1; moved !== 0; total += moved) moved = await sequenceBatch(client);
  return total;
}

/** `sequencePending` on a connection of its own. */
export async function sequenceAll(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    return await sequencePending(client);
  } finally {
    await client.end();
  }
}

export interface SequencerOptions {
  /** Pause after a batch that emptied the queue. */
  idleMs?: number;
  /** Pause between attempts to become the sequencer, and after a failure. */
  retryMs?: number;
  /** A check only the database's one sequencer should run (the heavy-user check), every `everyMs` while it leads. */
  whileLeading?: { everyMs: number; run(): Promise<void> };
}

/**
 * The database's one sequencer, wherever it runs: every API task starts one, they compete for a
 * session-level advisory lock on a connection of their own, and only the holder sequences. If its
 * task (or connection) dies, PostgreSQL releases the lock and another task takes over within
 * `retryMs`; records committed meanwhile wait in the queue, none is lost.
 */
export class AuditSequencer {
  private closed = false;
  private client: pg.Client | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly options: SequencerOptions = {},
  ) {}

  start(): void {
    this.running ??= this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.client?.end().catch(() => undefined);
    await this.running;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    const { idleMs = 100, retryMs = 2_000, whileLeading } = this.options;
    let failures = 0;
    while (!this.closed) {
      const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 3_000, application_name: 'dms-audit-sequencer' });
      client.on('error', () => undefined); // a lost connection fails the next query, which ends the term
      this.client = client;
      let leading = false;
      try {
        await client.connect();
        while (!this.closed && !leading) {
          leading = (await client.query<{ leader: boolean }>('select pg_try_advisory_lock($1) as leader', [SEQUENCER_LOCK])).rows[0]!.leader;
          if (!leading) await this.pause(retryMs);
        }
        if (leading) this.log.info('audit_sequencer_leading', { ...(failures > 0 ? { afterFailures: failures } : {}) });
        let checkedAt = 0;
        while (!this.closed) {
          const moved = await sequenceBatch(client);
          failures = 0;
          if (whileLeading && Date.now() - checkedAt >= whileLeading.everyMs) {
            checkedAt = Date.now();
            await whileLeading.run();
          }
          if (moved < SEQUENCE_BATCH_ROWS) await this.pause(idleMs);
        }
      } catch (error) {
        if (this.closed) break;
        failures += 1;
        // A chain that cannot be extended (a tampered head) is as grave as a failed audit write: records pile up unchained.
        const { code } = (error ?? {}) as { code?: unknown };
        this.log.error('audit_sequencer_failed', {
          leading, failures, errorName: error instanceof Error ? error.name : typeof error, ...(typeof code === 'string' ? { errorCode: code } : {}),
        });
        await this.pause(retryMs);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }
}
