import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { migratedDatabase, startTestApiOn, type TestApi } from '../support/api.js';
import { createUser, signIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { APP_ROLE, createDatabase, eventually, sql } from '../support/postgres.js';

const HOLD_KEY = 2004;

/** POST /patients and POST /patients/:pid/visits as a client retrying with an `Idempotency-Key` (IETF httpapi draft). */
describe('Idempotency-Key on the routes that create', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let api: TestApi;
  let staff: SignedIn;
  let doctor: SignedIn;
  before(async function () {
    this.timeout(60_000);
    db = await migratedDatabase();
    api = await startTestApiOn(db, UNLIMITED);
    staff = await signIn(api, await createUser('staff', { databaseUrl: db.ownerUrl }));
    doctor = await signIn(api, await createUser('doctor', { databaseUrl: db.ownerUrl }));
  });
  after(async () => {
    await api?.close();
    await db?.drop();
  });

  const patient = (fullName: string) => ({ fullName, dateOfBirth: '1980-02-03' });
  const createPatient = (who: SignedIn, body: unknown, key?: string) =>
    api.request('POST', '/patients', { token: who.accessToken, body, headers: key === undefined ? {} : { 'idempotency-key': key } });
  const count = async (query: string, values: unknown[]) => (await sql(db.ownerUrl, query, values)).rows[0].n as number;
  const patientsNamed = (fullName: string) => count('select count(*)::int as n from patients where full_name = $1', [fullName]);
  const auditRowsOf = (id: string) => count(`select count(*)::int as n from audit_trail where entity_id = $1`, [id]);

  it('answers a retry with the same key and body with the first response, creating nothing more', async () => {
    const key = `"${randomUUID()}"`;
    const first = await createPatient(staff, patient('Ida Once'), key);
    assert.equal(first.status, 201);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const again = await createPatient(staff, { dateOfBirth: '1980-02-03', fullName: 'Ida Once' }, key);
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body, 'the first response, whatever the order of the JSON keys');
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(await patientsNamed('Ida Once'), 1);
    assert.equal(await auditRowsOf(first.body.id), 1, 'one change, one audit row');
  });

  it('refuses the same key with another body: 422 idempotency_key_reused', async () => {
    const key = randomUUID();
    assert.equal((await createPatient(staff, patient('Ida First'), key)).status, 201);
    const other = await createPatient(staff, patient('Ida Second'), key);
    assert.equal(other.status, 422);
    assert.equal(other.body.error, 'idempotency_key_reused');
    assert.deepEqual(Object.keys(other.body).sort(), ['error', 'message', 'requestId']);
    assert.equal(await patientsNamed('Ida Second'), 0);
  });

  it('keeps keys per user: another user\'s same key is a request of its own', async () => {
    const key = randomUUID();
    const mine = await createPatient(staff, patient('Ida Shared Key'), key);
    const theirs = await createPatient(doctor, patient('Ida Shared Key'), key);
    assert.equal(theirs.status, 201);
    assert.notEqual(theirs.body.id, mine.body.id);
    assert.equal(theirs.headers.get('idempotent-replayed'), null);
    assert.equal(await patientsNamed('Ida Shared Key'), 2);
  });

  it('keeps no error: a request that failed runs again with its key', async () => {
    const key = randomUUID();
    const invalid = await createPatient(staff, { fullName: 'Ida Later' }, key);
    assert.equal(invalid.status, 422);
    assert.equal(invalid.body.error, 'validation_failed');
    const valid = await createPatient(staff, patient('Ida Later'), key);
    assert.equal(valid.status, 201);
    assert.equal(await patientsNamed('Ida Later'), 1);
  });

  it('answers the same key again for 24 hours only', async () => {
    const key = randomUUID();
    const first = await createPatient(staff, patient('Ida Yesterday'), key);
    await sql(db.ownerUrl, `update idempotency_keys set created_at = now() - interval '25 hours' where key = $1`, [key]);
    const later = await createPatient(staff, patient('Ida Today'), key);
    assert.equal(later.status, 201);
    assert.notEqual(later.body.id, first.body.id);
    assert.equal(later.headers.get('idempotent-replayed'), null);
  });

  it('lets two requests with one key race: one change, the same answer to both', async () => {
    const key = randomUUID();
    const [a, b] = await Promise.all([createPatient(staff, patient('Ida Race'), key), createPatient(staff, patient('Ida Race'), key)]);
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    assert.equal(a.body.id, b.body.id);
    assert.equal(await patientsNamed('Ida Race'), 1);
  });

  it('refuses a malformed key with 422 naming the header', async () => {
    for (const key of ['has space', 'x'.repeat(256), '"unbalanced']) {
      const res = await createPatient(staff, patient('Ida Malformed'), key);
      assert.equal(res.status, 422, key);
      assert.deepEqual(Object.keys(res.body.fields), ['Idempotency-Key']);
    }
    assert.equal(await patientsNamed('Ida Malformed'), 0);
  });

  it('creates a visit once when the answer to the first try was lost after its change committed', async () => {
    const { id: pid } = (await createPatient(doctor, patient('Ida Visited'))).body;
    await sql(db.ownerUrl, `create function hold_visit_insert() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock_shared(${HOLD_KEY}); return new; end $$;
      create trigger hold_visit_insert before insert on visits for each row execute function hold_visit_insert()`);
    const holder = new pg.Client({ connectionString: db.ownerUrl });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock($1)', [HOLD_KEY]);
      const key = randomUUID();
      const visit = JSON.stringify({ visitedAt: '2026-11-02T09:30:00+01:00', reason: 'check-up' });
      // The first try: sent, then the connection is cut before any answer (as at the end of a drain).
      const lost = new Promise<void>((resolve) => {
        const url = new URL(api.url);
        const req = httpRequest({ host: url.hostname, port: url.port, method: 'POST', path: `/patients/${pid}/visits`,
          headers: { authorization: `Bearer ${doctor.accessToken}`, 'content-type': 'application/json', 'idempotency-key': key } });
        req.on('error', () => resolve());
        req.on('close', () => resolve());
        req.end(visit);
        void eventually(async () => {
          const waiting = await count(`select count(*)::int as n from pg_stat_activity where usename = $1 and datname = $2 and wait_event = 'advisory'`, [APP_ROLE, db.name]);
          assert.equal(waiting, 1);
        }).then(() => req.destroy());
      });
      await lost;
      await holder.query('select pg_advisory_unlock($1)', [HOLD_KEY]);
      await eventually(async () => assert.equal(await count('select count(*)::int as n from visits where patient_id = $1', [pid]), 1));
      const retry = await api.request('POST', `/patients/${pid}/visits`, { token: doctor.accessToken, body: visit, headers: { 'content-type': 'application/json', 'idempotency-key': key } });
      assert.equal(retry.status, 201);
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
      assert.equal(await count('select count(*)::int as n from visits where patient_id = $1', [pid]), 1, 'one visit, not two');
    } finally {
      await holder.end();
      await sql(db.ownerUrl, 'drop trigger hold_visit_insert on visits; drop function hold_visit_insert()');
    }
  });
});
