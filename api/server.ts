import { createServer, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { createApp, type AppDeps } from './app.js';
import { ensureFirstAdmin } from './auth/bootstrap.js';
import { LiveSessions } from './auth/live-sessions.js';
import { HEAVY_USER_CHECK_MS, reportHeavyUsers } from './audit/accesses.js';
import { AuditSequencer } from './audit/sequencer.js';
import type { Config } from './config.js';
import { createOrm, migrate } from './db/orm.js';
import { poolProbe, postgresProbe, redisProbe } from './health.js';
import { Draining } from './http/draining.js';
import { createStorage } from './storage/s3.js';
import { BatchedStdout, type Logger } from './logger.js';
import { RequestMetrics } from './metrics/emf.js';
import type { Writable } from 'node:stream';

/** Longer than the ALB's idle timeout (60 s), so the ALB never reuses a socket we are closing. */
const KEEP_ALIVE_MS = 65_000;
/**
 * A request must arrive whole (headers and a body of at most 100 KiB) within this, or Node answers
 * 408 and closes the socket: without it a client trickling a body held a socket for Node's default
 * 5 minutes (issue 15, finding 9). Idle keep-alive sockets are not affected: the clock starts at a
 * request's first byte (test/api/http-surface.test.ts).
 */
export const REQUEST_TIMEOUT_MS = 30_000;
export const HEADERS_TIMEOUT_MS = 10_000;
/** How often Node checks those timeouts (its default, 30 s, would let a request live up to twice its timeout). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/** SIGTERM to exit must fit ECS's 30 s stop timeout (CONTRACT: within 25 s). */
const DRAIN_MS = 20_000;
/**
 * However the drain and the pools' closing go, the process exits this long after SIGTERM: a query
 * that never returns keeps its pool from ending, and ECS would otherwise SIGKILL at 30 s.
 */
export const SHUTDOWN_DEADLINE_MS = 23_000;

const REDIS_STARTUP_WAIT_MS = 2_000;

function redisReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
  });
}

/** ioredis reports every failed reconnect: log the outage once, and its end. */
function logRedisOutages(redis: Redis, log: Logger): void {
  let down = false;
  redis.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log.warn('redis_error', { errorMessage: error.message });
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info('redis_recovered');
  });
}

export interface RunningApi {
  server: Server;
  deps: AppDeps;
  /** Where a client on this machine reaches it. */
  url: string;
  /** What the server really listens on (`HOST`, `PORT`); `everyInterface` for `0.0.0.0` or `::`. */
  bound: { address: string; port: number; everyInterface: boolean };
  /** Starts draining (readiness fails, responses close their connections), stops accepting, finishes in-flight requests, closes pools. */
  close(): Promise<void>;
}

export interface StartOptions {
  config: Config & { databaseUrl: string };
  log: Logger;
  /** Apply pending migrations before listening (development and tests; production runs a task). */
  migrate: boolean;
  /** Where EMF records go when `METRICS_NAMESPACE` is set: stdout unless a test gives a stream. */
  metricsStream?: Writable;
}

/** Builds the dependencies, the app and an HTTP server listening on the configured address. */
export async function startApi({ config, log, migrate: runMigrations, metricsStream }: StartOptions): Promise<RunningApi> {
  const orm = await createOrm({ databaseUrl: config.databaseUrl, replicaUrls: config.replicaUrls, log });
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000 })
    : undefined;
  if (redis) logRedisOutages(redis, log);
  let sequencer: AuditSequencer | undefined;
  try {
    if (runMigrations) {
      const applied = await migrate(orm);
      if (applied.length) log.info('migrations_applied', { migrations: applied });
    }
    await ensureFirstAdmin(orm.em.fork(), config, log);
    // The first requests should count in the shared rate-limit store; if Redis is down, serve anyway
    // (each task then counts in its own memory) rather than fail start-up.
    if (redis) await redisReady(redis, REDIS_STARTUP_WAIT_MS);
    const probes = [
      postgresProbe('primary', config.databaseUrl, { writable: true }),
      poolProbe('primary-pool', () => orm.em.getConnection('write').getNativeClient()),
      ...config.replicaUrls.map((url, i) => postgresProbe(`replica-${i + 1}`, url, { optional: true })),
      ...(redis ? [redisProbe(redis)] : []),
    ];
    const sessions = new LiveSessions(orm, config.databaseUrl, log);
    sessions.start();
    // Every task competes to be the database's one sequencer (api/audit/sequencer.ts).
    sequencer = new AuditSequencer(config.databaseUrl, log, {
      whileLeading: {
        everyMs: HEAVY_USER_CHECK_MS,
        run: () => reportHeavyUsers(orm.em.fork(), log, config.heavyUserPatients).then(
          () => undefined,
          (error: unknown) => {
            log.error('unhandled_error', { where: 'heavy_user_check', errorName: error instanceof Error ? error.name : typeof error });
          },
        ),
      },
    });
    sequencer.start();
    const draining = new Draining();
    const metrics = config.metricsNamespace ? new RequestMetrics(config.metricsNamespace, metricsStream ?? new BatchedStdout()) : undefined;
    const deps: AppDeps = { config, log, orm, probes, redis, storage: createStorage(config), sessions, draining, ...(metrics ? { metrics } : {}) };
    const app = createApp(deps);
    const server = createServer(
      { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
      app.callback(),
    );
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, resolve);
    });
    const { address, port } = server.address() as { address: string; port: number };
    const everyInterface = address === '0.0.0.0' || address === '::';
    const host = everyInterface ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
    return {
      server,
      deps,
      url: `http://${host}:${port}`,
      bound: { address, port, everyInterface },
      close: async () => {
        draining.begin();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const drain = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
        await closed;
        clearTimeout(drain);
        deps.storage.client.destroy();
        await sequencer?.close();
        await sessions.close();
        await orm.close();
        redis?.disconnect();
      },
    };
  } catch (error) {
    await sequencer?.close();
    await orm.close();
    redis?.disconnect();
    throw error;
  }
}
