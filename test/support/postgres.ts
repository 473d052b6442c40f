import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../api/embedded.js';

export { freePort };

/** The machine's PostgreSQL (trust auth): the tests' real database server. */
export const PG_HOST = '127.0.0.1';
export const PG_PORT = Number(process.env.TEST_PG_PORT ?? 5432);
export const PG_SUPERUSER = 'postgres';

/** The login role the API runs as in tests: like production's `dms_app`, a member of `dms_api` only. */
export const APP_ROLE = 'dms_app_test';

const PG_VERSION = readdirSync('/etc/postgresql')[0]!;
export const PG_BIN = `/usr/lib/postgresql/${PG_VERSION}/bin`;

export function pgUrl(database: string, { user = PG_SUPERUSER, port = PG_PORT } = {}): string {
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

/** A fresh database on the machine's server, and the app role that the API connects as. */
export async function createDatabase(name = freshName('dms_test')): Promise<{ name: string; ownerUrl: string; appUrl: string; drop(): Promise<void> }> {
  const admin = pgUrl('postgres');
  await sql(admin, `create database ${name}`);
  await sql(admin, `do $$ begin
    if not exists (select from pg_roles where rolname = '${APP_ROLE}') then create role ${APP_ROLE} login; end if;
  end $$`);
  return {
    name,
    ownerUrl: pgUrl(name),
    appUrl: pgUrl(name, { user: APP_ROLE }),
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

function serverConf(dataDir: string, port: number, extra = ''): void {
  writeFileSync(join(dataDir, 'postgresql.conf'), `port = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dataDir}'\nfsync = off\n${extra}`);
  writeFileSync(join(dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
}


/** initdb + start: a throwaway server (about a second) that a test may stop and start again. */
export async function startOwnServer(): Promise<OwnServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dms-pg-'));
  postgresOwned(dataDir);
  asPostgres('initdb', ['-D', dataDir, '-U', PG_SUPERUSER, '--auth=trust', '--no-sync']);
  const port = await freePort();
  serverConf(dataDir, port);
  postgresOwned(dataDir);
  const server = ownServer(dataDir, port);
  server.start();
  return server;
}

/**
 * A real streaming replica of the machine's cluster: `pg_basebackup -R -X stream -c fast`, started
 * on another port as a hot standby. Databases created on the primary afterwards stream to it.
 */
export async function startStreamingReplica(): Promise<OwnServer> {
  const hba = `/etc/postgresql/${PG_VERSION}/main/pg_hba.conf`;
  if (!/^host\s+replication\s+all\s+127\.0\.0\.1\/32\s+trust/m.test(readFileSync(hba, 'utf8'))) {
    appendFileSync(hba, '\n# DMS tests: streaming replica over loopback\nhost replication all 127.0.0.1/32 trust\n');
    await sql(pgUrl('postgres'), 'select pg_reload_conf()');
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'dms-replica-'));
  postgresOwned(dataDir);
  asPostgres('pg_basebackup', ['-h', PG_HOST, '-p', String(PG_PORT), '-U', PG_SUPERUSER, '-D', dataDir, '-R', '-X', 'stream', '-c', 'fast']);
  const port = await freePort();
  serverConf(dataDir, port, 'hot_standby = on\n');
  postgresOwned(dataDir);
  const server = ownServer(dataDir, port);
  server.start();
  return server;
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
