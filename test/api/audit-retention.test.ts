import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { EntityManager } from '@mikro-orm/postgresql';
import { GENESIS_HASH } from '../../api/audit/chain.js';
import { AUDIT_EXPORT_TIME_METADATA } from '../../api/audit/export-naming.js';
import { AuditRetentionError, EXPORT_PREFIX, exportAudit, parseExport, purgeAudit, verifyWithExports } from '../../api/audit/exports.js';
import { queueInsert, queueRows, queuedRecord, recordAudit } from '../../api/audit/record.js';
import { sequenceAll } from '../../api/audit/sequencer.js';
import { chainHead } from '../../api/audit/store.js';
import { verifyDatabaseChain } from '../../api/audit/verify.js';
import { runCommand } from '../../api/cli.js';
import { createOrm, type Orm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { listKeys, readObject, type Storage } from '../../api/storage/s3.js';
import { LogCapture, migratedDatabase } from '../support/api.js';
import { createDatabase, sql } from '../support/postgres.js';
import { sharedS3, type TestS3 } from '../support/s3.js';

const DAY_MS = 86_400_000;
/** Production's `auditHotDays` (AUDIT_HOT_DAYS): rows and export files go cold on the same day. */
const HOT_DAYS = 90;

/**
 * Queues records dated `ageDays` ago, as recordAudit does, and has them chained: the only way to
 * have rows past the 90-day retention without waiting 90 days.
 */
async function appendAgedRows(em: EntityManager, appUrl: string, count: number, ageDays: number): Promise<void> {
  const records = Array.from({ length: count }, (_, i) => queuedRecord({
    actorId: randomUUID(), actorRole: 'doctor', action: 'patient.update', outcome: 'success', entity: 'patient', entityId: randomUUID(),
    ip: '203.0.113.9', requestId: `aged-${i}-request`, details: { fields: 'notes' },
  }, new Date(Date.now() - ageDays * DAY_MS + i)));
  await em.execute(queueInsert('?'), [queueRows(records)]);
  await sequenceAll(appUrl);
}

describe('audit export and retention (npm run audit:export, audit:purge, audit:verify)', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let orm: Orm;
  let s3: TestS3;
  let storage: Storage;
  let bucket: string;
  const em = () => orm.em.fork();
  const count = async (table: string) => Number((await sql(db.ownerUrl, `select count(*)::int as n from ${table}`)).rows[0].n);
  const exportFiles = async () => (await listKeys(storage, bucket, EXPORT_PREFIX)).filter((key) => key.endsWith('.ndjson'));

  before(async () => {
    db = await migratedDatabase();
    // As the export and purge jobs run: the exporter's role, the only one that may record exports and purge.
    orm = await createOrm({ databaseUrl: db.exporterUrl, replicaUrls: [], log: createLogger({ level: 'error', env: 'test', stream: new LogCapture() }) });
    s3 = await sharedS3();
    // A bucket of this database's own: its chain starts at seq 1 like every other test database's.
    bucket = `dms-audit-${randomUUID().slice(0, 8)}`;
    storage = s3.storage();
    await storage.client.send(new CreateBucketCommand({ Bucket: bucket }));
    storage.auditBucket = bucket;
    await appendAgedRows(em(), db.appUrl, 25, 120);
    for (let i = 0; i < 5; i++) await recordAudit(em(), { action: 'patient.create', outcome: 'success', entity: 'patient', entityId: randomUUID(), actorRole: 'staff' });
    await sequenceAll(db.appUrl);
  });
  after(async () => {
    storage?.client.destroy();
    await orm?.close();
    await db?.drop();
  });

  describe('export', () => {
    it('finishes a batch a crash left half-done, losing nothing and writing nothing twice', async () => {
      let puts = 0;
      storage.client.middlewareStack.add((next, context) => async (args) => {
        if (context.commandName === 'PutObjectCommand' && ++puts === 2) throw new Error('the task was stopped mid-export');
        return next(args);
      }, { step: 'initialize', name: 'crashSecondPut' });
      await assert.rejects(exportAudit(em(), storage, 10), /stopped mid-export/);
      storage.client.middlewareStack.remove('crashSecondPut');
      const batches = (await sql(db.ownerUrl, 'select first_seq::int as f, last_seq::int as l, verified_at from audit_exports order by first_seq')).rows;
      assert.deepEqual(batches.map((b) => [b.f, b.l, b.verified_at !== null]), [[1, 10, true], [11, 20, false]], 'the second batch was recorded but not verified');

      const summary = await exportAudit(em(), storage, 10);
      assert.deepEqual(summary, { files: 2, rows: 20, throughSeq: '30' }, 'the pending batch is redone, then the rest');
      assert.deepEqual(await exportFiles(), [
        `${EXPORT_PREFIX}00000000000000000001-00000000000000000010.ndjson`,
        `${EXPORT_PREFIX}00000000000000000011-00000000000000000020.ndjson`,
        `${EXPORT_PREFIX}00000000000000000021-00000000000000000030.ndjson`,
      ]);
    });

    it('writes newline-delimited JSON with the chain hash at each end of the file', async () => {
      const body = (await readObject(storage, bucket, `${EXPORT_PREFIX}00000000000000000011-00000000000000000020.ndjson`))!.toString('utf8');
      const lines = body.trimEnd().split('\n').map((line) => JSON.parse(line));
      assert.equal(lines.length, 12);
      const { rows } = await sql(db.ownerUrl, 'select seq::int as seq, prev_hash, hash from audit_logs where seq in (11, 20) order by seq');
      assert.deepEqual(lines[0], { firstSeq: '11', format: 'dms-audit-export/1', kind: 'header', lastSeq: '20', prevHash: rows[0].prev_hash, rowCount: 10 });
      assert.deepEqual(lines.at(-1), { kind: 'footer', lastHash: rows[1].hash, lastSeq: '20', rowCount: 10 });
      assert.equal(lines[1].kind, 'row');
      assert.equal(lines[1].hash, rows[0].hash);
      assert.ok(parseExport(body));
    });

    it('labels each file with the earliest and latest time of its rows, so an incident window maps to files without reading them', async () => {
      const key = `${EXPORT_PREFIX}00000000000000000011-00000000000000000020.ndjson`;
      const head = await storage.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const { rows } = await sql(db.ownerUrl, 'select min(occurred_at) as first, max(occurred_at) as last from audit_logs where seq between 11 and 20');
      assert.deepEqual(head.Metadata, {
        [AUDIT_EXPORT_TIME_METADATA.first]: new Date(rows[0].first).toISOString(),
        [AUDIT_EXPORT_TIME_METADATA.last]: new Date(rows[0].last).toISOString(),
      });
    });

    it('exports nothing twice when run again', async () => {
      const before = await exportFiles();
      const summary = await exportAudit(em(), storage, 10);
      // Only the row that recorded the previous export is new.
      assert.deepEqual(summary, { files: 1, rows: 1, throughSeq: '31' });
      const after = await exportFiles();
      assert.deepEqual(after.slice(0, before.length), before);
      assert.deepEqual(after.slice(before.length), [`${EXPORT_PREFIX}00000000000000000031-00000000000000000031.ndjson`]);
    });
  });

  describe('purge', () => {
    it('keeps every row the database itself does not allow to go', async () => {
      await assert.rejects(sql(db.appUrl, 'delete from audit_logs where seq = 1'), /permission denied/);
      await assert.rejects(sql(db.exporterUrl, 'select audit_purge(30, 90)'), /not all past the 90-day hot retention/, 'rows 26-30 are recent');
      await assert.rejects(sql(db.exporterUrl, 'select audit_purge(20, 29)'), /under the 30-day floor/, 'whatever the task is configured with');
      await assert.rejects(sql(db.exporterUrl, 'select audit_purge(5, 90)'), /does not end a verified export/, 'a cut inside a file would leave no anchor');
      await recordAudit(em(), { action: 'audit.read', outcome: 'success', actorRole: 'auditor' });
      await sequenceAll(db.appUrl);
      const head = await chainHead(em());
      await assert.rejects(sql(db.ownerUrl, `delete from audit_logs where seq = ${head.seq}`), /has no verified export/, 'even the owner cannot drop an unexported row');
    });

    it('lets only the exporter record an export or purge: the API role cannot forge the verified export a purge needs', async () => {
      await assert.rejects(sql(db.appUrl, `insert into audit_exports (id, first_seq, last_seq, prev_hash, last_hash, row_count, object_key, sha256, created_at, verified_at)
        values (gen_random_uuid(), 1000, 1000, repeat('0', 64), repeat('0', 64), 1, 'forged', repeat('0', 64), now(), now())`), /permission denied for table audit_exports/);
      await assert.rejects(sql(db.appUrl, 'update audit_exports set verified_at = now()'), /permission denied for table audit_exports/);
      await assert.rejects(sql(db.appUrl, 'select audit_purge(20, 90)'), /permission denied for function audit_purge/);
      await assert.rejects(sql(db.exporterUrl, 'select count(*) from patients'), /permission denied for table patients/, 'the exporter reads no PHI');
      assert.equal((await sql(db.appUrl, 'select count(*)::int as n from audit_exports')).rows[0].n > 0, true, 'the API may still read export records');
    });

    it('refuses to purge while an export file does not hold the database rows', async () => {
      const key = `${EXPORT_PREFIX}00000000000000000011-00000000000000000020.ndjson`;
      const original = (await readObject(storage, bucket, key))!;
      await storage.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: original.toString('utf8').replace('"doctor"', '"admin"') }));
      const rows = await count('audit_logs');
      try {
        await assert.rejects(purgeAudit(em(), storage, HOT_DAYS), AuditRetentionError);
        assert.equal(await count('audit_logs'), rows, 'nothing purged');
        const report = await verifyWithExports(em(), storage);
        assert.equal(report.ok, false);
        assert.equal(report.firstBroken!.seq, '11');
        s3.setStorageClass(bucket, key, 'GLACIER');
        await assert.rejects(purgeAudit(em(), storage, HOT_DAYS), AuditRetentionError, 'in Glacier too: its checksum is not the one verified at export');
        assert.equal((await verifyWithExports(em(), storage)).firstBroken!.seq, '11');
      } finally {
        await storage.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: original }));
      }
    });

    it('removes whole exported files past the 90-day retention only, once the lifecycle rule has moved them to Glacier, and the chain verifies across bucket and database', async () => {
      // Day 90: the files of rows 1-20 went to Glacier hours before the purge runs.
      const archived = [`${EXPORT_PREFIX}00000000000000000001-00000000000000000010.ndjson`, `${EXPORT_PREFIX}00000000000000000011-00000000000000000020.ndjson`];
      for (const key of archived) s3.setStorageClass(bucket, key, 'GLACIER');
      await assert.rejects(readObject(storage, bucket, archived[0]!), (error: Error) => error.name === 'InvalidObjectState', 'a GET of an archived file fails, as on S3');
      const summary = await purgeAudit(em(), storage, HOT_DAYS);
      // Rows 1-25 are past retention; 21-30 share a file with recent rows, so they wait for it.
      assert.deepEqual(summary, { rows: 20, throughSeq: '20' });
      const remaining = (await sql(db.ownerUrl, 'select min(seq)::int as first, count(*)::int as n from audit_logs')).rows[0];
      assert.equal(remaining.first, 21);

      const full = await verifyWithExports(em(), storage);
      assert.equal(full.ok, true, JSON.stringify(full));
      assert.equal(full.files, 2, 'the files still in S3 Standard are read');
      assert.equal(full.archived, 2, 'the archived ones are proven by their checksum and their ends');
      assert.equal(full.checked, remaining.n, 'every readable row hashed once: the rest of the database after the exports');
      assert.equal(full.headHash, (await chainHead(em())).hash);
      const database = await verifyDatabaseChain(em());
      assert.equal(database.ok, true, JSON.stringify(database));
      assert.equal(database.checked, remaining.n, 'the database part starts at the export before it');

      assert.deepEqual(await purgeAudit(em(), storage, HOT_DAYS), { rows: 0, throughSeq: null }, 'nothing more is past retention');
    });

    it('takes the hot retention from AUDIT_HOT_DAYS, refusing less than 30 days before touching anything', async () => {
      const env = { NODE_ENV: 'test', DATABASE_URL: db.exporterUrl, LOG_LEVEL: 'error' };
      const out = new LogCapture();
      const code = await runCommand(['audit:purge'], { env: { ...env, AUDIT_HOT_DAYS: '29' }, overrides: { s3: { ...s3.s3, auditBucket: bucket } }, stdout: out, stderr: new LogCapture() });
      assert.equal(code, 1);
      assert.deepEqual(JSON.parse(out.lines[0]!), { command: 'audit:purge', ok: false, error: 'configuration', variable: 'AUDIT_HOT_DAYS' });
      const staging = new LogCapture();
      assert.equal(await runCommand(['audit:purge'], { env: { ...env, AUDIT_HOT_DAYS: '30' }, overrides: { s3: { ...s3.s3, auditBucket: bucket } }, stdout: staging, stderr: new LogCapture() }), 0);
      assert.equal(JSON.parse(staging.lines[0]!).hotDays, 30, staging.lines[0]);
      const { rows } = await sql(db.ownerUrl, 'select min(seq)::int as first from audit_logs');
      assert.equal(rows[0].first, 21, 'rows 21-30 share a file with rows of today: they stay at 30 days too');
    });

    it('runs as the commands the scheduled tasks start, one JSON line each', async () => {
      const env = { NODE_ENV: 'test', DATABASE_URL: db.exporterUrl, LOG_LEVEL: 'error' };
      const overrides = { s3: { ...s3.s3, auditBucket: bucket } };
      for (const args of [['audit:export'], ['audit:purge'], ['audit:verify'], ['audit:verify', '--with-exports']]) {
        const command = args[0];
        const out = new LogCapture();
        const code = await runCommand(args, { env, overrides, stdout: out, stderr: new LogCapture() });
        assert.equal(out.lines.length, 1, command);
        const result = JSON.parse(out.lines[0]!);
        assert.equal(result.command, command);
        assert.equal(result.ok, true, out.lines[0]);
        assert.equal(code, 0);
      }
    });

    it('reports a file missing from the bucket', async () => {
      const key = `${EXPORT_PREFIX}00000000000000000001-00000000000000000010.ndjson`;
      s3.setStorageClass(bucket, key, 'STANDARD');
      const original = (await readObject(storage, bucket, key))!;
      await storage.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'truncated' }));
      try {
        const out = new LogCapture();
        const code = await runCommand(['audit:verify', '--with-exports'], {
          env: { NODE_ENV: 'test', DATABASE_URL: db.exporterUrl, LOG_LEVEL: 'error' }, overrides: { s3: { ...s3.s3, auditBucket: bucket } }, stdout: out, stderr: new LogCapture(),
        });
        assert.equal(code, 1);
        assert.deepEqual(JSON.parse(out.lines[0]!).firstBroken, { seq: '1', id: null, reason: 'missing_rows' });
      } finally {
        await storage.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: original }));
      }
      assert.equal((await verifyWithExports(em(), storage)).ok, true);
      assert.equal(GENESIS_HASH, JSON.parse(original.toString('utf8').split('\n')[0]!).prevHash, 'the first file chains from genesis');
    });
  });
});
