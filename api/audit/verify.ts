import { IsolationLevel } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ChainChecker, GENESIS_HASH, type AuditRecord, type ChainBreak } from './chain.js';
import { auditRowsFrom, chainHead, type ChainHead } from './store.js';

/** What `GET /admin/audit/verify` and `npm run audit:verify` answer. */
export interface ChainReport {
  ok: boolean;
  /** Rows whose hash and link were checked. */
  checked: number;
  /** The hash of the last row that verified (the chain's head when `ok`). */
  headHash: string;
  firstBroken?: ChainBreak;
  /**
   * Records committed but not chained yet (`audit_queue`): normally the sequencer's last fraction
   * of a second; a number that keeps growing means no sequencer runs (`audit_sequencer_failed`).
   */
  pending?: number;
}

/** Where the database's part of the chain must start: genesis, or the end of the verified export just before it. */
async function anchorOf(em: EntityManager, firstSeq: bigint): Promise<{ hash: string; seq: bigint } | undefined> {
  if (firstSeq === 1n) return { hash: GENESIS_HASH, seq: 0n };
  const [exported] = await em.execute<{ last_hash: string }[]>(
    'select last_hash from audit_exports where last_seq = ? and verified_at is not null',
    [(firstSeq - 1n).toString()],
  );
  return exported ? { hash: exported.last_hash, seq: firstSeq - 1n } : undefined;
}

/** Feeds `records` to a checker and closes it against the head the database keeps. */
export async function checkChain(
  checker: ChainChecker,
  records: AsyncIterable<AuditRecord>,
  head: ChainHead,
): Promise<ChainReport> {
  let lastSeq: bigint | undefined;
  for await (const record of records) {
    if (!checker.add(record)) break;
    lastSeq = BigInt(record.seq);
  }
  if (checker.ok && (checker.headHash !== head.hash || (lastSeq !== undefined && lastSeq !== head.seq))) {
    // Rows at the end were removed (or the head was moved): the first missing one is what broke.
    checker.broken = { seq: ((lastSeq ?? head.seq - 1n) + 1n).toString(), id: null, reason: 'missing_rows' };
  }
  return { ok: checker.ok, checked: checker.checked, headHash: checker.headHash, ...(checker.broken ? { firstBroken: checker.broken } : {}) };
}

/**
 * Checks the rows still in the database end to end, in one consistent snapshot: each row hashes
 * to itself and links to the one before; the first row links to genesis or to the verified export
 * that ends right before it (after a purge); the last row is the head the insert trigger advanced.
 * Records still queued are counted (`pending`), not checked: they have no place in the chain yet.
 */
export function verifyDatabaseChain(em: EntityManager): Promise<ChainReport> {
  return em.transactional(
    async (tx) => {
      const head = await chainHead(tx);
      const [first] = await tx.execute<{ seq: string; id: string }[]>('select seq::text as seq, id::text as id from audit_logs order by audit_logs.seq limit 1');
      const firstSeq = first ? BigInt(first.seq) : head.seq + 1n;
      const [queue] = await tx.execute<{ n: string }[]>('select count(*)::text as n from audit_queue');
      const pending = Number(queue!.n);
      const anchor = await anchorOf(tx, firstSeq);
      if (!anchor) {
        return { ok: false, checked: 0, headHash: GENESIS_HASH, firstBroken: { seq: first!.seq, id: first!.id, reason: 'missing_rows' }, pending };
      }
      return { ...(await checkChain(new ChainChecker(anchor.hash, anchor.seq), auditRowsFrom(tx, anchor.seq, head.seq), head)), pending };
    },
    { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
  );
}
