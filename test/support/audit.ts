import assert from 'node:assert/strict';
import { eventually, sql } from './postgres.js';

/**
 * Waits until the sequencer of a running API has chained every record committed so far (the queue
 * is empty): for tests that read the chain itself (`audit_logs`, verify, the auditors' pages).
 */
export async function auditChained(ownerUrl: string): Promise<void> {
  await eventually(async () => {
    const { rows } = await sql(ownerUrl, 'select count(*)::int as n from audit_queue');
    assert.equal(rows[0].n, 0, 'records still queued');
  });
}
