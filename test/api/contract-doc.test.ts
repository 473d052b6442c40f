import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { openApiDocument } from '../../api/openapi/document.js';

const CONTRACT = readFileSync(new URL('../../docs/contract.md', import.meta.url), 'utf8');

/** `GET /patients/:pid/visits` and `get /patients/{id}` both become `GET /patients/{}/visits`: parameter names may differ. */
const normalise = (method: string, path: string) => `${method.toUpperCase()} ${path.replace(/\?.*$/, '').replace(/(:\w+|\{\w+\})/g, '{}')}`;

/** The operations §2's route table names: the inline code spans of each row's first cell that are a method and a path. */
function contractRoutes(markdown: string): string[] {
  const section = /^## 2\.[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(markdown)?.[1] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...(line.split(/(?<!\\)\|/)[1] ?? '').matchAll(/`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/g)])
    .map(([, method, path]) => normalise(method!, path!));
}

function documentRoutes(): string[] {
  const paths = openApiDocument().paths as Record<string, Record<string, unknown>>;
  return Object.entries(paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => normalise(method, path)));
}

describe('docs/contract.md and GET /openapi.json describe the same routes (issue 17, item 6)', () => {
  it('reads the route table of §2', () => {
    const routes = contractRoutes(CONTRACT);
    assert.ok(routes.includes('GET /patients/{}') && routes.includes('POST /auth/login'), `parsed: ${routes.join(', ')}`);
    assert.deepEqual(contractRoutes('## 2. HTTP\n| `GET /a/:id`, `POST /a` | x |\n| not a route | y |\n## 3. next\n| `GET /b` | z |'), ['GET /a/{}', 'POST /a']);
  });

  it('lists every operation of the OpenAPI document in docs/contract.md §2', () => {
    const listed = new Set(contractRoutes(CONTRACT));
    const missing = documentRoutes().filter((route) => !listed.has(route));
    assert.deepEqual(missing, [], 'served and in GET /openapi.json, but not in the route table of docs/contract.md §2: add a row (mark it an addition)');
  });

  it('lists no route in docs/contract.md §2 that the OpenAPI document lacks, and none twice', () => {
    const documented = new Set(documentRoutes());
    const routes = contractRoutes(CONTRACT);
    assert.deepEqual(routes.filter((route) => !documented.has(route)), [], 'in docs/contract.md §2 but not in GET /openapi.json');
    assert.deepEqual(routes.filter((route, i) => routes.indexOf(route) !== i), [], 'listed twice');
  });
});
