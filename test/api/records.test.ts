import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { PutObjectCommandInput } from '@aws-sdk/client-s3';
import { listKeys, readObject } from '../../api/storage/s3.js';
import { sharedDatabase, type TestApi } from '../support/api.js';
import { auditRows, type SignedIn } from '../support/auth.js';
import { eventually, pgUrl, sql } from '../support/postgres.js';
import { sharedS3, startClinic } from '../support/s3.js';

const patientInput = (fullName = `Ada ${randomUUID().slice(0, 8)}`) => ({ fullName, dateOfBirth: '1985-04-12', sex: 'female', phone: '+44 20 7946 0000', email: 'ada@example.org', notes: 'allergic to penicillin' });

describe('clinical records (CONTRACT §2)', function () {
  this.timeout(60_000);
  let api: TestApi, staff: SignedIn, doctor: SignedIn, admin: SignedIn, auditor: SignedIn;
  before(async () => ({ api, staff, doctor, admin, auditor } = await startClinic()));
  after(() => api?.close());

  const as = (user: SignedIn) => ({
    get: (path: string) => api.request('GET', path, { token: user.accessToken }),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => api.request('POST', path, { token: user.accessToken, body, headers }),
    patch: (path: string, body: unknown) => api.request('PATCH', path, { token: user.accessToken, body }),
    delete: (path: string) => api.request('DELETE', path, { token: user.accessToken }),
  });

  async function newPatient(by: SignedIn = staff) {
    const res = await as(by).post('/patients', patientInput());
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; fullName: string };
  }

  async function newVisit(patientId: string, body: Record<string, unknown> = {}) {
    const res = await as(staff).post(`/patients/${patientId}/visits`, { visitedAt: '2024-05-01T09:30:00Z', reason: 'toothache', ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; patientId: string };
  }

  describe('patients', () => {
    it('creates, reads and changes a patient, answering the contract shape', async () => {
      const created = await as(staff).post('/patients', patientInput('Grace Hopper'));
      assert.equal(created.status, 201);
      assert.match(created.body.id, /^[0-9a-f-]{36}$/);
      assert.deepEqual(Object.keys(created.body).sort(), ['createdAt', 'dateOfBirth', 'email', 'fullName', 'id', 'notes', 'phone', 'sex', 'updatedAt']);
      assert.equal(created.body.dateOfBirth, '1985-04-12');
      const changed = await as(doctor).patch(`/patients/${created.body.id}`, { phone: null, notes: 'no known allergies' });
      assert.equal(changed.status, 200);
      assert.equal(changed.body.phone, null);
      assert.equal(changed.body.fullName, 'Grace Hopper');
      const read = await as(admin).get(`/patients/${created.body.id}`);
      assert.deepEqual(read.body, changed.body);
    });

    it('soft-deletes: the patient is 404 everywhere after, and the row is kept', async () => {
      const patient = await newPatient();
      const visit = await newVisit(patient.id);
      assert.equal((await as(staff).delete(`/patients/${patient.id}`)).status, 204);
      for (const res of [
        await as(staff).get(`/patients/${patient.id}`),
        await as(staff).patch(`/patients/${patient.id}`, { notes: 'x' }),
        await as(staff).delete(`/patients/${patient.id}`),
        await as(staff).get(`/visits/${visit.id}`),
        await as(staff).patch(`/visits/${visit.id}`, { reason: 'x' }),
      ]) {
        assert.equal(res.status, 404);
        assert.equal(res.body.error, 'not_found');
      }
      for (const res of [
        await as(staff).get(`/patients/${patient.id}/visits`),
        await as(staff).post(`/patients/${patient.id}/visits`, { visitedAt: '2024-05-01T09:30:00Z', reason: 'x' }),
        await as(doctor).post(`/patients/${patient.id}/visits/${visit.id}/xrays`, { contentType: 'image/png', sizeBytes: 10 }),
        await as(doctor).get(`/patients/${patient.id}/visits/${visit.id}/xrays`),
        await as(doctor).post(`/patients/${patient.id}/visits/${visit.id}/rx`, { items: [{ medicineId: randomUUID(), dose: '1', frequency: 'daily', durationDays: 1 }] }),
        await as(doctor).get(`/patients/${patient.id}/visits/${visit.id}/rx`),
      ]) {
        assert.equal(res.status, 404, JSON.stringify(res.body));
        assert.equal(res.body.error, 'patient_not_found');
      }
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select deleted_at from patients where id = $1', [patient.id]);
      assert.ok(rows[0].deleted_at, 'the record is kept, marked deleted');
      let listed: string[] = [];
      for (let cursor: string | null = null, first = true; first || cursor; first = false) {
        const page = await as(staff).get(`/patients?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
        listed = listed.concat(page.body.items.map((p: { id: string }) => p.id));
        cursor = page.body.nextCursor;
      }
      assert.ok(!listed.includes(patient.id));
    });

    it('answers 404 for an id that is not a UUID (or is no record), never 500', async () => {
      const probes: [SignedIn, string, string][] = [
        [staff, 'GET', '/patients/not-a-uuid'], [staff, 'GET', '/patients/1'], [staff, 'GET', "/patients/'%20or%201=1"],
        [staff, 'GET', `/patients/${randomUUID()}`], [staff, 'GET', '/visits/xyz'], [staff, 'GET', '/patients/xyz/visits'],
        [doctor, 'GET', '/xrays/xyz/download'], [doctor, 'POST', '/xrays/xyz/complete'], [doctor, 'GET', '/rx/xyz'], [doctor, 'GET', '/rx-presets/xyz'],
      ];
      for (const [user, method, path] of probes) {
        const res = await api.request(method, path, { token: user.accessToken });
        assert.equal(res.status, 404, `${method} ${path}`);
      }
    });
  });

  describe('validation: 422 validation_failed naming each bad field', () => {
    it('reports every bad field of a body at once', async () => {
      const res = await as(staff).post('/patients', { fullName: '', dateOfBirth: '2023-02-30', sex: 'robot', email: 'nope', shoeSize: 44 });
      assert.equal(res.status, 422);
      assert.equal(res.body.error, 'validation_failed');
      assert.deepEqual(Object.keys(res.body.fields).sort(), ['dateOfBirth', 'email', 'fullName', 'sex', 'shoeSize']);
    });

    it('refuses a date of birth in the future, an empty change and a body that is not an object', async () => {
      assert.deepEqual(Object.keys((await as(staff).post('/patients', { fullName: 'A', dateOfBirth: '2999-01-01' })).body.fields), ['dateOfBirth']);
      const patient = await newPatient();
      assert.deepEqual((await as(staff).patch(`/patients/${patient.id}`, {})).body.fields, { body: 'names no field to change' });
      assert.deepEqual(Object.keys((await as(staff).patch(`/patients/${patient.id}`, { fullName: null })).body.fields), ['fullName']);
      assert.equal((await as(staff).post('/patients', [1, 2])).status, 422);
    });

    it('names nested fields of prescription items', async () => {
      const patient = await newPatient();
      const visit = await newVisit(patient.id);
      const res = await as(doctor).post(`/patients/${patient.id}/visits/${visit.id}/rx`, { items: [{ medicineId: 'x', dose: '', frequency: 'daily', durationDays: 0 }] });
      assert.equal(res.status, 422);
      assert.deepEqual(Object.keys(res.body.fields).sort(), ['items[0].dose', 'items[0].durationDays', 'items[0].medicineId']);
    });
  });

  describe('pagination: {items, nextCursor}, limit 50 by default, capped at 200', () => {
    it('walks a list page by page without repeats or gaps', async () => {
      const patient = await newPatient();
      const made: string[] = [];
      for (let day = 1; day <= 5; day++) made.push((await newVisit(patient.id, { visitedAt: `2024-06-0${day}T10:00:00Z` })).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await as(staff).get(`/patients/${patient.id}/visits?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.equal(page.status, 200);
        assert.ok(page.body.items.length <= 2);
        seen.push(...page.body.items.map((v: { id: string }) => v.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, [...made].reverse(), 'latest visit first, each exactly once');
    });

    it('refuses a malformed limit or cursor with 422', async () => {
      for (const query of ['limit=0', 'limit=abc', 'limit=-1', 'cursor=%%%', `cursor=${Buffer.from('["x"]').toString('base64url')}`, 'limit=1&limit=2']) {
        const res = await as(staff).get(`/patients?${query}`);
        assert.equal(res.status, 422, query);
        assert.equal(res.body.error, 'validation_failed');
      }
      const capped = await as(staff).get('/patients?limit=100000');
      assert.equal(capped.status, 200);
      assert.ok(capped.body.items.length <= 200);
    });
  });

  describe('roles (CONTRACT §2)', () => {
    it('answers 401 without a token and 403 for a role that may not', async () => {
      assert.equal((await api.request('GET', '/patients')).status, 401);
      assert.equal((await as(auditor).get('/patients')).status, 403);
      assert.equal((await as(staff).post('/medicines', { name: 'Ibuprofen' })).status, 403);
      assert.equal((await as(staff).get('/rx-presets')).status, 403);
      assert.equal((await as(staff).get('/reports/visits?from=2024-01-01&to=2024-01-02')).status, 403);
      assert.equal((await as(staff).get('/admin/audit')).status, 403);
      const patient = await newPatient();
      const visit = await newVisit(patient.id);
      assert.equal((await as(staff).post(`/patients/${patient.id}/visits/${visit.id}/xrays`, { contentType: 'image/png', sizeBytes: 10 })).status, 403);
      assert.equal((await as(admin).post(`/patients/${patient.id}/visits/${visit.id}/rx`, { items: [] })).status, 403, 'only doctors write prescriptions');
    });
  });

  describe('visits and follow-ups', () => {
    it('keeps follow-up fields on the visit, checks their order, and audits follow-ups on their own', async () => {
      const patient = await newPatient();
      const visit = await newVisit(patient.id, { followUpAt: '2024-05-15T09:00:00Z', followUpNotes: 'check the filling' });
      const early = await as(staff).patch(`/visits/${visit.id}`, { followUpAt: '2024-04-01T09:00:00Z' });
      assert.equal(early.status, 422);
      assert.deepEqual(Object.keys(early.body.fields), ['followUpAt']);
      const moved = await as(doctor).patch(`/visits/${visit.id}`, { followUpAt: '2024-05-20T09:00:00+02:00' });
      assert.equal(moved.status, 200);
      assert.equal(new Date(moved.body.followUpAt).toISOString(), '2024-05-20T07:00:00.000Z');
      const rows = await auditRows('follow_up.update', visit.id);
      assert.equal(rows.length, 2, 'one when it was set at creation, one when it moved');
      assert.equal(rows[1]!.actor_id, doctor.id);
      assert.deepEqual(rows[1]!.details, { patientId: patient.id, fields: 'followUpAt', scheduled: true });
      assert.equal((await auditRows('visit.update', visit.id)).length, 0, 'only follow-up fields changed');
    });

    it('treats a visit of another patient as missing', async () => {
      const [mine, other] = [await newPatient(), await newPatient()];
      const visit = await newVisit(other.id);
      for (const res of [
        await as(doctor).post(`/patients/${mine.id}/visits/${visit.id}/xrays`, { contentType: 'image/png', sizeBytes: 10 }),
        await as(doctor).get(`/patients/${mine.id}/visits/${visit.id}/xrays`),
        await as(doctor).post(`/patients/${mine.id}/visits/${visit.id}/rx`, { items: [{ medicineId: randomUUID(), dose: '1', frequency: 'daily', durationDays: 1 }] }),
      ]) {
        assert.equal(res.status, 404, JSON.stringify(res.body));
        assert.equal(res.body.error, 'visit_not_found');
      }
    });
  });

  describe('medicines and Rx presets', () => {
    it('lists the formulary alphabetically and refuses a duplicate whatever its case', async () => {
      const stem = `Zz${randomUUID().slice(0, 6)}`;
      for (const name of [`${stem}-c`, `${stem}-a`, `${stem}-b`]) assert.equal((await as(admin).post('/medicines', { name, form: 'tablet', strength: '500 mg' })).status, 201);
      const duplicate = await as(admin).post('/medicines', { name: `${stem}-A`, form: 'Tablet', strength: '500 MG' });
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.body.error, 'medicine_exists');
      const names: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await as(staff).get(`/medicines?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        names.push(...page.body.items.map((m: { name: string }) => m.name));
        cursor = page.body.nextCursor;
      } while (cursor);
      const mine = names.filter((name) => name.startsWith(stem));
      assert.deepEqual(mine, [`${stem}-a`, `${stem}-b`, `${stem}-c`]);
    });

    it('creates, changes and deletes presets, checking each medicine exists', async () => {
      const medicine = (await as(admin).post('/medicines', { name: `Amox ${randomUUID().slice(0, 6)}`, strength: '500 mg' })).body;
      const item = { medicineId: medicine.id, dose: '1 capsule', frequency: '3 times a day', durationDays: 7 };
      const unknown = await as(doctor).post('/rx-presets', { name: 'bad', items: [item, { ...item, medicineId: randomUUID() }] });
      assert.equal(unknown.status, 422);
      assert.deepEqual(unknown.body.fields, { 'items[1].medicineId': 'is not a known medicine' });
      const name = `Infection ${randomUUID().slice(0, 6)}`;
      const created = await as(doctor).post('/rx-presets', { name, items: [item] });
      assert.equal(created.status, 201);
      assert.equal((await as(admin).post('/rx-presets', { name: name.toUpperCase(), items: [item] })).status, 409);
      const changed = await as(admin).patch(`/rx-presets/${created.body.id}`, { items: [{ ...item, durationDays: 5 }] });
      assert.equal(changed.body.items[0].durationDays, 5);
      assert.equal((await as(doctor).delete(`/rx-presets/${created.body.id}`)).status, 204);
      assert.equal((await as(doctor).get(`/rx-presets/${created.body.id}`)).status, 404);
      assert.deepEqual((await auditRows('rx_preset.update', created.body.id))[0]!.details, { fields: 'items' });
      assert.equal((await auditRows('rx_preset.delete', created.body.id)).length, 1);
    });
  });

  describe('prescriptions', () => {
    it("writes the prescription and stores its JSON document encrypted under the visit", async () => {
      const s3 = await sharedS3();
      const medicine = (await as(admin).post('/medicines', { name: `Paracetamol ${randomUUID().slice(0, 6)}`, form: 'tablet', strength: '500 mg' })).body;
      const patient = await newPatient();
      const visit = await newVisit(patient.id);
      const puts: PutObjectCommandInput[] = [];
      api.api.deps.storage.client.middlewareStack.add((next) => async (args) => {
        if ((args.input as PutObjectCommandInput).Key?.includes('/rx/')) puts.push(args.input as PutObjectCommandInput);
        return next(args);
      }, { step: 'initialize', name: 'captureRxPuts' });
      const res = await as(doctor).post(`/patients/${patient.id}/visits/${visit.id}/rx`, {
        items: [{ medicineId: medicine.id, dose: '2 tablets', frequency: 'every 6 hours', durationDays: 3 }], notes: 'after food',
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.prescriberId, doctor.id);
      assert.equal((await as(admin).get(`/rx/${res.body.id}`)).body.notes, 'after food');
      assert.equal((await as(staff).get(`/rx/${res.body.id}`)).status, 403);
      const listed = await as(doctor).get(`/patients/${patient.id}/visits/${visit.id}/rx`);
      assert.deepEqual(listed.body.items.map((rx: { id: string }) => rx.id), [res.body.id]);

      const storage = s3.storage();
      const key = `patients/${patient.id}/visits/${visit.id}/rx/${res.body.id}.json`;
      assert.deepEqual(await listKeys(storage, s3.s3.xrayBucket!, `patients/${patient.id}/visits/${visit.id}/rx/`), [key]);
      const stored = await readObject(storage, s3.s3.xrayBucket!, key);
      storage.client.destroy();
      assert.ok(stored, 'the document is under the visit');
      const document = JSON.parse(stored.toString('utf8'));
      assert.equal(document.id, res.body.id);
      assert.equal(document.items[0].name, medicine.name, 'the document names the medicine as it was when prescribed');
      assert.deepEqual(puts.map((put) => [put.Key, put.ServerSideEncryption]), [[key, 'AES256']]);
      api.api.deps.storage.client.middlewareStack.remove('captureRxPuts');
    });
  });

  describe('reports', () => {
    it('counts visits per day from the replica, zeros included, paginated by day', async () => {
      const db = await sharedDatabase();
      const year = 2030 + Math.floor(Math.random() * 60);
      const patient = await newPatient();
      await newVisit(patient.id, { visitedAt: `${year}-03-02T08:00:00Z` });
      await newVisit(patient.id, { visitedAt: `${year}-03-02T23:59:59Z` });
      await newVisit(patient.id, { visitedAt: `${year}-03-04T00:00:00Z` });
      const report = async (query: string) => as(doctor).get(`/reports/visits?${query}`);
      await eventually(async () => {
        const res = await report(`from=${year}-03-01&to=${year}-03-05`);
        assert.deepEqual(res.body.items, [
          { date: `${year}-03-01`, visits: 0 }, { date: `${year}-03-02`, visits: 2 }, { date: `${year}-03-03`, visits: 0 },
          { date: `${year}-03-04`, visits: 1 }, { date: `${year}-03-05`, visits: 0 },
        ]);
      });
      const first = await report(`from=${year}-03-01&to=${year}-03-05&limit=3`);
      assert.equal(first.body.items.length, 3);
      const second = await report(`from=${year}-03-01&to=${year}-03-05&limit=3&cursor=${first.body.nextCursor}`);
      assert.deepEqual(second.body.items.map((d: { date: string }) => d.date), [`${year}-03-04`, `${year}-03-05`]);
      assert.equal(second.body.nextCursor, null);

      // Replay paused on the replica: a new visit is on the primary only, and the report does not see it.
      const replicaAdmin = pgUrl(db.name, { port: db.replica.port });
      await sql(replicaAdmin, 'select pg_wal_replay_pause()');
      try {
        await newVisit(patient.id, { visitedAt: `${year}-03-05T12:00:00Z` });
        const stale = await report(`from=${year}-03-05&to=${year}-03-05`);
        assert.deepEqual(stale.body.items, [{ date: `${year}-03-05`, visits: 0 }]);
      } finally {
        await sql(replicaAdmin, 'select pg_wal_replay_resume()');
      }
      await eventually(async () => assert.deepEqual((await report(`from=${year}-03-05&to=${year}-03-05`)).body.items, [{ date: `${year}-03-05`, visits: 1 }]));
    });

    it('refuses ranges over 366 days, reversed ranges and missing bounds', async () => {
      for (const query of ['from=2024-01-01&to=2025-01-01', 'from=2024-02-01&to=2024-01-01', 'from=2024-01-01', 'from=2024-13-01&to=2024-12-31']) {
        const res = await as(admin).get(`/reports/visits?${query}`);
        assert.equal(res.status, 422, query);
      }
      assert.equal((await as(admin).get('/reports/visits?from=2024-01-01&to=2024-12-31')).status, 200, '2024 is a leap year: 366 days is allowed');
    });
  });
});
