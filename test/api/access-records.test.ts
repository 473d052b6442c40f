import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import { createApp } from '../../api/app.js';
import { DISCLOSES } from '../../api/audit/access.js';
import { sharedDatabase, type TestApi } from '../support/api.js';
import { rememberSecret, type SignedIn } from '../support/auth.js';
import { sql } from '../support/postgres.js';
import { sendPresigned, startClinic } from '../support/s3.js';

interface Operation {
  'x-roles'?: string[];
  'x-phi'?: string;
  parameters?: { name: string; in: string; required?: boolean; schema?: { format?: string } }[];
  responses: Record<string, unknown>;
}

/** The schemas whose instances carry a patient's data. */
const PHI_SCHEMAS = ['Patient', 'Visit', 'Xray', 'XrayUpload', 'Prescription', 'PresignedDownload', 'VisitReport'];

/** The access records (`phi.access`) a request left, read as the owner from the whole trail (chained or queued). */
async function accessRecordsOf(requestId: string): Promise<{ actor_id: string; actor_role: string; outcome: string; entity_id: string | null; details: Record<string, unknown> }[]> {
  const { rows } = await sql((await sharedDatabase()).ownerUrl, `select actor_id, actor_role, outcome, entity_id, details from audit_trail where action = 'phi.access' and request_id = $1`, [requestId]);
  return rows;
}

describe('access records: every response that discloses PHI is on the trail (issue 16)', function () {
  this.timeout(120_000);
  let api: TestApi, staff: SignedIn, doctor: SignedIn, admin: SignedIn;
  let document: { paths: Record<string, Record<string, Operation>> };
  const secretName = `Phi Patient ${randomUUID()}`;
  const ids: Record<'patient' | 'visit' | 'xray' | 'rx', string> = { patient: '', visit: '', xray: '', rx: '' };

  const call = (user: SignedIn, method: string, path: string, { body, requestId }: { body?: unknown; requestId?: string } = {}) =>
    api.request(method, path, { token: user.accessToken, body, headers: requestId ? { 'x-request-id': requestId } : {} });

  before(async () => {
    ({ api, staff, doctor, admin } = await startClinic());
    document = (await api.request('GET', '/openapi.json')).body;
    ids.patient = (await call(staff, 'POST', '/patients', { body: { fullName: secretName, dateOfBirth: '1971-02-03', notes: 'phi notes' } })).body.id;
    ids.visit = (await call(doctor, 'POST', `/patients/${ids.patient}/visits`, { body: { visitedAt: new Date().toISOString(), reason: 'phi reason' } })).body.id;
    const announced = await call(doctor, 'POST', `/patients/${ids.patient}/visits/${ids.visit}/xrays`, { body: { contentType: 'image/png', sizeBytes: 16 } });
    rememberSecret(new URL(announced.body.upload.url).searchParams.get('X-Amz-Signature')!);
    const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(8)]);
    assert.equal((await sendPresigned('PUT', announced.body.upload.url, announced.body.upload.headers, bytes)).status, 200);
    ids.xray = announced.body.xray.id;
    assert.equal((await call(doctor, 'POST', `/xrays/${ids.xray}/complete`)).status, 200);
    const medicine = (await call(admin, 'POST', '/medicines', { body: { name: `Med ${randomUUID()}` } })).body;
    ids.rx = (await call(doctor, 'POST', `/patients/${ids.patient}/visits/${ids.visit}/rx`, { body: { items: [{ medicineId: medicine.id, dose: '1', frequency: 'daily', durationDays: 2 }] } })).body.id;
  });
  after(() => api?.close());

  const phiOperations = () => Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).filter(([, op]) => op['x-phi']).map(([method, op]) => ({ method, path, op })));

  /** A real URL for an operation of the document: ids of the records made above, required query parameters filled in. */
  function urlOf(path: string, op: Operation): string {
    const first = path.split('/')[1];
    const byId: Record<string, string> = { patients: ids.patient, visits: ids.visit, xrays: ids.xray, rx: ids.rx };
    const filled = path.replace('{pid}', ids.patient).replace('{vid}', ids.visit).replace('{id}', byId[first!] ?? '');
    // A window around now for the day view (from/to, neither required alone: followUpDue is the other form).
    const valueOf = (p: { name: string; schema?: { format?: string } }) => {
      const at = p.name === 'from' ? Date.now() - 86_400_000 : p.name === 'to' ? Date.now() + 86_400_000 : Date.now();
      return p.schema?.format === 'date' ? new Date(at).toISOString().slice(0, 10) : new Date(at).toISOString();
    };
    const query = (op.parameters ?? []).filter((p) => p.in === 'query' && (p.required || ['from', 'to'].includes(p.name)))
      .map((p) => `${p.name}=${encodeURIComponent(valueOf(p))}`);
    return query.length ? `${filled}?${query.join('&')}` : filled;
  }

  const userFor = (op: Operation) => [doctor, staff, admin].find((user) => op['x-roles']!.includes(user.role))!;

  it('walks every x-phi route of the OpenAPI document: each answer leaves one record naming who saw which patient, and what', async () => {
    const operations = phiOperations();
    assert.ok(operations.length >= 9, `found ${operations.length} PHI routes`);
    for (const { method, path, op } of operations) {
      const requestId = `phi-walk-${randomUUID()}`;
      const user = userFor(op);
      const res = await call(user, method.toUpperCase(), urlOf(path, op), { requestId });
      assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(res.body)}`);
      const records = await accessRecordsOf(requestId);
      assert.equal(records.length, 1, `${method} ${path} left ${records.length} access records`);
      const [record] = records;
      assert.equal(record!.outcome, 'success');
      assert.equal(record!.actor_id, user.id);
      assert.equal(record!.actor_role, user.role);
      assert.equal(record!.details.kind, op['x-phi'], path);
      assert.equal(record!.details.route, path.replace(/\{(\w+)\}/g, ':$1'));
      assert.equal(record!.details.status, 200);
      assert.match(String(record!.details.sessionId), /^[0-9a-f-]{36}$/);
      if (op['x-phi'] !== 'report') assert.ok((record!.details.patients as string[]).includes(ids.patient), `${method} ${path} names the patient it disclosed`);
      assert.doesNotMatch(JSON.stringify(record), new RegExp(`${secretName}|1971-02-03|phi notes|phi reason|X-Amz-Signature`), 'ids only, never PHI or a URL');
    }
  });

  it('names every patient on a list page', async () => {
    for (let i = 0; i < 3; i++) await call(staff, 'POST', '/patients', { body: { fullName: `Listed ${i}`, dateOfBirth: '1980-01-01' } });
    const requestId = `phi-list-${randomUUID()}`;
    const page = await call(staff, 'GET', '/patients?limit=200', { requestId });
    assert.ok(page.body.items.length >= 4);
    const [record] = await accessRecordsOf(requestId);
    assert.deepEqual([...(record!.details.patients as string[])].sort(), page.body.items.map((p: { id: string }) => p.id).sort());
    assert.equal(record!.entity_id, null, 'many patients: none is the record\'s one entity');
  });

  it('records a denied answer and a not-found one too, disclosing no patient', async () => {
    const denied = `phi-denied-${randomUUID()}`;
    assert.equal((await call(staff, 'GET', `/rx/${ids.rx}`, { requestId: denied })).status, 403);
    const [refusal] = await accessRecordsOf(denied);
    assert.equal(refusal!.outcome, 'denied');
    assert.equal(refusal!.actor_id, staff.id);
    assert.deepEqual(refusal!.details.patients, []);
    assert.equal(refusal!.details.resourceId, ids.rx);

    const missing = `phi-missing-${randomUUID()}`;
    assert.equal((await call(staff, 'GET', `/patients/${randomUUID()}`, { requestId: missing })).status, 404);
    const [notFound] = await accessRecordsOf(missing);
    assert.equal(notFound!.outcome, 'failure');
    assert.equal(notFound!.details.status, 404);

    const anonymous = `phi-anonymous-${randomUUID()}`;
    assert.equal((await api.request('GET', `/patients/${ids.patient}`, { headers: { 'x-request-id': anonymous } })).status, 401);
    assert.deepEqual(await accessRecordsOf(anonymous), [], 'no one to name: the access log has it');
  });

  it('does not answer before the record is written: a record that cannot be written fails the request with 503', async () => {
    const { ownerUrl } = await sharedDatabase();
    const requestId = `phi-fail-${randomUUID()}`;
    const name = `fail_access_${randomUUID().replaceAll('-', '')}`;
    await sql(ownerUrl, `
      create function ${name}() returns trigger language plpgsql as $$
      begin
        if new.request_id = '${requestId}' then raise exception 'injected access record failure'; end if;
        return new;
      end $$;
      create trigger ${name} before insert on audit_queue for each row execute function ${name}();`);
    try {
      const res = await call(staff, 'GET', `/patients/${ids.patient}`, { requestId });
      assert.equal(res.status, 503);
      assert.deepEqual(Object.keys(res.body).sort(), ['error', 'message', 'requestId']);
      assert.equal(res.body.error, 'unavailable');
      assert.doesNotMatch(JSON.stringify(res.body), new RegExp(`${secretName}|injected`), 'not a byte of the patient');
      const failed = api.logs.records('audit_write_failed').filter((r) => r.reqId === requestId);
      assert.equal(failed.length, 1);
      assert.equal(failed[0]!.action, 'phi.access');
    } finally {
      await sql(ownerUrl, `drop trigger ${name} on audit_queue; drop function ${name}();`);
    }
    assert.deepEqual(await accessRecordsOf(requestId), []);
    assert.equal((await call(staff, 'GET', `/patients/${ids.patient}`)).status, 200, 'served again once records can be written');
  });

  it('declares x-phi on every GET whose answer carries patient data, and on the route itself', () => {
    const phiGets = Object.entries(document.paths).flatMap(([path, operations]) => Object.entries(operations)
      .filter(([method, op]) => method === 'get' && PHI_SCHEMAS.some((schema) => JSON.stringify(op.responses['200'] ?? {}).includes(`"#/components/schemas/${schema}"`)))
      .map(([method]) => `${method} ${path}`));
    const declared = phiOperations().map(({ method, path }) => `${method} ${path}`);
    assert.deepEqual(phiGets.filter((route) => !declared.includes(route)), [], 'PHI answers without x-phi');

    const recording = new Set<string>();
    for (const middleware of createApp(api.api.deps).middleware) {
      const router = (middleware as { router?: Router }).router;
      for (const layer of router?.stack ?? []) {
        if (!layer.stack.some((handler) => DISCLOSES in handler)) continue;
        for (const method of layer.methods.filter((m) => m !== 'HEAD')) recording.add(`${method.toLowerCase()} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`);
      }
    }
    assert.deepEqual([...recording].sort(), [...declared].sort(), 'the routes that record are the routes the document says disclose PHI');
  });
});
