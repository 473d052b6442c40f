// How audit export files are named and labelled in AUDIT_BUCKET: shared by the exporter and by
// `npm run ops -- preserve-evidence`, which finds the files of an incident window without reading them.
import type { AuditRecord } from './chain.js';

/**
 * Export files: `audit-logs/<firstSeq>-<lastSeq>.ndjson` (zero-padded, so key order is chain order).
 * The key names a range of the chain, not of time: the time range of a file's rows is in its metadata.
 */
export const EXPORT_PREFIX = 'audit-logs/';

const pad = (seq: bigint | string) => seq.toString().padStart(20, '0');
export const exportKey = (firstSeq: bigint, lastSeq: bigint) => `${EXPORT_PREFIX}${pad(firstSeq)}-${pad(lastSeq)}.ndjson`;

/**
 * User metadata of each export (`x-amz-meta-first-occurred-at`, `…-last-occurred-at`): the earliest
 * and latest `occurredAt` of its rows. Rows are chained in commit order, not strictly in time
 * order, so these are the minimum and maximum, not the first and last row's. HeadObject answers
 * them in every storage class, Glacier included. Files exported before they were recorded have none.
 */
export const AUDIT_EXPORT_TIME_METADATA = { first: 'first-occurred-at', last: 'last-occurred-at' } as const;

export function exportTimeMetadata(rows: readonly Pick<AuditRecord, 'occurredAt'>[]): Record<string, string> {
  const times = rows.map((row) => Date.parse(row.occurredAt));
  return {
    [AUDIT_EXPORT_TIME_METADATA.first]: new Date(Math.min(...times)).toISOString(),
    [AUDIT_EXPORT_TIME_METADATA.last]: new Date(Math.max(...times)).toISOString(),
  };
}
