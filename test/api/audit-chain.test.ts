import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { hashRecord, type AuditRecord } from '../../api/audit/chain.js';
import { recordAudit, type AuditEntry } from '../../api/audit/record.js';
import { sequenceAll, sequenceBatch } from '../../api/audit/sequencer.js';
import { verifyDatabaseChain } from '../../api/audit/verify.js';
import { createOrm, type Orm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { LogCapture, migratedDatabase } from '../support/api.js';
import { createDatabase, sql } from '../support/postgres.js';

const entry = (n: number): AuditEntry => ({
  action: 'patient.update', outcome: 'success', entity: 'patient', entityId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  actorId: '11111111-1111-4111-8111-111111111111', actorRole: 'doctor', ip: '203.0.113.7', requestId: `req-${n}-abcdef`, details: { n },
});

describe('audit trail: queued with the change, chained by the sequencer, append-only', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let orm: Orm;
  let logs: LogCapture;
  const em = (): EntityManager => orm.em.fork();
  const count = async (table: string) => (await sql(db.ownerUrl, `select count(*)::int as n from ${table}`)).rows[0].n as number;

  before(async () => {
    db = await migratedDatabase();
    logs = new LogCapture();
    orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [], log: createLogger({ level: 'info', env: 'test', stream: logs }) });
  });
  after(async () => {
    await orm?.close();
    await db?.drop();
  });

  it('queues each record with the change, logs it once committed, and the sequencer chains it', async () => {
    await em().transactional(async (tx) => {
      await recordAudit(tx, entry(1));
      await recordAudit(tx, entry(2));
    });
    assert.equal(await count('audit_queue'), 2, 'committed with the change, not chained yet');
    assert.equal(await count('audit_logs'), 0);
    const logged = logs.records('audit');
    assert.deepEqual(logged.map((r) => r.action), ['patient.update', 'patient.update']);
    assert.equal(logged[0]!.reqId, 'req-1-abcdef');

    assert.equal(await sequenceAll(db.appUrl), 2);
    assert.equal(await count('audit_queue'), 0);
    const rows = (await sql(db.ownerUrl, 'select seq::int as seq, request_id, prev_hash, hash from audit_logs order by seq')).rows;
    assert.deepEqual(rows.map((r) => [r.seq, r.request_id]), [[1, 'req-1-abcdef'], [2, 'req-2-abcdef']], 'a transaction\'s records keep their order');
    assert.equal(rows[0].prev_hash, '0'.repeat(64));
    assert.equal(rows[1].prev_hash, rows[0].hash);
    assert.deepEqual(await verifyDatabaseChain(em()), { ok: true, checked: 2, headHash: rows[1].hash, pending: 0 });
  });

  it('leaves neither the record nor its log line behind when the transaction rolls back', async () => {
    const before = logs.records('audit').length;
    await assert.rejects(em().transactional(async (tx) => {
      await recordAudit(tx, entry(3));
      throw new Error('the change failed after its audit row');
    }));
    assert.equal(await count('audit_trail'), 2);
    assert.equal(logs.records('audit').length, before);
  });

  it('lets the API role only append to the queue and read: no rewriting, deleting or chaining by hand', async () => {
    await recordAudit(em(), entry(4));
    const refused = [
      'update audit_logs set action = \'x.y\'', 'delete from audit_logs', 'truncate audit_logs', 'update audit_chain_head set seq = 0',
      'update audit_queue set action = \'x.y\'', 'delete from audit_queue', 'truncate audit_queue',
      'delete from audit_disclosures', 'insert into audit_disclosures (seq, patient_id, kind, occurred_at) values (1, gen_random_uuid(), \'visit\', now())',
      `insert into audit_logs (seq, id, occurred_at, action, outcome, prev_hash, hash) values (3, gen_random_uuid(), now(), 'x.y', 'success', repeat('0', 64), repeat('a', 64))`,
    ];
    for (const statement of refused) await assert.rejects(sql(db.appUrl, statement), /permission denied/, statement);
    assert.equal(await count('audit_queue'), 1, 'the queued record is still there');
  });

  it('refuses the owner too while the triggers stand: no update, no delete of an unchained or unexported record, no forked chain', async () => {
    await assert.rejects(sql(db.ownerUrl, 'update audit_logs set ip = null where seq = 1'), /append-only/);
    await assert.rejects(sql(db.ownerUrl, 'delete from audit_logs where seq = 1'), /no verified export/);
    await assert.rejects(sql(db.ownerUrl, 'update audit_queue set ip = null'), /append-only/);
    await assert.rejects(sql(db.ownerUrl, 'delete from audit_queue'), /not in the chain/);
    for (const [seq, prev] of [[7, "(select hash from audit_chain_head)"], [3, "repeat('0', 64)"]]) {
      await assert.rejects(
        sql(db.ownerUrl, `insert into audit_logs (seq, id, occurred_at, action, outcome, prev_hash, hash)
          values (${seq}, gen_random_uuid(), now(), 'x.y', 'success', ${prev}, repeat('a', 64))`),
        /do not extend the chain head|does not link/,
      );
    }
  });

  it('chains through audit_sequence only queued records, each once, as they were queued', async () => {
    const [head] = (await sql(db.ownerUrl, 'select seq::text as seq, hash from audit_chain_head')).rows;
    const [queued] = (await sql(db.ownerUrl, 'select id::text as id from audit_queue')).rows;
    const next = String(Number(head.seq) + 1);
    await assert.rejects(sql(db.appUrl, 'select audit_sequence($1, $2, $3::uuid[], $4::text[])', [next, head.hash, [randomUUID()], ['a'.repeat(64)]]), /not all queued/);
    await assert.rejects(sql(db.appUrl, 'select audit_sequence($1, $2, $3::uuid[], $4::text[])', [next, 'f'.repeat(64), [queued.id], ['a'.repeat(64)]]), /does not link/);
    assert.equal(await sequenceAll(db.appUrl), 1);
    assert.equal(await sequenceAll(db.appUrl), 0, 'nothing left to chain');
    assert.equal((await verifyDatabaseChain(em())).ok, true);
  });

  it('keeps one unbroken chain when writers commit concurrently and two sequencers run at once', async () => {
    const writers = 48;
    const before = await count('audit_logs');
    const writing = Promise.all(Array.from({ length: writers }, (_, i) => em().transactional((tx) => recordAudit(tx, entry(100 + i)))));
    await Promise.all([writing, sequenceAll(db.appUrl), sequenceAll(db.appUrl)]);
    await sequenceAll(db.appUrl);
    const report = await verifyDatabaseChain(em());
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(report.checked, before + writers);
    const seqs = (await sql(db.ownerUrl, 'select seq::int as seq from audit_logs order by seq')).rows.map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: before + writers }, (_, i) => i + 1));
  });

  it('never deadlocks a transaction that takes row locks after recording', async () => {
    await sql(db.ownerUrl, 'create table scratch (id int primary key, n int); insert into scratch values (1, 0); grant select, update on scratch to dms_api');
    const before = await count('audit_trail');
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
    assert.equal(await count('audit_trail'), before + 2);
  });

  it('polls an empty queue with one statement, without the chain lock, and chains what arrives next', async () => {
    await sequenceAll(db.appUrl);
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    try {
      const sent: string[] = [];
      const query = client.query.bind(client);
      client.query = ((text: string, ...rest: unknown[]) => {
        sent.push(text.trim().split(/\s+/).slice(0, 3).join(' '));
        return (query as (...args: unknown[]) => unknown)(text, ...rest);
      }) as typeof client.query;
      assert.equal(await sequenceBatch(client), 0);
      assert.deepEqual(sent, ['select not exists']);
      await recordAudit(em(), entry(400));
      sent.length = 0;
      assert.equal(await sequenceBatch(client), 1);
      assert.deepEqual([sent[1], sent.at(-1)], ['begin', 'commit']);
      assert.ok(sent.some((text) => text.startsWith('select audit_sequence')), sent.join('; '));
    } finally {
      await client.end();
    }
  });

  it('reports the first row an owner altered behind the trigger', async () => {
    await sequenceAll(db.appUrl);
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
    await sequenceAll(db.appUrl);
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
      assert.deepEqual(await verifyDatabaseChain(em()), { ok: true, checked: 5, pending: 0, headHash: (await sql(db.ownerUrl, 'select hash from audit_logs where seq = 5')).rows[0].hash });
    });
  }
});
