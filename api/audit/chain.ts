import { createHash } from 'node:crypto';

export const OUTCOMES = ['success', 'failure', 'denied'] as const;
export type AuditOutcome = (typeof OUTCOMES)[number];

/**
 * Ids, codes and counts only: never a name, a date of birth or a note (CONTRACT §4). A list is a
 * list of ids (an access record's `patients`).
 */
export type AuditDetails = Record<string, string | number | boolean | null | string[]>;

/** One audit row exactly as it is hashed, stored, exported and verified. */
export interface AuditRecord extends QueuedRecord {
  /** Position in the chain, gapless from 1; a decimal string (PostgreSQL bigint). */
  seq: string;
  prevHash: string;
  hash: string;
}

/** A record as a request commits it (`audit_queue`): the chain fields come when it is sequenced. */
export interface QueuedRecord {
  id: string;
  /** ISO 8601 in UTC with milliseconds. */
  occurredAt: string;
  actorId: string | null;
  actorRole: string | null;
  action: string;
  outcome: AuditOutcome;
  entity: string | null;
  entityId: string | null;
  ip: string | null;
  requestId: string | null;
  details: AuditDetails;
}

/** The hash the first row chains from. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every level: the same record always serialises to the same
 * bytes, whichever order a writer or PostgreSQL's jsonb happened to keep the keys in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, inner]) => inner !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(',')}}`;
}

/** sha256 over the canonical form of every field but `hash` itself (a fixed list: a new field is a new format). */
export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  const hashed: Omit<AuditRecord, 'hash'> = {
    seq: record.seq,
    id: record.id,
    occurredAt: record.occurredAt,
    actorId: record.actorId,
    actorRole: record.actorRole,
    action: record.action,
    outcome: record.outcome,
    entity: record.entity,
    entityId: record.entityId,
    ip: record.ip,
    requestId: record.requestId,
    details: record.details,
    prevHash: record.prevHash,
  };
  return createHash('sha256').update(canonicalJson(hashed)).digest('hex');
}

/** Where a chain stops holding, and why. */
export interface ChainBreak {
  seq: string;
  /** `null` when the row is missing altogether. */
  id: string | null;
  /** `missing_rows`: rows were removed where nothing verified (an export) stands in for them. */
  reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'seq_gap' | 'missing_rows';
}

/**
 * Checks records in `seq` order, one at a time (so a caller can stream millions): each must hash
 * to its own `hash`, link to the one before, and follow it without a gap.
 */
export class ChainChecker {
  checked = 0;
  broken: ChainBreak | undefined;

  constructor(
    /** The hash the next record must link to. */
    public headHash: string = GENESIS_HASH,
    /** The seq before the next record (`undefined`: any start, e.g. after a purge). */
    private lastSeq: bigint | undefined = 0n,
  ) {}

  get ok(): boolean {
    return this.broken === undefined;
  }

  /**
   * Accepts a run of records checked earlier and not read now (an archived export file, hashed when
   * it was written), by its ends: it must start where the chain is and link to its head.
   */
  vouch(run: { firstSeq: bigint; prevHash: string; lastSeq: bigint; lastHash: string }): boolean {
    if (this.broken) return false;
    let reason: ChainBreak['reason'] | undefined;
    if (this.lastSeq !== undefined && run.firstSeq !== this.lastSeq + 1n) reason = 'seq_gap';
    else if (run.prevHash !== this.headHash) reason = 'prev_hash_mismatch';
    if (reason) {
      this.broken = { seq: run.firstSeq.toString(), id: null, reason };
      return false;
    }
    this.headHash = run.lastHash;
    this.lastSeq = run.lastSeq;
    return true;
  }

  /** Feeds the next record; returns false once the chain is broken (later records prove nothing). */
  add(record: AuditRecord): boolean {
    if (this.broken) return false;
    const seq = BigInt(record.seq);
    let reason: ChainBreak['reason'] | undefined;
    if (this.lastSeq !== undefined && seq !== this.lastSeq + 1n) reason = 'seq_gap';
    else if (record.prevHash !== this.headHash) reason = 'prev_hash_mismatch';
    else if (hashRecord(record) !== record.hash) reason = 'hash_mismatch';
    if (reason) {
      this.broken = { seq: record.seq, id: record.id, reason };
      return false;
    }
    this.checked += 1;
    this.headHash = record.hash;
    this.lastSeq = seq;
    return true;
  }
}
