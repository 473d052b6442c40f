import { createHash, randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { bucketOf, isArchived, listKeys, objectIntegrity, readObject, serverSideEncryption, type Storage } from '../storage/s3.js';
import { canonicalJson, ChainChecker, GENESIS_HASH, type AuditRecord, type ChainBreak } from './chain.js';
import { recordAudit } from './record.js';
import { sequencePending } from './sequencer.js';
import { auditRowsFrom, chainHead } from './store.js';
import { EXPORT_PREFIX, exportKey, exportTimeMetadata } from './export-naming.js';
import { checkChain, type ChainReport } from './verify.js';

export { EXPORT_PREFIX };

/**
 * Export files in AUDIT_BUCKET (named in export-naming.ts): newline-delimited JSON, a header line
 * with the hash the first row chains from, one line per row (the row exactly as hashed), a footer
 * line with the last row's hash.
 */
export const EXPORT_FORMAT = 'dms-audit-export/1';
/** Rows per file: a day of a busy clinic, a few MB. */
export const EXPORT_BATCH_ROWS = 10_000;
const DAY_MS = 86_400_000;

interface ExportHeader {
  kind: 'header';
  format: string;
  firstSeq: string;
  lastSeq: string;
  prevHash: string;
  rowCount: number;
}
interface ExportFooter {
  kind: 'footer';
  lastSeq: string;
  lastHash: string;
  rowCount: number;
}

export interface ExportFile {
  header: ExportHeader;
  rows: AuditRecord[];
  footer: ExportFooter;
}

export function serialiseExport(prevHash: string, rows: AuditRecord[]): string {
  const first = rows[0]!;
  const last = rows.at(-1)!;
  const header: ExportHeader = { kind: 'header', format: EXPORT_FORMAT, firstSeq: first.seq, lastSeq: last.seq, prevHash, rowCount: rows.length };
  const footer: ExportFooter = { kind: 'footer', lastSeq: last.seq, lastHash: last.hash, rowCount: rows.length };
  return [header, ...rows.map((row) => ({ kind: 'row', ...row })), footer].map(canonicalJson).join('\n') + '\n';
}

/** Reads a file back; `undefined` when it is not one this code wrote (truncated, edited, foreign). */
export function parseExport(body: string): ExportFile | undefined {
  try {
    const lines = body.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { kind?: string } & Record<string, unknown>);
    const header = lines[0] as unknown as ExportHeader | undefined;
    const footer = lines.at(-1) as unknown as ExportFooter | undefined;
    if (header?.kind !== 'header' || header.format !== EXPORT_FORMAT || footer?.kind !== 'footer') return undefined;
    const rows = lines.slice(1, -1).map(({ kind, ...row }) => (kind === 'row' ? (row as unknown as AuditRecord) : undefined));
    if (rows.some((row) => row === undefined) || rows.length !== header.rowCount || rows.length !== footer.rowCount) return undefined;
    return { header, rows: rows as AuditRecord[], footer };
  } catch {
    return undefined;
  }
}

const sha256 = (body: string | Buffer) => createHash('sha256').update(body).digest('hex');

interface ExportBatch {
  id: string;
  first_seq: string;
  last_seq: string;
  prev_hash: string;
  last_hash: string;
  object_key: string;
  sha256: string | null;
  verified_at: string | null;
}

async function batchRows(em: EntityManager, batch: Pick<ExportBatch, 'first_seq' | 'last_seq'>): Promise<AuditRecord[]> {
  const rows: AuditRecord[] = [];
  for await (const row of auditRowsFrom(em, BigInt(batch.first_seq) - 1n, BigInt(batch.last_seq))) rows.push(row);
  return rows;
}

/** Why a batch's rows cannot be shipped (its chain does not hold), or `undefined`. */
function brokenBatch(prevHash: string, firstSeq: bigint, rows: AuditRecord[], expectedCount: number): ChainBreak | undefined {
  const checker = new ChainChecker(prevHash, firstSeq - 1n);
  for (const row of rows) if (!checker.add(row)) return checker.broken;
  return rows.length === expectedCount ? undefined : { seq: (firstSeq + BigInt(rows.length)).toString(), id: null, reason: 'missing_rows' };
}

/** An export or purge stopped on purpose: the chain or the bucket is not as it must be. Nothing was lost. */
export class AuditRetentionError extends Error {
  constructor(message: string, readonly broken?: ChainBreak) {
    super(message);
    this.name = 'AuditRetentionError';
  }
}

/**
 * Writes one batch's file and reads it back while it is still in S3 Standard: the object must hold
 * exactly the rows the database holds. What was verified is recorded (`sha256`, `verified_at`), and
 * S3 keeps the same SHA-256 from the upload's checksum, so purge and verify can later prove the
 * file unchanged from its metadata alone, after the lifecycle rule has moved it to Glacier.
 * Rewriting an existing key writes the same bytes (rows never change), so a batch redone after a
 * crash is harmless.
 */
async function shipBatch(em: EntityManager, storage: Storage, batch: ExportBatch): Promise<number> {
  const rows = await batchRows(em, batch);
  const expected = Number(BigInt(batch.last_seq) - BigInt(batch.first_seq) + 1n);
  const broken = brokenBatch(batch.prev_hash, BigInt(batch.first_seq), rows, expected);
  // A broken chain stays in the database as evidence; shipping it would let purge remove it as "exported".
  if (broken) throw new AuditRetentionError(`audit rows ${batch.first_seq}-${batch.last_seq} do not chain (${broken.reason} at ${broken.seq})`, broken);
  const body = serialiseExport(batch.prev_hash, rows);
  const bucket = bucketOf(storage, 'audit');
  // No encryption header: the bucket's default key (KMS) applies; the checksum is what Object Lock requires.
  await storage.client.send(
    new PutObjectCommand({
      Bucket: bucket, Key: batch.object_key, Body: body, ContentType: 'application/x-ndjson', ChecksumAlgorithm: 'SHA256',
      Metadata: exportTimeMetadata(rows), ...serverSideEncryption(storage),
    }),
  );
  const stored = await readObject(storage, bucket, batch.object_key);
  if (!stored || sha256(stored) !== sha256(body)) throw new AuditRetentionError(`export ${batch.object_key} did not read back as written`);
  await em.execute('update audit_exports set sha256 = ?, verified_at = ? where id = ?', [sha256(body), new Date().toISOString(), batch.id]);
  return rows.length;
}

export interface ExportSummary {
  files: number;
  rows: number;
  throughSeq: string | null;
}

/**
 * `npm run audit:export`: chains every committed record still queued, then ships every row not yet exported, in batches. Each batch is recorded
 * (pending) before its file is written and marked verified only once the file reads back, so a
 * crash at any point is finished by the next run, and a second exporter racing this one stops at
 * the unique `first_seq`.
 */
export async function exportAudit(em: EntityManager, storage: Storage, batchRowsLimit = EXPORT_BATCH_ROWS): Promise<ExportSummary> {
  const summary: ExportSummary = { files: 0, rows: 0, throughSeq: null };
  // Everything committed before the export started is chained first, so this run anchors it outside the database.
  const connection = await (await em.getConnection('write').getNativeClient()).connect();
  try {
    await sequencePending(connection);
  } finally {
    connection.release();
  }
  const pending = await em.execute<ExportBatch[]>('select * from audit_exports where verified_at is null order by first_seq');
  for (const batch of pending) {
    summary.rows += await shipBatch(em, storage, batch);
    summary.files += 1;
    summary.throughSeq = batch.last_seq;
  }
  const head = await chainHead(em);
  for (;;) {
    const [last] = await em.execute<{ last_seq: string; last_hash: string }[]>('select last_seq::text, last_hash from audit_exports order by last_seq desc limit 1');
    const after = last ? BigInt(last.last_seq) : 0n;
    if (after >= head.seq) break;
    const lastSeq = after + BigInt(batchRowsLimit) < head.seq ? after + BigInt(batchRowsLimit) : head.seq;
    const [edge] = await em.execute<{ prev_hash: string; last_hash: string }[]>(
      'select (select prev_hash from audit_logs where seq = ?) as prev_hash, (select hash from audit_logs where seq = ?) as last_hash',
      [(after + 1n).toString(), lastSeq.toString()],
    );
    const batch: ExportBatch = {
      id: randomUUID(), first_seq: (after + 1n).toString(), last_seq: lastSeq.toString(),
      prev_hash: last?.last_hash ?? GENESIS_HASH, last_hash: edge?.last_hash ?? '', object_key: exportKey(after + 1n, lastSeq), sha256: null, verified_at: null,
    };
    if (!edge?.prev_hash || !edge.last_hash) throw new AuditRetentionError(`audit rows ${batch.first_seq}-${batch.last_seq} are missing from the database`);
    if (edge.prev_hash !== batch.prev_hash) {
      throw new AuditRetentionError(`audit row ${batch.first_seq} does not chain to the last export`, { seq: batch.first_seq, id: null, reason: 'prev_hash_mismatch' });
    }
    try {
      await em.execute(
        `insert into audit_exports (id, first_seq, last_seq, prev_hash, last_hash, row_count, object_key, created_at)
         values (?, ?, ?, ?, ?, ?, ?, ?)`,
        [batch.id, batch.first_seq, batch.last_seq, batch.prev_hash, batch.last_hash, Number(lastSeq - after), batch.object_key, new Date().toISOString()],
      );
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) throw new AuditRetentionError('another export is running');
      throw error;
    }
    summary.rows += await shipBatch(em, storage, batch);
    summary.files += 1;
    summary.throughSeq = batch.last_seq;
  }
  if (summary.files > 0) {
    await recordAudit(em, {
      action: 'audit.export', outcome: 'success', entity: 'audit_log', actorRole: 'system',
      details: { files: summary.files, rows: summary.rows, throughSeq: summary.throughSeq },
    });
  }
  return summary;
}

export interface PurgeSummary {
  rows: number;
  throughSeq: string | null;
}

/**
 * Does the bucket still hold, unchanged, the file verified when `batch` was exported? Asked of the
 * object's metadata (size and S3's SHA-256), which answers in every storage class: a GET of an
 * export already moved to Glacier would answer InvalidObjectState.
 */
async function holdsVerifiedFile(storage: Storage, bucket: string, batch: ExportBatch, sizeBytes?: number): Promise<boolean> {
  const stored = await objectIntegrity(storage, bucket, batch.object_key);
  return stored !== undefined && batch.sha256 !== null && stored.sha256 === batch.sha256 && (sizeBytes === undefined || stored.sizeBytes === sizeBytes);
}

/**
 * `npm run audit:purge`: removes from the database the oldest rows that are past the hot
 * retention (`hotDays`, AUDIT_HOT_DAYS) and whose export is verified. Before any row goes, the
 * database's rows of each file must serialise to exactly the bytes verified at export, and the
 * bucket must still hold that file (its checksum, read without GET, so archived files count). It
 * cuts at the end of a file only, so the first row left always chains to the last hash of a
 * verified export (what `verify` anchors to). The database re-checks all of it (`audit_purge`).
 */
export async function purgeAudit(em: EntityManager, storage: Storage, hotDays: number, now = new Date()): Promise<PurgeSummary> {
  const cutoff = new Date(now.getTime() - hotDays * DAY_MS).toISOString();
  const [bounds] = await em.execute<{ first_seq: string | null; first_recent: string | null }[]>(
    `select (select min(seq)::text from audit_logs) as first_seq,
            (select min(seq)::text from audit_logs where occurred_at >= ?) as first_recent`,
    [cutoff],
  );
  if (!bounds?.first_seq) return { rows: 0, throughSeq: null };
  const pastRetention = bounds.first_recent ? BigInt(bounds.first_recent) - 1n : (await chainHead(em)).seq;
  const candidates = await em.execute<ExportBatch[]>('select * from audit_exports where last_seq >= ? order by first_seq', [bounds.first_seq]);
  // Whole files from the first row on, each verified, each entirely past retention.
  const purgeable: ExportBatch[] = [];
  let next = BigInt(bounds.first_seq);
  for (const batch of candidates) {
    if (BigInt(batch.first_seq) > next || !batch.verified_at || BigInt(batch.last_seq) > pastRetention) break;
    purgeable.push(batch);
    next = BigInt(batch.last_seq) + 1n;
  }
  if (purgeable.length === 0) return { rows: 0, throughSeq: null };

  const bucket = bucketOf(storage, 'audit');
  for (const batch of purgeable) {
    const body = serialiseExport(batch.prev_hash, await batchRows(em, batch));
    if (sha256(body) !== batch.sha256) {
      throw new AuditRetentionError(`the database's rows ${batch.first_seq}-${batch.last_seq} are not those export ${batch.object_key} verified: nothing purged`);
    }
    if (!(await holdsVerifiedFile(storage, bucket, batch, Buffer.byteLength(body)))) {
      throw new AuditRetentionError(`export ${batch.object_key} is missing or is not the file verified at export: nothing purged`);
    }
  }
  const through = purgeable.at(-1)!.last_seq;
  return em.transactional(async (tx) => {
    const [purged] = await tx.execute<{ rows: string }[]>('select audit_purge(?, ?)::text as rows', [through, hotDays]);
    const rows = Number(purged!.rows);
    await recordAudit(tx, { action: 'audit.purge', outcome: 'success', entity: 'audit_log', actorRole: 'system', details: { rows, throughSeq: through, hotDays } });
    return { rows, throughSeq: through };
  });
}

export interface FullChainReport extends ChainReport {
  /** Export files read from the bucket. */
  files: number;
  /**
   * Export files in an archive storage class (Glacier): not readable without a restore, so each is
   * proven by S3's checksum equal to the one verified and recorded at export, linked by its ends.
   */
  archived: number;
}

/**
 * The whole chain from genesis: every export file in the bucket in order (each chained to the one
 * before, each row hashing to itself), then the rows still in the database after the last one.
 * Rows both exported and still in the database must be the same rows. An archived file is vouched
 * for by its export record (see `FullChainReport.archived`).
 */
export async function verifyWithExports(em: EntityManager, storage: Storage): Promise<FullChainReport> {
  const bucket = bucketOf(storage, 'audit');
  const checker = new ChainChecker();
  let files = 0;
  let archived = 0;
  const broken = (seq: string, reason: ChainBreak['reason']): FullChainReport => ({
    ok: false, checked: checker.checked, headHash: checker.headHash, firstBroken: checker.broken ?? { seq, id: null, reason }, files, archived,
  });
  let exportedThrough = 0n;
  for (const key of (await listKeys(storage, bucket, EXPORT_PREFIX)).filter((k) => k.endsWith('.ndjson'))) {
    const firstSeq = (exportedThrough + 1n).toString();
    let stored: Buffer | undefined;
    try {
      stored = await readObject(storage, bucket, key);
    } catch (error) {
      if (!isArchived(error)) throw error;
      const [batch] = await em.execute<ExportBatch[]>('select * from audit_exports where object_key = ? and verified_at is not null', [key]);
      if (!batch || !(await holdsVerifiedFile(storage, bucket, batch))) return broken(firstSeq, 'missing_rows');
      const stillStored = await batchRows(em, batch);
      if (stillStored.length > 0 && sha256(serialiseExport(batch.prev_hash, stillStored)) !== batch.sha256) return broken(batch.first_seq, 'hash_mismatch');
      if (!checker.vouch({ firstSeq: BigInt(batch.first_seq), prevHash: batch.prev_hash, lastSeq: BigInt(batch.last_seq), lastHash: batch.last_hash })) {
        return broken(batch.first_seq, 'prev_hash_mismatch');
      }
      archived += 1;
      exportedThrough = BigInt(batch.last_seq);
      continue;
    }
    const file = stored ? parseExport(stored.toString('utf8')) : undefined;
    if (!file) return broken(firstSeq, 'missing_rows');
    files += 1;
    if (file.header.prevHash !== checker.headHash || file.header.firstSeq !== firstSeq) return broken(file.header.firstSeq, 'prev_hash_mismatch');
    const inDatabase = new Map<string, string>();
    for await (const row of auditRowsFrom(em, BigInt(file.header.firstSeq) - 1n, BigInt(file.header.lastSeq))) inDatabase.set(row.seq, row.hash);
    for (const row of file.rows) {
      if (!checker.add(row)) return broken(row.seq, 'hash_mismatch');
      const stillStored = inDatabase.get(row.seq);
      if (stillStored !== undefined && stillStored !== row.hash) return broken(row.seq, 'hash_mismatch');
    }
    if (file.footer.lastHash !== checker.headHash) return broken(file.footer.lastSeq, 'hash_mismatch');
    exportedThrough = BigInt(file.footer.lastSeq);
  }
  const head = await chainHead(em);
  const report = await checkChain(checker, auditRowsFrom(em, exportedThrough, head.seq), head);
  return { ...report, files, archived };
}
