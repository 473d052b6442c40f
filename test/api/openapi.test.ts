import assert from 'node:assert/strict';
import type Router from '@koa/router';
import { createApp } from '../../api/app.js';
import { IDEMPOTENT } from '../../api/http/idempotency.js';
import type { TestApi } from '../support/api.js';
import { startRecordsApi } from '../support/s3.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** Every (method, path) the composed app routes, in OpenAPI's path syntax (`/patients/{id}`). */
function servedRoutes(api: TestApi, { idempotentOnly = false } = {}): Set<string> {
  const app = createApp(api.api.deps);
  const routes = new Set<string>();
  for (const middleware of app.middleware) {
    const router = (middleware as { router?: Router }).router;
    if (!router) continue;
    for (const layer of router.stack) {
      if (typeof layer.path !== 'string') continue;
      if (idempotentOnly && !layer.stack.some((handler) => IDEMPOTENT in handler)) continue;
      const path = layer.path.replace(/:(\w+)/g, '{$1}').replace(/(.)\/$/, '$1');
      for (const method of layer.methods.map((m) => m.toLowerCase())) {
        if ((METHODS as readonly string[]).includes(method)) routes.add(`${method} ${path}`);
      }
    }
  }
  return routes;
}

describe('the OpenAPI document (GET /openapi.json)', () => {
  let api: TestApi;
  let document: { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>; components: { schemas: Record<string, unknown> } };

  before(async () => {
    api = await startRecordsApi();
    const res = await api.request('GET', '/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    document = res.body;
  });
  after(() => api?.close());

  const documented = () => new Set(Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`)));

  it('is OpenAPI 3.1', () => {
    assert.match(document.openapi, /^3\.1\.\d+$/);
  });

  it('documents every route the router serves', () => {
    const served = servedRoutes(api);
    assert.ok(served.size > 30, `found ${served.size} routes: the walk over the app's routers works`);
    const missing = [...served].filter((route) => !documented().has(route));
    assert.deepEqual(missing, [], 'served but not documented');
  });

  it('documents no route the router does not serve', () => {
    const served = servedRoutes(api);
    const extra = [...documented()].filter((route) => !served.has(route));
    assert.deepEqual(extra, [], 'documented but not served');
  });

  it('resolves every schema reference and states how each route fails', () => {
    const text = JSON.stringify(document);
    for (const [, name] of text.matchAll(/"#\/components\/schemas\/(\w+)"/g)) assert.ok(document.components.schemas[name!], `missing schema ${name}`);
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const statuses = Object.keys(operation.responses);
        assert.ok(statuses.some((s) => s.startsWith('2')), `${method} ${path} has a success response`);
        if (operation.security?.length) assert.ok(statuses.includes('401') && statuses.includes('403'), `${method} ${path} documents 401 and 403`);
      }
    }
  });

  it('documents Idempotency-Key on exactly the routes that honour it: every create', () => {
    const honoured = servedRoutes(api, { idempotentOnly: true });
    const creates = new Set(Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations).filter(([method, op]) => method === 'post' && '201' in op.responses).map(([method]) => `${method} ${path}`)));
    const withHeader = new Set(Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations as Record<string, { parameters?: { name: string; in: string }[] }>)
        .filter(([, op]) => op.parameters?.some((p) => p.in === 'header' && p.name === 'Idempotency-Key')).map(([method]) => `${method} ${path}`)));
    assert.ok(creates.size >= 7, `found ${creates.size} creates`);
    assert.deepEqual([...honoured].sort(), [...creates].sort(), 'the routes with the middleware are the creates');
    assert.deepEqual([...withHeader].sort(), [...creates].sort(), 'the document names the header on each create');
  });

  it('derives request bodies from the validators the routes use', async () => {
    const patient = document.paths['/patients']!.post as unknown as { requestBody: { content: { 'application/json': { schema: { required: string[]; properties: Record<string, unknown> } } } } };
    const schema = patient.requestBody.content['application/json'].schema;
    assert.deepEqual(schema.required.sort(), ['dateOfBirth', 'fullName']);
    assert.deepEqual(Object.keys(schema.properties).sort(), ['dateOfBirth', 'email', 'fullName', 'notes', 'phone', 'sex']);
  });
});
