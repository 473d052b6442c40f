import ajvFormats from 'ajv-formats';
import { OpenAPIBackend, type Operation } from 'openapi-backend';
import { request, type RequestOptions, type TestApi, type TestResponse } from './api.js';

/**
 * Headers that belong to HTTP's framing, not to the API: OpenAPI ignores a declared Content-Type
 * (3.1 §4.8.21.1), and the rest are set by Node for the connection. Every other header of a
 * response must be declared on that operation's response for that status.
 */
const FRAMING = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding']);

interface DeclaredResponse {
  headers?: Record<string, { required?: boolean }>;
  content?: Record<string, unknown>;
}

/**
 * Checks every response against the OpenAPI document the API serves, with openapi-backend (its
 * Ajv-compiled validators for bodies and headers): the status must be declared for the operation
 * (no `default`, no `4XX`), the body must match that status's schema, every header must be
 * declared (Subset) and every required one present. Violations throw, naming the request.
 */
export class ResponseContract {
  /** operationId -> the statuses seen answered, so a test can say what the flow covered. */
  readonly seen = new Map<string, Set<number>>();

  private constructor(private readonly backend: OpenAPIBackend, readonly document: { paths: Record<string, Record<string, Operation>> }) {}

  /** The document `api` serves at GET /openapi.json, loaded into a validator. */
  static async of(api: TestApi): Promise<ResponseContract> {
    const served = await request(api.url, 'GET', '/openapi.json');
    if (served.status !== 200) throw new Error(`GET /openapi.json answered ${served.status}`);
    // The document's own validity is redocly's to judge (its lint runs in the test); openapi-backend's
    // own check of a document (quick: false) knows OpenAPI 3.0 only, so it is skipped.
    const backend = new OpenAPIBackend({ definition: served.body, quick: true, strict: true, customizeAjv: (ajv) => ajvFormats.default(ajv) });
    await backend.init();
    return new ResponseContract(backend, served.body);
  }

  /** Sends a request to `api` (any API started from the same code) and checks its response. */
  async request(api: TestApi, method: string, path: string, options?: RequestOptions): Promise<TestResponse> {
    const res = await api.request(method, path, options);
    this.check(method, path, res);
    return res;
  }

  check(method: string, path: string, res: TestResponse): void {
    const pathOnly = path.split('?')[0]!;
    const where = `${method} ${pathOnly} -> ${res.status}`;
    const operation = this.backend.matchOperation({ method, path: pathOnly, headers: {} });
    if (!operation?.operationId) throw new Error(`${where}: no operation in the document`);
    const declared = (operation.responses as Record<string, DeclaredResponse> | undefined)?.[String(res.status)];
    if (!declared) throw new Error(`${where}: status ${res.status} is not declared for ${operation.operationId} (declared: ${Object.keys(operation.responses ?? {}).join(', ')})`);

    const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim();
    if (declared.content) {
      if (!mediaType || !(mediaType in declared.content)) throw new Error(`${where}: content type ${mediaType} is not declared`);
      const body = this.backend.validateResponse(res.body, operation, res.status);
      if (!body.valid) throw new Error(`${where}: body does not match the schema: ${JSON.stringify(body.errors)} in ${JSON.stringify(res.body).slice(0, 500)}`);
    } else if (res.body !== undefined || mediaType) {
      throw new Error(`${where}: a body where the document declares none`);
    }

    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      if (!FRAMING.has(name)) headers[name] = value;
    });
    const declaredHeaders = Object.fromEntries(Object.entries(declared.headers ?? {}).map(([name, header]) => [name.toLowerCase(), header]));
    const undeclared = Object.keys(headers).filter((name) => !(name in declaredHeaders));
    if (undeclared.length) throw new Error(`${where}: headers not declared: ${undeclared.join(', ')}`);
    const missing = Object.entries(declaredHeaders).filter(([name, header]) => header.required && !(name in headers)).map(([name]) => name);
    if (missing.length) throw new Error(`${where}: required headers missing: ${missing.join(', ')}`);
    const values = this.backend.validateResponseHeaders(headers, operation, { statusCode: res.status, setMatchType: 'subset' as never });
    if (!values.valid) throw new Error(`${where}: header values do not match: ${JSON.stringify(values.errors)}`);

    const statuses = this.seen.get(operation.operationId) ?? new Set<number>();
    statuses.add(res.status);
    this.seen.set(operation.operationId, statuses);
  }

  /** Every operation of the document: `method path` and its operationId. */
  operations(): { method: string; path: string; operationId: string; roles?: string[] }[] {
    return Object.entries(this.document.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ method, path, operationId: op.operationId!, roles: (op as { 'x-roles'?: string[] })['x-roles'] })));
  }
}
