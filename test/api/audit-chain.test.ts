import assert from 'node:assert/strict';
import type { EntityManager } from '@mikro-orm/postgresql';
import { hashRecord, type AuditRecord } from '../../api/audit/chain.js';
import { recordAudit, type AuditEntry } from '../../api/audit/record.js';
import { verifyDatabaseChain } from '../../api/audit/verify.js';
import { createOrm, type Orm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { LogCapture, migratedDatabase } from '../support/api.js';
import { createDatabase, sql } from '../support/postgres.js';

const entry = (n: number): AuditEntry => ({
  action: 'patient.update', outcome: 'success', entity: 'patient', entityId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  actorId: '11111111-1111-4111-8111-111111111111', actorRole: 'doctor', ip: '203.0.113.7', requestId: `req-${n}-abcdef`, details: { n },
});

describe('audit trail: append-only, hash-chained, serialised', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let orm: Orm;
  let logs: LogCapture;
  const em = (): EntityManager => orm.em.fork();

  before(async () => {
    db = await migratedDatabase();
    logs = new LogCapture();
    orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [], log: createLogger({ level: 'info', env: 'test', stream: logs }) });
  });
  after(async () => {
    await orm?.close();
    await db?.drop();
  });

  it('writes each record with the change, chained to the one before, and logs it once committed', async () => {
    await em().transactional(async (tx) => {
      await recordAudit(tx, entry(1));
      await recordAudit(tx, entry(2));
    });
    const rows = (await sql(db.ownerUrl, 'select seq::int as seq, prev_hash, hash from audit_logs order by seq')).rows;
    assert.deepEqual(rows.map((r) => r.seq), [1, 2]);
    assert.equal(rows[0].prev_hash, '0'.repeat(64));
    assert.equal(rows[1].prev_hash, rows[0].hash);
    const logged = logs.records('audit');
    assert.deepEqual(logged.map((r) => r.action), ['patient.update', 'patient.update']);
    assert.equal(logged[0]!.reqId, 'req-1-abcdef');
    assert.deepEqual(await verifyDatabaseChain(em()), { ok: true, checked: 2, headHash: rows[1].hash });
  });

  it('leaves neither the record nor its log line behind when the transaction rolls back', async () => {
    const before = logs.records('audit').length;
    await assert.rejects(em().transactional(async (tx) => {
      await recordAudit(tx, entry(3));
      throw new Error('the change failed after its audit row');
    }));
    assert.equal((await sql(db.ownerUrl, 'select count(*)::int as n from audit_logs')).rows[0].n, 2);
    assert.equal(logs.records('audit').length, before);
    assert.equal((await verifyDatabaseChain(em())).ok, true);
  });

  it('refuses UPDATE, DELETE and TRUNCATE from the API role', async () => {
    for (const statement of ['update audit_logs set action = \'x.y\'', 'delete from audit_logs', 'truncate audit_logs', 'update audit_chain_head set seq = 0']) {
      await assert.rejects(sql(db.appUrl, statement), /permission denied/, statement);
    }
  });

  it('refuses UPDATE even from the owner while the trigger stands, and a row that does not extend the head', async () => {
    await assert.rejects(sql(db.ownerUrl, 'update audit_logs set ip = null where seq = 1'), /append-only/);
    await assert.rejects(sql(db.ownerUrl, 'delete from audit_logs where seq = 1'), /no verified export/);
    await assert.rejects(
      sql(db.appUrl, `insert into audit_logs (seq, id, occurred_at, action, outcome, prev_hash, hash)
        values (7, gen_random_uuid(), now(), 'x.y', 'success', repeat('0', 64), repeat('a', 64))`),
      /does not extend the chain head/,
    );
  });

  it('keeps one unbroken chain under concurrent writers', async () => {
    const writers = 24;
    await Promise.all(Array.from({ length: writers }, (_, i) => em().transactional((tx) => recordAudit(tx, entry(100 + i)))));
    const report = await verifyDatabaseChain(em());
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(report.checked, 2 + writers);
    const seqs = (await sql(db.ownerUrl, 'select seq::int as seq from audit_logs order by seq')).rows.map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: 2 + writers }, (_, i) => i + 1));
  });

  it('never deadlocks a transaction that takes row locks after recording', async () => {
    await sql(db.ownerUrl, 'create table scratch (id int primary key, n int); insert into scratch values (1, 0); grant select, update on scratch to dms_api');
    const before = (await verifyDatabaseChain(em())).checked;
    let rowLocked!: () => void;
    const locked = new Promise<void>((resolve) => (rowLocked = resolve));
    let recorded!: () => void;
    const firstRecorded = new Promise<void>((resolve) => (recorded = resolve));
    // Holds the row, then records once the other transaction has recorded and is waiting for the row.
    const holder = em().transactional(async (tx) => {
      await tx.execute('update scratch set n = n + 1 where id = 1');
      rowLocked();
      await firstRecorded;
      await new Promise((resolve) => setTimeout(resolve, 200));
      await recordAudit(tx, entry(301));
    });
    // Records first, then needs the row the other holds.
    const waiter = em().transactional(async (tx) => {
      await locked;
      await recordAudit(tx, entry(300));
      recorded();
      await tx.execute('update scratch set n = n + 1 where id = 1');
    });
    await Promise.all([holder, waiter]);
    const report = await verifyDatabaseChain(em());
    assert.equal(report.ok, true);
    assert.equal(report.checked, before + 2);
  });

  it('reports the first row an owner altered behind the trigger', async () => {
    const target = (await sql(db.ownerUrl, 'select seq::text as seq, id::text as id from audit_logs where seq = 5')).rows[0];
    await sql(db.ownerUrl, `begin;
      alter table audit_logs disable trigger audit_logs_no_update;
      update audit_logs set actor_role = 'admin' where seq in (5, 9);
      alter table audit_logs enable trigger audit_logs_no_update;
      commit;`);
    const report = await verifyDatabaseChain(em());
    assert.equal(report.ok, false);
    assert.deepEqual(report.firstBroken, { seq: '5', id: target.id, reason: 'hash_mismatch' });
    assert.equal(report.checked, 4);
  });
});

describe('audit trail: the hash covers every column', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let orm: Orm;
  const em = (): EntityManager => orm.em.fork();

  before(async () => {
    db = await migratedDatabase();
    orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [], log: createLogger({ level: 'error', env: 'test', stream: new LogCapture() }) });
    for (let n = 1; n <= 5; n++) await recordAudit(em(), entry(n));
    // What each tamper test puts back, so every test starts from an intact chain.
    await sql(db.ownerUrl, 'create table audit_original as select * from audit_logs');
  });
  after(async () => {
    await orm?.close();
    await db?.drop();
  });

  it('hashes a known record to the sha256 of its documented canonical form (computed by PostgreSQL, not by hashRecord)', async () => {
    const record: Omit<AuditRecord, 'hash'> = {
      seq: '42', id: '3f1c2a9e-8b7d-4c6e-9a5f-0e1d2c3b4a59', occurredAt: '2024-05-01T09:30:00.123Z',
      actorId: '11111111-1111-4111-8111-111111111111', actorRole: 'doctor', action: 'patient.update', outcome: 'success',
      entity: 'patient', entityId: '00000000-0000-4000-8000-000000000007', ip: '203.0.113.7', requestId: 'req-42',
      details: { rows: 3, fields: 'notes', paged: false, none: null }, prevHash: 'ab'.repeat(32),
    };
    // docs/records.md: JSON of every column but hash, keys sorted at every level, seq as a decimal string, no spaces.
    const canonical = '{"action":"patient.update","actorId":"11111111-1111-4111-8111-111111111111","actorRole":"doctor",'
      + '"details":{"fields":"notes","none":null,"paged":false,"rows":3},"entity":"patient","entityId":"00000000-0000-4000-8000-000000000007",'
      + '"id":"3f1c2a9e-8b7d-4c6e-9a5f-0e1d2c3b4a59","ip":"203.0.113.7","occurredAt":"2024-05-01T09:30:00.123Z","outcome":"success",'
      + `"prevHash":"${'ab'.repeat(32)}","requestId":"req-42","seq":"42"}`;
    const { rows } = await sql(db.ownerUrl, "select encode(sha256(convert_to($1, 'UTF8')), 'hex') as hash", [canonical]);
    assert.match(rows[0].hash, /^[0-9a-f]{64}$/);
    assert.equal(hashRecord(record), rows[0].hash);
  });

  /** Each hashed column, a change an owner could make to it, and what verify must then report for row 3. */
  const TAMPERED: [column: string, change: string, reason: string][] = [
    ['id', 'id = gen_random_uuid()', 'hash_mismatch'],
    ['occurred_at', "occurred_at = occurred_at + interval '1 millisecond'", 'hash_mismatch'],
    ['actor_id', "actor_id = '22222222-2222-4222-8222-222222222222'", 'hash_mismatch'],
    ['actor_role', "actor_role = 'admin'", 'hash_mismatch'],
    ['action', "action = 'patient.delete'", 'hash_mismatch'],
    ['outcome', "outcome = 'failure'", 'hash_mismatch'],
    ['entity', "entity = 'visit'", 'hash_mismatch'],
    ['entity_id', "entity_id = '00000000-0000-4000-8000-000000000999'", 'hash_mismatch'],
    ['ip', "ip = '198.51.100.1'", 'hash_mismatch'],
    ['request_id', "request_id = 'req-forged'", 'hash_mismatch'],
    ['details', `details = details || '{"n": 999}'`, 'hash_mismatch'],
    ['details (a key added)', `details = details || '{"extra": true}'`, 'hash_mismatch'],
    ['prev_hash', "prev_hash = repeat('f', 64)", 'prev_hash_mismatch'],
    ['hash', "hash = repeat('e', 64)", 'hash_mismatch'],
  ];

  const behindTheTrigger = (statement: string) => sql(db.ownerUrl, `begin;
    alter table audit_logs disable trigger audit_logs_no_update;
    ${statement};
    alter table audit_logs enable trigger audit_logs_no_update;
    commit;`);

  for (const [column, change, reason] of TAMPERED) {
    it(`reports row 3 when its ${column} is altered behind the trigger, and holds again once it is put back`, async () => {
      const target = (await sql(db.ownerUrl, 'select id::text as id from audit_logs where seq = 3')).rows[0];
      await behindTheTrigger(`update audit_logs set ${change} where seq = 3`);
      try {
        const report = await verifyDatabaseChain(em());
        assert.equal(report.ok, false, `${column} altered, yet the chain holds`);
        assert.equal(report.checked, 2);
        assert.equal(report.firstBroken?.seq, '3');
        assert.equal(report.firstBroken?.reason, reason);
        if (column !== 'id') assert.equal(report.firstBroken?.id, target.id);
      } finally {
        const columns = (await sql(db.ownerUrl, "select string_agg(format('%I = o.%I', column_name, column_name), ', ') as list from information_schema.columns where table_name = 'audit_original'")).rows[0].list;
        await behindTheTrigger(`update audit_logs a set ${columns} from audit_original o where o.seq = 3 and a.seq = 3`);
      }
      assert.deepEqual(await verifyDatabaseChain(em()), { ok: true, checked: 5, headHash: (await sql(db.ownerUrl, 'select hash from audit_logs where seq = 5')).rows[0].hash });
    });
  }
});
