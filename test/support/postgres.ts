import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../api/embedded.js';

export { freePort };

export const PG_HOST = '127.0.0.1';
export const PG_SUPERUSER = 'postgres';

/** The login role the API runs as in tests: like production's `dms_app`, a member of `dms_api` only. */
export const APP_ROLE = 'dms_app_test';
/** The login role the audit export and purge commands run as in tests: like production's `dms_audit_export`. */
export const EXPORTER_ROLE = 'dms_audit_export_test';

const PG_VERSION = readdirSync('/etc/postgresql')[0]!;
export const PG_BIN = `/usr/lib/postgresql/${PG_VERSION}/bin`;

/** A URL on the run's cluster (see `runCluster`, which must have started) or on `port`. */
export function pgUrl(database: string, { user = PG_SUPERUSER, port = runClusterPort() } = {}): string {
  return `postgres://${user}@${PG_HOST}:${port}/${database}`;
}

export async function sql(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/** Runs a PostgreSQL server binary as the `postgres` OS user: the server refuses to run as root. */
export function asPostgres(binary: string, args: string[]): string {
  const command = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', `${PG_BIN}/${binary}`, ...args] : [`${PG_BIN}/${binary}`, ...args];
  return execFileSync(command[0]!, command.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function postgresOwned(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(dir, uid, gid);
  for (const entry of readdirSync(dir, { recursive: true })) chownSync(join(dir, String(entry)), uid, gid);
}

export function freshName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

/**
 * The tests' login roles on the server at `url` (roles are per cluster); once the migrations have
 * created their groups, `withGroups` makes the app role a member of `dms_api` and the exporter a
 * member of `dms_audit_exporter`, as the migration task does for `dms_app` and `dms_audit_export`.
 */
export async function ensureTestAppRole(url: string, { withGroups = false } = {}): Promise<void> {
  for (const role of [APP_ROLE, EXPORTER_ROLE]) {
    await sql(url, `do $$ begin
      if not exists (select from pg_roles where rolname = '${role}') then create role ${role} login; end if;
    end $$`);
  }
  if (withGroups) {
    await sql(url, `grant dms_api to ${APP_ROLE}`);
    await sql(url, `grant dms_audit_exporter to ${EXPORTER_ROLE}`);
  }
}

/** A fresh database on the run's cluster, and the app role that the API connects as. */
export async function createDatabase(name = freshName('dms_test')): Promise<{ name: string; ownerUrl: string; appUrl: string; exporterUrl: string; drop(): Promise<void> }> {
  await runCluster();
  const admin = pgUrl('postgres');
  await sql(admin, `create database ${name}`);
  await ensureTestAppRole(admin);
  return {
    name,
    ownerUrl: pgUrl(name),
    appUrl: pgUrl(name, { user: APP_ROLE }),
    exporterUrl: pgUrl(name, { user: EXPORTER_ROLE }),
    drop: async () => {
      await sql(admin, `drop database if exists ${name} with (force)`);
    },
  };
}

/** A PostgreSQL server of our own on a free port, for tests that stop and start it. */
export interface OwnServer {
  port: number;
  dataDir: string;
  start(): void;
  stop(): void;
  destroy(): void;
}

function ownServer(dataDir: string, port: number): OwnServer {
  const running = () => existsSync(join(dataDir, 'postmaster.pid'));
  const server: OwnServer = {
    port,
    dataDir,
    start: () => void asPostgres('pg_ctl', ['-D', dataDir, '-w', '-t', '30', '-l', join(dataDir, 'server.log'), 'start']),
    stop: () => void asPostgres('pg_ctl', ['-D', dataDir, '-w', '-m', 'fast', 'stop']),
    destroy: () => {
      if (running()) server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Loopback-only, trust auth (replication too, for the streaming replica), sockets in the data directory. */
function serverConf(dataDir: string, port: number, extra = ''): void {
  writeFileSync(join(dataDir, 'postgresql.conf'), `port = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dataDir}'\n${extra}`);
  writeFileSync(join(dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n');
}

/** initdb + start on a free port; `conf` is added to postgresql.conf. */
async function initServer(prefix: string, conf: string): Promise<OwnServer> {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  postgresOwned(dataDir);
  asPostgres('initdb', ['-D', dataDir, '-U', PG_SUPERUSER, '--auth=trust', '--no-sync']);
  const port = await freePort();
  serverConf(dataDir, port, conf);
  postgresOwned(dataDir);
  const server = ownServer(dataDir, port);
  server.start();
  return server;
}

/** initdb + start: a throwaway server (about a second) that a test may stop and start again. */
export function startOwnServer(): Promise<OwnServer> {
  return initServer('dms-pg-', 'fsync = off\n');
}

/**
 * The run's cluster and what must be undone at its end, held once per process rather than per
 * module instance: mocha require()s the global teardown (test/support/global.ts) and every spec it
 * can, but loads a spec whose module graph awaits at the top with import(), and each loader has its
 * own instance of these modules. With module-level variables the teardown saw an empty copy, and
 * every full run left its cluster and replica running (test/test-run-teardown.test.ts).
 */
interface RunState {
  cluster?: Promise<OwnServer>;
  clusterPort?: number;
  /** Run last to first by `releaseRunResources`, before the cluster stops. */
  teardowns: (() => Promise<void> | void)[];
}
const RUN_STATE = Symbol.for('dms.test.run-state');
export const runState: RunState = ((globalThis as { [RUN_STATE]?: RunState })[RUN_STATE] ??= { teardowns: [] });

/**
 * The run's own PostgreSQL cluster, started on first use and destroyed by `releaseRunResources` at the
 * end of the run. Roles live in the cluster, not in a database: two runs sharing one server create,
 * grant and re-password the same `dms_api`, `dms_app_test` and `dms_app` under each other (one run
 * saw `permission denied for table audit_chain_head`). A cluster per run owns its roles, its
 * pg_hba.conf and its databases, so no other run can touch them. Durable settings (fsync on),
 * as a real server runs, since the benchmark uses this cluster too.
 */
export function runCluster(): Promise<OwnServer> {
  runState.cluster ??= initServer('dms-run-', '').then((server) => {
    runState.clusterPort = server.port;
    return server;
  });
  return runState.cluster;
}

function runClusterPort(): number {
  if (runState.clusterPort === undefined) throw new Error('the run cluster has not started: await runCluster() (or createDatabase/sharedDatabase) first');
  return runState.clusterPort;
}

/** Runs the registered teardowns (each, whatever the others did), then stops and deletes the run's cluster, if it started. */
export async function releaseRunResources(): Promise<void> {
  const failures: unknown[] = [];
  for (const teardown of runState.teardowns.splice(0).reverse()) {
    try {
      await teardown();
    } catch (error) {
      failures.push(error);
    }
  }
  const started = runState.cluster;
  runState.cluster = undefined;
  runState.clusterPort = undefined;
  if (started) (await started).destroy();
  if (failures.length > 0) throw new AggregateError(failures, 'run teardown');
}

/**
 * A real streaming replica of the run's cluster: `pg_basebackup -R -X stream -c fast`, started
 * on another port as a hot standby. Databases created on the primary afterwards stream to it.
 */
export async function startStreamingReplica(): Promise<OwnServer> {
  const primary = await runCluster();
  const dataDir = mkdtempSync(join(tmpdir(), 'dms-replica-'));
  postgresOwned(dataDir);
  asPostgres('pg_basebackup', ['-h', PG_HOST, '-p', String(primary.port), '-U', PG_SUPERUSER, '-D', dataDir, '-R', '-X', 'stream', '-c', 'fast']);
  const port = await freePort();
  serverConf(dataDir, port, 'hot_standby = on\n');
  postgresOwned(dataDir);
  const server = ownServer(dataDir, port);
  server.start();
  return server;
}

/**
 * The statements sent through `pool.query` from now on, in order: for a test that counts what a
 * piece of code sends (connections checked out with `pool.connect()` are not seen).
 */
export function statementsSentThrough(pool: pg.Pool): string[] {
  const statements: string[] = [];
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  Object.assign(pool, {
    query: (...args: unknown[]) => {
      statements.push(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: unknown }).text));
      return query(...args);
    },
  });
  return statements;
}

/** Waits until `check` passes, for what arrives asynchronously (replication, log lines). */
export async function eventually<T>(check: () => Promise<T>, { timeoutMs = 10_000, intervalMs = 50 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
