import assert from 'node:assert/strict';
import pg from 'pg';
import { migratedDatabase, startTestApiOn, type TestApi } from '../support/api.js';
import { createUser, signIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { APP_ROLE, createDatabase, eventually, sql } from '../support/postgres.js';

/** The chain lock every audited write takes at commit (migration 0006). */

/**
 * What a client and the logs see when PostgreSQL cannot serve a statement: each fault is a real
 * server error (a role's statement_timeout, a trigger raising the SQLSTATE PostgreSQL itself would),
 * met by the record's own insert.
 */
describe('database faults: 503 unavailable, logged by their cause', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let api: TestApi;
  let staff: SignedIn;
  before(async function () {
    this.timeout(60_000);
    db = await migratedDatabase();
    // A role's statement_timeout, as a DBA would set one; only in this database (roles are per cluster).
    await sql(db.ownerUrl, `alter role ${APP_ROLE} in database ${db.name} set statement_timeout = '1s'`);
    await sql(db.ownerUrl, 'create sequence insert_attempts');
    api = await startTestApiOn(db, UNLIMITED);
    staff = await signIn(api, await createUser('staff', { databaseUrl: db.ownerUrl }));
  });
  after(async () => {
    await api?.close();
    await sql(db.ownerUrl, `alter role ${APP_ROLE} in database ${db.name} reset statement_timeout`);
    await db?.drop();
  });
  afterEach(async () => {
    await sql(db.ownerUrl, 'drop trigger if exists patient_fault on patients; drop function if exists patient_fault()');
    await sql(db.ownerUrl, 'alter sequence insert_attempts restart');
  });

  /** Every patient insert runs `body` (PL/pgSQL) first. */
  async function onPatientInsert(body: string): Promise<void> {
    await sql(db.ownerUrl, `create function patient_fault() returns trigger language plpgsql as $$
      begin perform nextval('insert_attempts'); ${body}; return new; end $$;
      create trigger patient_fault before insert on patients for each row execute function patient_fault()`);
  }

  async function createPatient(fullName: string) {
    const res = await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName, dateOfBirth: '1990-01-01' } });
    return { res, lines: api.logs.records().filter((r) => r.reqId === res.headers.get('x-request-id')) };
  }

  const patientsNamed = async (fullName: string) =>
    (await sql(db.ownerUrl, 'select count(*)::int as n from patients where full_name = $1', [fullName])).rows[0].n as number;

  /** How many times the insert ran (a sequence: a rollback does not take its step back). */
  const attempts = async () =>
    Number((await sql(db.ownerUrl, 'select case when is_called then last_value else 0 end as n from insert_attempts')).rows[0].n);

  function assertUnavailable(res: Awaited<ReturnType<typeof createPatient>>['res'], lines: Record<string, unknown>[], cause: string, sqlstate: string): void {
    assert.equal(res.status, 503);
    assert.deepEqual(Object.keys(res.body).sort(), ['error', 'message', 'requestId']);
    assert.equal(res.body.error, 'unavailable');
    const events = lines.map((line) => line.event);
    assert.ok(!events.includes('unhandled_error'), `not a code bug: ${events.join(', ')}`);
    assert.ok(!events.includes('audit_write_failed'), `not the audit trail: ${events.join(', ')}`);
    const [fault] = lines.filter((line) => line.event === 'dependency_unavailable');
    assert.ok(fault, `a dependency_unavailable line: ${events.join(', ')}`);
    assert.equal(fault.dependency, 'database');
    assert.equal(fault.cause, cause);
    assert.equal(fault.sqlstate, sqlstate);
    assert.equal(fault.path, '/patients');
  }

  it('a statement timeout (57014, the role\'s statement_timeout) is 503, cause query_canceled', async () => {
    await onPatientInsert('perform pg_sleep(5)');
    const { res, lines } = await createPatient('Slow Insert');
    assertUnavailable(res, lines, 'query_canceled', '57014');
    assert.equal(await patientsNamed('Slow Insert'), 0);
  });

  for (const [sqlstate, message, cause] of [
    ['53100', 'could not extend file "base/16384/16385": No space left on device', 'resources'],
    ['53200', 'out of memory', 'resources'],
    ['53300', 'sorry, too many clients already', 'resources'],
    ['08006', 'connection failure', 'connection'],
    ['57P01', 'terminating connection due to administrator command', 'server_shutdown'],
    ['25006', 'cannot execute INSERT in a read-only transaction', 'read_only'],
    ['58030', 'could not write to file: Input/output error', 'system_error'],
  ] as const) {
    it(`${message} (${sqlstate}) is 503, cause ${cause}`, async () => {
      await onPatientInsert(`raise exception '${message}' using errcode = '${sqlstate}'`);
      const name = `Fault ${sqlstate}`;
      const { res, lines } = await createPatient(name);
      assertUnavailable(res, lines, cause, sqlstate);
      assert.equal(await patientsNamed(name), 0);
    });
  }

  it('a query that is wrong is still a code bug: 500 internal_error and unhandled_error', async () => {
    await onPatientInsert(`raise exception 'division by zero' using errcode = '22012'`);
    const { res, lines } = await createPatient('Bug Insert');
    assert.equal(res.status, 500);
    assert.equal(res.body.error, 'internal_error');
    assert.ok(lines.some((line) => line.event === 'unhandled_error'));
    assert.ok(!lines.some((line) => line.event === 'dependency_unavailable'));
  });

  for (const [sqlstate, name] of [['40P01', 'deadlock'], ['40001', 'serialization failure']] as const) {
    it(`retries a transaction once after a ${name} (${sqlstate}), committing it once`, async () => {
      await onPatientInsert(`if currval('insert_attempts') = 1 then raise exception '${name}' using errcode = '${sqlstate}'; end if`);
      const fullName = `Retried ${sqlstate}`;
      const { res, lines } = await createPatient(fullName);
      assert.equal(res.status, 201);
      assert.equal(await attempts(), 2);
      assert.equal(await patientsNamed(fullName), 1);
      const retried = lines.filter((line) => line.event === 'transaction_retried');
      assert.equal(retried.length, 1);
      assert.equal(retried[0]!.sqlstate, sqlstate);
      const audited = (await sql(db.ownerUrl, `select count(*)::int as n from audit_trail where action = 'patient.create' and entity_id = $1`, [res.body.id])).rows[0].n;
      assert.equal(audited, 1, 'one audit row for the one change');
    });
  }

  it('answers 503, cause conflict, when the retry meets a conflict again', async () => {
    await onPatientInsert(`raise exception 'deadlock detected' using errcode = '40P01'`);
    const { res, lines } = await createPatient('Always Deadlocked');
    assertUnavailable(res, lines, 'conflict', '40P01');
    assert.equal(await attempts(), 2, 'tried twice, not more');
    assert.equal(await patientsNamed('Always Deadlocked'), 0);
  });
});

describe('a database outage met at the audit record\'s insert', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let api: TestApi;
  let staff: SignedIn;
  before(async function () {
    this.timeout(60_000);
    db = await migratedDatabase();
    api = await startTestApiOn(db, UNLIMITED);
    staff = await signIn(api, await createUser('staff', { databaseUrl: db.ownerUrl }));
  });
  after(async () => {
    await api?.close();
    await db?.drop();
  });

  /**
   * The write waits to insert its audit record (the owner holds the queue table); then its server
   * process is terminated, as a shutdown or failover terminates every backend: the statement that
   * fails is the one inserting the audit record.
   */
  async function terminatedAtTheRecord(path: string, body: Record<string, unknown>) {
    const holder = new pg.Client({ connectionString: db.ownerUrl });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table audit_queue in share mode');
      const pending = api.request('POST', path, { token: staff.accessToken, body });
      const waiting = await eventually(async () => {
        const { rows } = await sql(db.ownerUrl, `select pid from pg_stat_activity where usename = $1 and datname = $2 and wait_event = 'relation' and application_name <> 'dms-audit-sequencer'`, [APP_ROLE, db.name]);
        assert.equal(rows.length, 1);
        return rows[0].pid as number;
      });
      await sql(db.ownerUrl, 'select pg_terminate_backend($1)', [waiting]);
      const res = await pending;
      assert.equal(res.status, 503);
      const lines = api.logs.records().filter((r) => r.reqId === res.headers.get('x-request-id'));
      const events = lines.map((line) => line.event);
      assert.ok(!events.includes('audit_write_failed'), events.join(', '));
      const fault = lines.find((line) => line.event === 'dependency_unavailable');
      assert.ok(fault, events.join(', '));
      assert.equal(fault.cause, 'server_shutdown');
      assert.equal(fault.sqlstate, '57P01');
      return fault;
    } finally {
      await holder.end();
    }
  }

  it('is logged as the database being away (dependency_unavailable), not as audit_write_failed, in a transaction', async () => {
    const patient = await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: 'Visited', dateOfBirth: '1990-01-01' } });
    const fault = await terminatedAtTheRecord(`/patients/${patient.body.id}/visits`, { visitedAt: '2024-01-01T10:00:00Z', reason: 'Lock Waiter' });
    assert.equal(fault.during, 'audit_write');
    assert.equal(fault.action, 'visit.create');
    assert.equal((await sql(db.ownerUrl, `select count(*)::int as n from visits where reason = 'Lock Waiter'`)).rows[0].n, 0);
  });

  it('is logged the same for a patient created with its record in one statement, which leaves neither', async () => {
    await terminatedAtTheRecord('/patients', { fullName: 'Lock Waiter', dateOfBirth: '1990-01-01' });
    assert.equal((await sql(db.ownerUrl, `select count(*)::int as n from patients where full_name = 'Lock Waiter'`)).rows[0].n, 0);
  });
});
