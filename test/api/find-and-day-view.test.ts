import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOrm, type Orm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { patientsQuery } from '../../api/records/patients.js';
import { dayViewQuery, dayViewRange } from '../../api/records/visits.js';
import { patientSearch, type PatientSearch } from '../../api/records/search.js';
import { accepted } from '../../api/http/validation.js';
import { headObject } from '../../api/storage/s3.js';
import { allLogLines, LogCapture, migratedDatabase, startTestApiOn, type TestApi } from '../support/api.js';
import { auditRows, createUser, signIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { runCluster, sql } from '../support/postgres.js';
import { sharedS3, startClinic, XRAY_BUCKET } from '../support/s3.js';

/** A word no other test's patient has, so a search over the shared database finds only this file's. */
const marker = () => `Zq${randomBytes(4).toString('hex')}`;

describe('finding a patient: GET /patients?q= (name part, date of birth, phone suffix)', function () {
  this.timeout(60_000);
  let api: TestApi, staff: SignedIn, doctor: SignedIn, auditor: SignedIn;
  const family = marker();
  const ids: Record<string, string> = {};

  before(async () => {
    ({ api, staff, doctor, auditor } = await startClinic());
    const patients = {
      maria: { fullName: `María José ${family}ñez`, dateOfBirth: '1980-02-29', phone: '+34 (612) 345-678' },
      jose: { fullName: `José ${family}ñez Ortiz`, dateOfBirth: '1975-11-03', phone: '0612 999 000' },
      other: { fullName: `Ana ${marker()}`, dateOfBirth: '1980-02-28', phone: '0700 345 678' },
    };
    for (const [name, body] of Object.entries(patients)) {
      const res = await api.request('POST', '/patients', { token: staff.accessToken, body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids[name] = res.body.id;
    }
  });
  after(() => api?.close());

  const search = async (q: string, user = staff) => {
    const res = await api.request('GET', `/patients?q=${encodeURIComponent(q)}`, { token: user.accessToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body.items as { id: string }[]).map((p) => p.id);
  };

  it('finds by part of a name in any case, with or without accents, each word anywhere in the name', async () => {
    const both = [ids.jose, ids.maria]; // newest first
    assert.deepEqual(await search(`${family}ÑEZ`), both);
    assert.deepEqual(await search(`${family.toLowerCase()}nez`), both);
    assert.deepEqual(await search(`maria ${family}`), [ids.maria]);
    assert.deepEqual(await search(`${family} jose ortiz`), [ids.jose]);
    assert.deepEqual(await search(`${family}%`), [], 'a LIKE wildcard is a literal character');
  });

  it('finds by exact date of birth and by the last digits of a phone number, however they are written', async () => {
    assert.ok((await search('1980-02-29')).includes(ids.maria!));
    assert.ok(!(await search('1980-02-29')).includes(ids.other!));
    const bySuffix = await search('345-678');
    assert.ok(bySuffix.includes(ids.maria!) && bySuffix.includes(ids.other!) && !bySuffix.includes(ids.jose!));
    assert.ok((await search('(612) 345678')).includes(ids.maria!));
    assert.ok(!(await search('612 345678')).includes(ids.other!), 'the whole suffix must match');
  });

  it('pages search results with the list cursor, and never lists a soft-deleted patient', async () => {
    const first = await api.request('GET', `/patients?q=${family}&limit=1`, { token: staff.accessToken });
    assert.deepEqual(first.body.items.map((p: { id: string }) => p.id), [ids.jose]);
    const second = await api.request('GET', `/patients?q=${family}&limit=1&cursor=${first.body.nextCursor}`, { token: staff.accessToken });
    assert.deepEqual(second.body.items.map((p: { id: string }) => p.id), [ids.maria]);
    assert.equal(second.body.nextCursor, null);
    const gone = await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: `Gone ${family}`, dateOfBirth: '1990-01-01' } });
    await api.request('DELETE', `/patients/${gone.body.id}`, { token: staff.accessToken });
    assert.ok(!(await search(`gone ${family}`)).length);
    assert.ok((await search(family, doctor)).length === 2, 'doctors search too');
  });

  it('answers 422 with fields for a search it cannot run, an unknown parameter or a repeated one, and never repeats the search string', async () => {
    const cases: [string, string][] = [
      ['q=Zq', 'q'], ['q=12', 'q'], ['q=1980-02-30', 'q'], ['q=', 'q'], [`q=${'a'.repeat(201)}`, 'q'],
      ['q=abc&q=def', 'q'], ['name=Maria', 'name'], ['q=Maria&sort=name', 'sort'],
    ];
    for (const [query, field] of cases) {
      const res = await api.request('GET', `/patients?${query}`, { token: staff.accessToken });
      assert.equal(res.status, 422, query);
      assert.equal(res.body.error, 'validation_failed');
      assert.ok(field in res.body.fields, `${query}: ${JSON.stringify(res.body.fields)}`);
      assert.ok(!JSON.stringify(res.body).includes('Maria') && !JSON.stringify(res.body).includes('1980-02-30'), 'the body repeats the search');
    }
  });

  it('is for the care team only', async () => {
    const res = await api.request('GET', `/patients?q=${family}`, { token: auditor.accessToken });
    assert.equal(res.status, 403);
  });

  it('writes the search string into no log line', () => {
    const searched = [family, family.toLowerCase(), '345-678', '345678', '1980-02-29', '1980-02-30'];
    // The text a line carries, not its numbers: a durationMs of 14.345678 is not the phone search.
    const texts = (value: unknown): string[] => typeof value === 'string' ? [value]
      : value && typeof value === 'object' ? Object.entries(value).flatMap(([key, inner]) => [key, ...texts(inner)]) : [];
    const leaks = allLogLines.filter((line) => texts(JSON.parse(line)).some((text) => searched.some((q) => text.includes(q))));
    assert.ok(api.logs.records('http_access').some((r) => r.path === '/patients'), 'the searches were logged as requests');
    assert.deepEqual(leaks, []);
  });
});

describe('patient search and the day view stay on their indexes at 100 000 patients (EXPLAIN)', function () {
  this.timeout(180_000);
  let db: Awaited<ReturnType<typeof migratedDatabase>>, orm: Orm;

  before(async () => {
    db = await migratedDatabase();
    // 100 000 patients with varied names, birth dates and phone numbers, then fresh statistics.
    await sql(db.ownerUrl, `
      insert into patients (id, full_name, date_of_birth, sex, phone, email, notes, created_at, updated_at, deleted_at)
      select gen_random_uuid(),
             (array['María','José','Zoë','Łukasz','Anne','Müller','Jean','Ngozi'])[1 + n % 8] || ' ' || md5(n::text),
             date '1930-01-01' + (n % 30000),
             null,
             '+1 (' || lpad((n % 1000)::text, 3, '0') || ') ' || lpad((n * 7919 % 10000000)::text, 7, '0'),
             null, null,
             now() - n * interval '1 minute', now(),
             case when n % 50 = 0 then now() else null end
        from generate_series(1, 100000) as n`);
    // Three visits each, five minutes apart across three years; every third with a follow-up a week later.
    await sql(db.ownerUrl, `
      insert into visits (id, patient_id, visited_at, reason, notes, follow_up_at, follow_up_notes, created_by, created_at, updated_at)
      select gen_random_uuid(), p.id, v.at, 'check-up', null, case when p.n % 3 = k then v.at + interval '7 days' end, null, null, now(), now()
        from (select id, row_number() over (order by created_at) as n from patients) as p
       cross join generate_series(0, 2) as k
       cross join lateral (select timestamptz '2021-01-01 00:00:00Z' + ((p.n * 3 + k) * interval '5 minutes') as at) as v`);
    await sql(db.ownerUrl, 'analyze patients');
    await sql(db.ownerUrl, 'analyze visits');
    orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [], log: createLogger({ level: 'error', env: 'test', stream: new LogCapture() }) });
  });
  after(async () => {
    await orm?.close();
    await db?.drop();
  });

  /** The plan PostgreSQL picks for a query (with its bound parameters, as the route sends them), as the API's role. */
  async function explain(query: string, parameters: readonly unknown[] = []): Promise<string> {
    // SHOW_PLANS=1 prints each plan; SHOW_PLANS=analyze runs it too (EXPLAIN ANALYZE), with its timings.
    const { rows } = await sql(db.appUrl, `explain ${process.env.SHOW_PLANS === 'analyze' ? 'analyze ' : ''}${query}`, [...parameters]);
    if (process.env.SHOW_PLANS) console.log(rows.map((row) => row['QUERY PLAN']).join('\n'));
    return rows.map((row) => row['QUERY PLAN'] as string).join('\n');
  }

  /** The plan of exactly the query `GET /patients?q=` runs. */
  async function plan(q: string): Promise<string> {
    const search = accepted(patientSearch(), q) as PatientSearch;
    assert.ok(search, `${q} is a search`);
    const compiled = patientsQuery(orm.em.fork(), search, { limit: 50 }).compile();
    return explain(compiled.sql, compiled.parameters);
  }

  /** The plan of exactly the query `GET /visits?…` runs. */
  const dayPlan = (filters: Parameters<typeof dayViewRange>[0]) => explain(dayViewQuery(orm.em.fork(), dayViewRange(filters), { limit: 50 }).getFormattedQuery());

  it('finds part of a name through the trigram index', async () => {
    const text = await plan('3f2a9');
    assert.match(text, /patients_name_search/, text);
    assert.doesNotMatch(text, /Seq Scan/, text);
  });

  it('finds a date of birth through its index', async () => {
    const text = await plan('1950-06-15');
    assert.match(text, /patients_date_of_birth/, text);
    assert.doesNotMatch(text, /Seq Scan/, text);
  });

  it('finds a phone suffix through the reversed-digits index', async () => {
    const text = await plan('5678');
    assert.match(text, /patients_phone_suffix/, text);
    assert.doesNotMatch(text, /Seq Scan/, text);
  });

  it('sends the search string as a bound parameter: PostgreSQL\'s slow-statement log never prints it', async () => {
    // As the stacks' parameter group (infra/database.ts) logs, with every statement slow enough.
    await sql(db.ownerUrl, `alter database ${db.name} set log_min_duration_statement = 0`);
    await sql(db.ownerUrl, `alter database ${db.name} set log_parameter_max_length = 0`);
    const api = await startTestApiOn(db, UNLIMITED);
    try {
      const staff = await signIn(api, await createUser('staff', { databaseUrl: db.ownerUrl }));
      const searched = [`Qzx${randomBytes(3).toString('hex')}`, '1961-04-12', '987654'];
      for (const q of searched) assert.equal((await api.request('GET', `/patients?q=${q}`, { token: staff.accessToken })).status, 200);
      const log = readFileSync(join((await runCluster()).dataDir, 'server.log'), 'utf8');
      assert.match(log, /execute <unnamed>: .*dms_fold\(full_name\) like '%' \|\| dms_fold\(\$1\)/, 'the searches were logged, with a placeholder');
      assert.deepEqual(searched.filter((q) => log.toLowerCase().includes(q.toLowerCase())), []);
    } finally {
      await api.close();
    }
  });

  it('lists a day of visits and the follow-ups due on a day through their indexes', async () => {
    const visits = await dayPlan({ from: new Date('2022-03-01T00:00:00+01:00'), to: new Date('2022-03-02T00:00:00+01:00') });
    assert.match(visits, /visits_visited_at_id/, visits);
    assert.doesNotMatch(visits, /Seq Scan/, visits);
    const followUps = await dayPlan({ followUpDue: '2022-03-01' });
    assert.match(followUps, /visits_follow_up_at_id/, followUps);
    assert.doesNotMatch(followUps, /Seq Scan/, followUps);
  });

  it('finds the same patients the plan promises (accents and case folded)', async () => {
    const found = await patientsQuery(orm.em.fork(), accepted(patientSearch(), 'LUKASZ') as PatientSearch, { limit: 5 }).execute();
    assert.equal(found.length, 6);
    assert.ok(found.every((p) => p.full_name.startsWith('Łukasz')));
  });
});

describe('the day view: GET /visits?from&to and ?followUpDue=', function () {
  this.timeout(60_000);
  let api: TestApi, staff: SignedIn, auditor: SignedIn;
  // A day of its own far in the future, so no other test's visits fall in it.
  const day = new Date(Date.UTC(2100 + randomBytes(1)[0]! % 90, randomBytes(1)[0]! % 12, 1 + randomBytes(1)[0]! % 28)).toISOString().slice(0, 10);
  const at = (time: string) => `${day}T${time}`;
  const visits: Record<string, string> = {};
  let keptPatient: string;

  before(async () => {
    ({ api, staff, auditor } = await startClinic());
    const patient = async () => (await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: `Day ${marker()}`, dateOfBirth: '1970-01-01' } })).body.id as string;
    keptPatient = await patient();
    const deleted = await patient();
    const add = async (name: string, pid: string, visitedAt: string, followUpAt?: string) => {
      const res = await api.request('POST', `/patients/${pid}/visits`, { token: staff.accessToken, body: { visitedAt, reason: 'check-up', ...(followUpAt ? { followUpAt } : {}) } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      visits[name] = res.body.id;
    };
    await add('late', keptPatient, at('16:00:00Z'));
    await add('early', keptPatient, at('08:00:00Z'), `${day}T23:30:00Z`);
    await add('noon', keptPatient, at('12:00:00Z'));
    await add('eveningBefore', keptPatient, at('00:00:00+02:00'), `${day}T00:00:00Z`);
    await add('ofDeleted', deleted, at('10:00:00Z'), `${day}T10:00:00Z`);
    await api.request('DELETE', `/patients/${deleted}`, { token: staff.accessToken });
  });
  after(() => api?.close());

  const list = async (query: string) => {
    const res = await api.request('GET', `/visits?${query}`, { token: staff.accessToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as { items: { id: string }[]; nextCursor: string | null };
  };
  const enc = encodeURIComponent;

  it('lists the visits of a range across patients, earliest first, without a deleted patient\'s', async () => {
    const page = await list(`from=${enc(at('00:00:00Z'))}&to=${enc(`${day}T23:59:59.999Z`)}`);
    assert.deepEqual(page.items.map((v) => v.id), [visits.early, visits.noon, visits.late]);
    const local = await list(`from=${enc(at('00:00:00+02:00'))}&to=${enc(at('12:00:00Z'))}`);
    assert.deepEqual(local.items.map((v) => v.id), [visits.eveningBefore, visits.early], 'from inclusive, to exclusive, offsets honoured');
  });

  it('pages with the opaque cursor', async () => {
    const range = `from=${enc(at('00:00:00Z'))}&to=${enc(`${day}T23:59:59Z`)}`;
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await list(`${range}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.items.map((v) => v.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, [visits.early, visits.noon, visits.late]);
  });

  it('lists the follow-ups due on a (UTC) day', async () => {
    const page = await list(`followUpDue=${day}`);
    assert.deepEqual(page.items.map((v) => v.id), [visits.eveningBefore, visits.early]);
  });

  it('answers 422 for a range it cannot list', async () => {
    const cases: [string, string][] = [
      ['', 'from'], [`from=${enc(at('08:00:00Z'))}`, 'to'], [`from=${enc(at('08:00:00Z'))}&to=${enc(at('08:00:00Z'))}`, 'to'],
      [`from=${day}&to=${day}`, 'from'], [`followUpDue=${day}&from=${enc(at('08:00:00Z'))}`, 'from'], ['followUpDue=2024-02-30', 'followUpDue'],
      [`followUpDue=${day}&patientId=${keptPatient}`, 'patientId'], [`followUpDue=${day}&cursor=abc`, 'cursor'],
    ];
    for (const [query, field] of cases) {
      const res = await api.request('GET', `/visits?${query}`, { token: staff.accessToken });
      assert.equal(res.status, 422, query);
      assert.ok(field in res.body.fields, `${query}: ${JSON.stringify(res.body.fields)}`);
    }
  });

  it('is for the care team only', async () => {
    assert.equal((await api.request('GET', `/visits?followUpDue=${day}`, { token: auditor.accessToken })).status, 403);
  });
});

describe('the formulary: GET /medicines/:id and GET /medicines?q=', function () {
  this.timeout(60_000);
  let api: TestApi, staff: SignedIn, admin: SignedIn, auditor: SignedIn;
  const brand = marker();
  const ids: string[] = [];

  before(async () => {
    ({ api, staff, admin, auditor } = await startClinic());
    for (const name of [`Paracétamol ${brand}`, `Ibuprofen ${brand}`, `Acide ${brand} acétylsalicylique`]) {
      const res = await api.request('POST', '/medicines', { token: admin.accessToken, body: { name, form: 'tablet', strength: '500 mg' } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.id);
    }
  });
  after(() => api?.close());

  it('reads one medicine by id, 404 for an unknown or malformed id', async () => {
    const res = await api.request('GET', `/medicines/${ids[0]}`, { token: staff.accessToken });
    assert.equal(res.status, 200);
    assert.equal(res.body.name, `Paracétamol ${brand}`);
    assert.equal((await api.request('GET', '/medicines/7d4c8a2e-3f1b-4c5d-9e6f-0a1b2c3d4e5f', { token: staff.accessToken })).status, 404);
    assert.equal((await api.request('GET', '/medicines/not-an-id', { token: staff.accessToken })).status, 404);
    assert.equal((await api.request('GET', `/medicines/${ids[0]}`, { token: auditor.accessToken })).status, 403);
  });

  it('finds medicines by part of the name, any case or accents, alphabetically', async () => {
    const find = async (q: string) => (await api.request('GET', `/medicines?q=${encodeURIComponent(q)}`, { token: staff.accessToken })).body.items.map((m: { id: string }) => m.id);
    assert.deepEqual(await find(brand.toUpperCase()), [ids[2], ids[1], ids[0]]);
    assert.deepEqual(await find(`paracetamol ${brand}`), [ids[0]]);
    assert.deepEqual(await find(`${brand} ACÉTYL`), [ids[2]]);
    assert.equal((await api.request('GET', '/medicines?name=x', { token: staff.accessToken })).status, 422);
  });
});

describe('cancelling a pending X-ray: DELETE /xrays/:id', function () {
  this.timeout(60_000);
  let api: TestApi, staff: SignedIn, doctor: SignedIn, admin: SignedIn;
  let where: { patientId: string; visitId: string };

  before(async () => {
    ({ api, staff, doctor, admin } = await startClinic());
    const patient = await api.request('POST', '/patients', { token: staff.accessToken, body: { fullName: `Xray ${marker()}`, dateOfBirth: '1960-07-25' } });
    const visit = await api.request('POST', `/patients/${patient.body.id}/visits`, { token: staff.accessToken, body: { visitedAt: '2024-05-01T09:30:00Z', reason: 'fracture' } });
    where = { patientId: patient.body.id, visitId: visit.body.id };
  });
  after(() => api?.close());

  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(56)]);
  async function announce(): Promise<{ id: string; upload: { url: string; headers: Record<string, string> } }> {
    const res = await api.request('POST', `/patients/${where.patientId}/visits/${where.visitId}/xrays`, { token: doctor.accessToken, body: { contentType: 'image/png', sizeBytes: png.length } });
    assert.equal(res.status, 201);
    return { id: res.body.xray.id, upload: res.body.upload };
  }
  const put = async (upload: { url: string; headers: Record<string, string> }) => {
    const res = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: png });
    assert.equal(res.status, 200);
  };
  const objectOf = async (id: string) => {
    const { storage } = await sharedS3();
    return headObject(storage(), XRAY_BUCKET, `patients/${where.patientId}/visits/${where.visitId}/xrays/${id}`);
  };
  const statusOf = async (id: string) => {
    const res = await api.request('GET', `/patients/${where.patientId}/visits/${where.visitId}/xrays`, { token: doctor.accessToken });
    return (res.body.items as { id: string; status: string }[]).find((x) => x.id === id)?.status;
  };

  it('cancels a pending X-ray, deletes what was uploaded, and audits it', async () => {
    const { id, upload } = await announce();
    await put(upload);
    assert.ok(await objectOf(id));
    const res = await api.request('DELETE', `/xrays/${id}`, { token: admin.accessToken });
    assert.equal(res.status, 204);
    assert.equal(await objectOf(id), undefined, 'the object is gone');
    assert.equal(await statusOf(id), 'cancelled');
    const [row] = await auditRows('xray.cancel', id);
    assert.equal(row?.actor_id, admin.id);
    assert.deepEqual(row?.details, { patientId: where.patientId, visitId: where.visitId, objectDeleted: true });
    const complete = await api.request('POST', `/xrays/${id}/complete`, { token: doctor.accessToken });
    assert.equal(complete.status, 409);
    assert.equal(complete.body.error, 'xray_cancelled');
  });

  it('cancels one with nothing uploaded; again is a no-op unless something was uploaded since', async () => {
    const { id, upload } = await announce();
    assert.equal((await api.request('DELETE', `/xrays/${id}`, { token: doctor.accessToken })).status, 204);
    assert.equal((await api.request('DELETE', `/xrays/${id}`, { token: doctor.accessToken })).status, 204);
    assert.equal((await auditRows('xray.cancel', id)).length, 1, 'nothing changed the second time');
    await put(upload); // the URL outlives the cancel
    assert.equal((await api.request('DELETE', `/xrays/${id}`, { token: doctor.accessToken })).status, 204);
    assert.equal(await objectOf(id), undefined);
    assert.deepEqual((await auditRows('xray.cancel', id)).map((r) => (r.details as { objectDeleted: boolean }).objectDeleted), [false, true]);
  });

  it('refuses an uploaded X-ray (409), staff (403) and an unknown one (404)', async () => {
    const { id, upload } = await announce();
    await put(upload);
    assert.equal((await api.request('POST', `/xrays/${id}/complete`, { token: doctor.accessToken })).status, 200);
    const res = await api.request('DELETE', `/xrays/${id}`, { token: doctor.accessToken });
    assert.equal(res.status, 409);
    assert.equal(res.body.error, 'xray_uploaded');
    assert.ok(await objectOf(id), 'the record\'s file is kept');
    const pending = await announce();
    assert.equal((await api.request('DELETE', `/xrays/${pending.id}`, { token: staff.accessToken })).status, 403);
    assert.equal((await api.request('DELETE', '/xrays/7d4c8a2e-3f1b-4c5d-9e6f-0a1b2c3d4e5f', { token: doctor.accessToken })).status, 404);
  });
});
