import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { ROLES, type Role } from '../../api/db/entities.js';
import { isCanonicalPath } from '../../api/middleware/canonical-path.js';
import { openApiDocument } from '../../api/openapi/document.js';
import { startClinic, type Clinic } from '../support/s3.js';

/**
 * Every operation of the OpenAPI document, called by every caller (no token, each role) in its one
 * canonical spelling and in the spellings an attacker tries. The document is the contract: its
 * `x-roles` say who may call an operation, and this walk holds every route's own guard to it, so a
 * route added or changed without its guard fails here without anyone writing a new test.
 */

interface DocumentedOperation {
  method: string;
  path: string;
  roles?: Role[];
}

function documentedOperations(): DocumentedOperation[] {
  const { paths } = openApiDocument() as { paths: Record<string, Record<string, { 'x-roles'?: Role[]; security: unknown[] }>> };
  return Object.entries(paths).flatMap(([path, operations]) => Object.entries(operations).map(([method, op]) => ({
    method: method.toUpperCase(),
    path,
    ...(op['x-roles'] ? { roles: op['x-roles'] } : {}),
  })));
}

/** The operation's path with a fresh lower-case UUID for each parameter: an id of nothing. */
const concrete = (path: string) => path.replace(/\{\w+\}/g, () => randomUUID());

/** The spellings of one path that are not its canonical form, each one a way a layer could disagree. */
function otherSpellings(path: string): Record<string, string> {
  const [, first = '', ...rest] = path.split('/');
  const tail = rest.length ? `/${rest.join('/')}` : '';
  return {
    'upper case': path.toUpperCase(),
    'mixed case': `/${first.charAt(0).toUpperCase()}${first.slice(1)}${tail}`,
    'trailing slash': `${path}/`,
    'percent-encoded first letter': `/%${first.charCodeAt(0).toString(16)}${first.slice(1)}${tail}`,
    'percent-encoded upper-case first letter': `/%${first.toUpperCase().charCodeAt(0).toString(16)}${first.slice(1)}${tail}`,
    'doubled slash': `/${path}`,
    'dot segment': `/.${path}`,
  };
}

interface RawResponse {
  status: number;
  body: { error?: string } | undefined;
}

/** A request with the path exactly as written: `fetch` would resolve dot segments before sending. */
function rawRequest(base: string, method: string, path: string, token?: string): Promise<RawResponse> {
  const url = new URL(base);
  const body = method === 'POST' || method === 'PATCH' ? '{}' : undefined;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, method, path,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json', 'content-length': '2' } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let parsed: RawResponse['body'];
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

type Caller = 'no token' | Role;
const CALLERS: Caller[] = ['no token', ...ROLES];

describe('access: every operation, every caller, every spelling (the OpenAPI document is the contract)', () => {
  let clinic: Clinic;
  const tokenOf = (caller: Caller) => (caller === 'no token' ? undefined : clinic[caller].accessToken);
  const operations = documentedOperations();

  before(async () => {
    clinic = await startClinic();
  });
  after(() => clinic?.api.close());

  it('walks the document the API serves, with an operation under every sensitive prefix', async () => {
    const served = await clinic.api.request('GET', '/openapi.json');
    assert.deepEqual(served.body, JSON.parse(JSON.stringify(openApiDocument())));
    assert.ok(operations.length > 30, `${operations.length} operations`);
    for (const prefix of ['auth', 'patients', 'visits', 'reports', 'xrays', 'rx', 'medicines', 'rx-presets', 'admin']) {
      assert.ok(operations.some((op) => op.path.split('/')[1] === prefix), `an operation under /${prefix}`);
    }
  });

  describe('in the canonical spelling, the caller the contract names gets in and every other caller is refused', () => {
    for (const op of operations) {
      it(`${op.method} ${op.path}`, async () => {
        const path = concrete(op.path);
        assert.ok(isCanonicalPath(path), `${path} is canonical`);
        for (const caller of CALLERS) {
          const res = await rawRequest(clinic.api.url, op.method, path, tokenOf(caller));
          const label = `${op.method} ${path} as ${caller}: ${res.status} ${res.body?.error ?? ''}`;
          assert.ok(res.status < 500, label);
          if (!op.roles) assert.ok(res.status !== 401 && res.status !== 403, `${label}: a public route`);
          else if (caller === 'no token') assert.equal(res.status, 401, label);
          else if (!op.roles.includes(caller)) assert.equal(res.status, 403, label);
          else assert.ok(res.status !== 401 && res.status !== 403, `${label}: the contract lets ${caller} in`);
        }
      });
    }
  });

  describe('in any other spelling, nothing is routed: 404 not_found for every caller', () => {
    for (const op of operations) {
      it(`${op.method} ${op.path}`, async () => {
        for (const [how, path] of Object.entries(otherSpellings(concrete(op.path)))) {
          assert.equal(isCanonicalPath(path), false, `${how}: ${path}`);
          for (const caller of CALLERS) {
            const res = await rawRequest(clinic.api.url, op.method, path, tokenOf(caller));
            assert.deepEqual([res.status, res.body?.error], [404, 'not_found'], `${op.method} ${path} (${how}) as ${caller}`);
          }
        }
      });
    }
  });

  describe('a route id in another spelling is not an id', () => {
    it('an upper-case UUID of a real patient is 404, its lower-case form 200', async () => {
      const created = await clinic.api.request('POST', '/patients', { token: clinic.staff.accessToken, body: { fullName: 'Spelling Test', dateOfBirth: '1980-02-03' } });
      assert.equal(created.status, 201);
      const id = created.body.id as string;
      assert.equal((await rawRequest(clinic.api.url, 'GET', `/patients/${id}`, clinic.staff.accessToken)).status, 200);
      assert.equal((await rawRequest(clinic.api.url, 'GET', `/patients/${id.toUpperCase()}`, clinic.staff.accessToken)).status, 404);
    });
  });
});
