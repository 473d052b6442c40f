import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Role } from '../../api/db/entities.js';
import { openApiDocument } from '../../api/openapi/document.js';
import { startClinic, type Clinic } from '../support/s3.js';

/**
 * CONTRACT §2: `nextCursor` is opaque and the client passes it back untouched. Anything else in
 * `cursor` (or in a query parameter) is the client's mistake or an attack: 422 naming the field,
 * never a 500 from a value the database cannot hold.
 */

interface ListOperation {
  path: string;
  roles: Role[];
  /** Required query parameters, with their schema's format (`date` or `date-time`). */
  required: { name: string; format?: string }[];
}

/** Every operation of the document that pages with `cursor`. */
function listOperations(): ListOperation[] {
  type Parameter = { name: string; in: string; required: boolean; schema?: { format?: string } };
  const { paths } = openApiDocument() as { paths: Record<string, Record<string, { parameters: Parameter[]; 'x-roles': Role[] }>> };
  return Object.entries(paths).flatMap(([path, operations]) => {
    const get = operations.get;
    if (!get?.parameters.some((p) => p.in === 'query' && p.name === 'cursor')) return [];
    return [{ path, roles: get['x-roles'], required: get.parameters.filter((p) => p.in === 'query' && p.required).map((p) => ({ name: p.name, format: p.schema?.format })) }];
  });
}

const cursorOf = (parts: unknown) => Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');

/**
 * Cursors no list issues, each shaped like one some list does. The formulary pages by name, and
 * any text is a name it could have issued: there, only those with something else wrong are refused.
 */
const NAME_KEYS = new Set(['an instant before any the database holds', 'an instant spelled without milliseconds']);
const KEYED_BY_NAME = new Set(['/medicines']);
const CRAFTED: Record<string, unknown> = {
  'an audit seq beyond bigint': ['9223372036854775808'],
  'an audit seq of twenty digits': ['99999999999999999999'],
  'an audit seq as a number': [5],
  'the day 0000-00-00': ['0000-00-00'],
  'the day 2024-02-30': ['2024-02-30'],
  'an instant before any the database holds': ['-271821-04-20T00:00:00.000Z', randomUUID()],
  'an instant spelled without milliseconds': ['2024-05-01T09:30:00Z', randomUUID()],
  'an upper-case id': ['2024-05-01T09:30:00.000Z', randomUUID().toUpperCase()],
  'a name holding NUL': ['\u0000', randomUUID()],
  'a name with padding': [' Amoxicillin ', randomUUID()],
  'no parts': [],
  'an object': { seq: '1' },
};

/** Lists that need one of several parameters (none of them required on its own): the one this test gives. */
const ONE_OF: Record<string, string[]> = { '/visits': ['followUpDue=2024-01-10'] };

describe('lists: a cursor the API did not issue is 422, never a 500', () => {
  let clinic: Clinic;
  let ids: Record<string, string>;
  const operations = listOperations();

  /** The path with real ids, as a caller the contract lets in, with the query every list needs. */
  function call(op: ListOperation, query: string) {
    const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name]!);
    const needed = [...op.required.map(({ name, format }) => `${name}=${name === 'from' ? '2024-01-01' : '2024-01-31'}${format === 'date-time' ? 'T00:00:00Z' : ''}`), ...(ONE_OF[op.path] ?? [])];
    return clinic.api.request('GET', `${path}?${[...needed, query].join('&')}`, { token: clinic[op.roles[0]!].accessToken });
  }

  before(async () => {
    clinic = await startClinic();
    const patient = await clinic.api.request('POST', '/patients', { token: clinic.staff.accessToken, body: { fullName: 'Cursor Probe', dateOfBirth: '1970-01-01' } });
    const visit = await clinic.api.request('POST', `/patients/${patient.body.id}/visits`, {
      token: clinic.doctor.accessToken, body: { visitedAt: '2024-01-10T09:00:00Z', reason: 'check-up' },
    });
    assert.equal(visit.status, 201, JSON.stringify(visit.body));
    // `{id}`: the patient or user an access question is about (any id answers a page).
    ids = { pid: patient.body.id, vid: visit.body.id, id: patient.body.id };
  });
  after(() => clinic?.api.close());

  it('walks every list of the document, each answering a first page', async () => {
    assert.ok(operations.length >= 8, `${operations.length} lists`);
    for (const op of operations) assert.equal((await call(op, 'limit=1')).status, 200, op.path);
  });

  for (const op of listOperations()) {
    it(`GET ${op.path}`, async () => {
      for (const [what, parts] of Object.entries(CRAFTED)) {
        const res = await call(op, `cursor=${cursorOf(parts)}`);
        if (KEYED_BY_NAME.has(op.path) && NAME_KEYS.has(what)) {
          assert.equal(res.status, 200, `${what} is a name the list could have issued`);
          continue;
        }
        assert.deepEqual([res.status, res.body?.error, Object.keys(res.body?.fields ?? {})], [422, 'validation_failed', ['cursor']], `${what}: ${JSON.stringify(res.body)}`);
      }
    });
  }

  it('refuses query values the database cannot hold the same way', async () => {
    const probes: [string, string][] = [
      ['/reports/visits?from=0000-00-00&to=2024-01-01', 'from'],
      ['/reports/visits?from=2024-01-01&to=99999-01-01', 'to'],
      ['/admin/audit?from=0000-01-01T00:00:00Z', 'from'],
      ['/admin/audit?to=-271821-04-20T00:00:00Z', 'to'],
      ['/admin/audit?actor=a%00b', 'actor'],
      ['/admin/audit?limit=99999999999', 'limit'],
    ];
    for (const [path, field] of probes) {
      const res = await clinic.api.request('GET', path, { token: clinic.admin.accessToken });
      assert.deepEqual([res.status, Object.keys(res.body?.fields ?? {})], [422, [field]], `${path}: ${JSON.stringify(res.body)}`);
    }
  });
});
