import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { createAudited } from '../../api/audit/audited-create.js';
import { Patient } from '../../api/db/entities.js';
import { createOrm, type Orm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { LogCapture, sharedDatabase } from '../support/api.js';
import { sql, statementsSentThrough } from '../support/postgres.js';

/**
 * `POST /patients` creates the patient and its audit record in one statement: what the record
 * promises (both commit or neither, the `audit` line after the commit) at a quarter of the round
 * trips of a transaction. The failures it cannot attribute are covered over HTTP by audit.test.ts
 * (a record that cannot be written: 503 audit_write_failed, no patient) and database-faults.test.ts.
 */
describe('a patient and its audit record, created in one statement', function () {
  this.timeout(60_000);
  let orm: Orm;
  let logs: LogCapture;
  let statements: string[];
  let ownerUrl: string;
  before(async () => {
    const db = await sharedDatabase();
    ownerUrl = db.ownerUrl;
    logs = new LogCapture();
    orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [], log: createLogger({ level: 'info', env: 'test', stream: logs }) });
    statements = statementsSentThrough(await orm.em.getConnection('write').getNativeClient() as pg.Pool);
  });
  after(() => orm?.close());

  const create = (em = orm.em.fork(), fullName = `One ${randomUUID()}`) => createAudited(em, createLogger({ level: 'info', env: 'test', stream: logs }), Patient,
    { fullName, dateOfBirth: '1970-05-06', sex: null, phone: null, email: null, notes: null, deletedAt: null },
    (id) => ({ action: 'patient.create', outcome: 'success', entity: 'patient', entityId: id, actorId: randomUUID(), actorRole: 'staff', requestId: `req-${id}` }));

  it('sends one statement, and commits the patient with its queued record', async () => {
    statements.length = 0;
    const patient = await create();
    assert.equal(statements.length, 1, statements.join('\n---\n'));
    assert.match(statements[0]!, /insert into audit_queue/);
    assert.equal(patient.dateOfBirth, '1970-05-06');
    assert.ok(patient.createdAt instanceof Date);
    const stored = await sql(ownerUrl, 'select full_name from patients where id = $1', [patient.id]);
    assert.equal(stored.rows[0]?.full_name, patient.fullName);
    const record = await sql(ownerUrl, `select action, entity_id from audit_trail where request_id = $1`, [`req-${patient.id}`]);
    assert.deepEqual(record.rows, [{ action: 'patient.create', entity_id: patient.id }]);
  });

  it('logs the record as event audit once the statement has committed, ids only', async () => {
    const name = `Logged ${randomUUID()}`;
    const patient = await create(orm.em.fork(), name);
    const lines = logs.records('audit').filter((line) => line.entityId === patient.id);
    assert.equal(lines.length, 1);
    assert.doesNotMatch(JSON.stringify(lines), new RegExp(name));
  });

  it('shares one statement among the creates of one turn, each with its own patient and record', async () => {
    statements.length = 0;
    const patients = await Promise.all(Array.from({ length: 5 }, () => create()));
    assert.equal(statements.length, 1, 'one statement for the five');
    assert.equal(new Set(patients.map((patient) => patient.id)).size, 5);
    for (const patient of patients) {
      const record = await sql(ownerUrl, `select entity_id from audit_trail where request_id = $1`, [`req-${patient.id}`]);
      assert.deepEqual(record.rows, [{ entity_id: patient.id }]);
      assert.equal((await sql(ownerUrl, 'select full_name from patients where id = $1', [patient.id])).rows[0]?.full_name, patient.fullName);
    }
  });

  it('runs each create of a failed shared statement alone: a row that fails, fails only its own create', async () => {
    const refused = `Refused ${randomUUID()}`;
    const trigger = `refuse_${randomUUID().replaceAll('-', '')}`;
    await sql(ownerUrl, `create function ${trigger}() returns trigger language plpgsql as $$
      begin if new.full_name = '${refused}' then raise exception 'division by zero' using errcode = '22012'; end if; return new; end $$;
      create trigger ${trigger} before insert on patients for each row execute function ${trigger}()`);
    try {
      const names = [`Kept ${randomUUID()}`, refused, `Kept ${randomUUID()}`];
      const outcomes = await Promise.allSettled(names.map((name) => create(orm.em.fork(), name)));
      assert.deepEqual(outcomes.map((outcome) => outcome.status), ['fulfilled', 'rejected', 'fulfilled']);
      assert.match(String((outcomes[1] as PromiseRejectedResult).reason?.message), /division by zero/);
      for (const name of names) {
        const stored = (await sql(ownerUrl, 'select count(*)::int as n from patients where full_name = $1', [name])).rows[0].n;
        assert.equal(stored, name === refused ? 0 : 1, name);
      }
      const records = await sql(ownerUrl, `select count(*)::int as n from audit_trail where action = 'patient.create' and request_id = any($1)`,
        [outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [`req-${outcome.value.id}`] : []))]);
      assert.equal(records.rows[0].n, 2, 'a record for each kept patient');
    } finally {
      await sql(ownerUrl, `drop trigger ${trigger} on patients; drop function ${trigger}()`);
    }
  });

  it('joins a transaction it is called in, whose commit then carries the record', async () => {
    let id = '';
    await orm.em.fork().transactional(async (tx) => {
      id = (await create(tx)).id;
      assert.equal((await sql(ownerUrl, 'select count(*)::int as n from patients where id = $1', [id])).rows[0].n, 0, 'not visible before the commit');
    });
    assert.equal((await sql(ownerUrl, `select count(*)::int as n from audit_trail where request_id = $1`, [`req-${id}`])).rows[0].n, 1);
  });
});
