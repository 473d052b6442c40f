import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../api/config.js';
import { createOrm, migrate } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { startApi, type RunningApi } from '../../api/server.js';
import { APP_ROLE, createDatabase, ensureTestAppRole, eventually, pgUrl, runState, sql, startStreamingReplica, type OwnServer } from './postgres.js';

/** Every log line any test API wrote in this run: the secrets scan reads it at the end. */
export const allLogLines: string[] = [];

export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      this.lines.push(line);
      allLogLines.push(line);
    }
    done();
  }
  /** Parsed records, optionally only those of one event. */
  records(event?: string): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((r) => !event || r.event === event);
  }
}

export const TEST_JWT_KEY = { kid: 'test-key-1', alg: 'HS256' as const, secret: randomBytes(48).toString('base64url') };

export interface TestDatabase {
  name: string;
  ownerUrl: string;
  /** The API's role on the primary. */
  appUrl: string;
  /** As the audit exporter (export, purge). */
  exporterUrl: string;
  /** The API's role on the streaming replica. */
  replicaAppUrl: string;
  replica: OwnServer;
}

/**
 * Applies every migration as the database owner, then makes the tests' login roles members of
 * their groups: what the production migration task does for `dms_app` and `dms_audit_export`.
 */
export async function migrateDatabase(ownerUrl: string): Promise<void> {
  const orm = await createOrm({ databaseUrl: ownerUrl, replicaUrls: [], log: createLogger({ level: 'error', env: 'test', stream: new LogCapture() }) });
  try {
    await migrate(orm);
  } finally {
    await orm.close();
  }
  await ensureTestAppRole(ownerUrl, { withGroups: true });
}

/** A database of a test's own on the run's cluster, migrated, the login roles in their groups. */
export async function migratedDatabase(): ReturnType<typeof createDatabase> {
  const db = await createDatabase();
  await migrateDatabase(db.ownerUrl);
  return db;
}

let shared: Promise<TestDatabase> | undefined;

/** One migrated database per run on the run's cluster, streamed to a real replica; dropped at the end. */
export function sharedDatabase(): Promise<TestDatabase> {
  shared ??= (async () => {
    const replica = await startStreamingReplica();
    runState.teardowns.push(() => replica.destroy());
    const db = await createDatabase();
    runState.teardowns.push(() => db.drop());
    await migrateDatabase(db.ownerUrl);
    const replicaAppUrl = pgUrl(db.name, { user: APP_ROLE, port: replica.port });
    await eventually(() => sql(replicaAppUrl, 'select 1 from users limit 1'), { timeoutMs: 30_000 });
    return { name: db.name, ownerUrl: db.ownerUrl, appUrl: db.appUrl, exporterUrl: db.exporterUrl, replicaAppUrl, replica };
  })();
  return shared;
}

export interface TestApi {
  url: string;
  api: RunningApi;
  config: Config;
  logs: LogCapture;
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface RequestOptions {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // Tests read response bodies loosely: the assertions say what shape is expected.
  body: any;
}

export async function request(base: string, method: string, path: string, { body, token, headers = {} }: RequestOptions = {}): Promise<TestResponse> {
  const response = await fetch(base + path, {
    method,
    headers: {
      ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: the assertion will say so
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

export interface TestApiOptions {
  /** Environment variables as the process would see them (CONTRACT §1), over the test defaults. */
  env?: Record<string, string>;
  /** Config fields no variable expresses (e.g. embedded S3 credentials). */
  config?: Partial<Config>;
  /** Leave out the replica (DATABASE_REPLICA_URLS). */
  withoutReplica?: boolean;
  /** Where the EMF records go when `METRICS_NAMESPACE` is set (instead of stdout). */
  metrics?: Writable;
}

/** The real API on a free port against the shared database (and replica), logs captured. */
export async function startTestApi({ env = {}, config: overrides = {}, withoutReplica = false, metrics }: TestApiOptions = {}): Promise<TestApi> {
  const db = await sharedDatabase();
  const config = {
    ...loadConfig({
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: db.appUrl,
      ...(withoutReplica ? {} : { DATABASE_REPLICA_URLS: db.replicaAppUrl }),
      JWT_KEYS: JSON.stringify([TEST_JWT_KEY]),
      LOG_LEVEL: 'info',
      ...env,
    }),
    ...overrides,
  };
  const logs = new LogCapture();
  const log = createLogger({ level: config.logLevel, env: config.env, stream: logs });
  const api = await startApi({ config: { ...config, databaseUrl: config.databaseUrl! }, log, migrate: false, ...(metrics ? { metricsStream: metrics } : {}) });
  return {
    url: api.url,
    api,
    config,
    logs,
    request: (method, path, options) => request(api.url, method, path, options),
    close: () => api.close(),
  };
}

/** The real API on a database of a test's own (no replica): for tests that stop, fill or break it. */
export function startTestApiOn(db: { appUrl: string }, env: Record<string, string> = {}): Promise<TestApi> {
  return startTestApi({ env: { DATABASE_URL: db.appUrl, ...env }, withoutReplica: true });
}
