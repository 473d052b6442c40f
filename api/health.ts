import pg from 'pg';
import { anyone } from './auth/access.js';
import type { Draining } from './http/draining.js';
import { apiRouter, type ApiRouter } from './http/router.js';
import type { Redis } from 'ioredis';

/** One dependency `/health/ready` asks; `check` rejects when it does not answer. */
export interface ReadinessProbe {
  name: string;
  /**
   * Whether the task can serve without it. A replica is optional: reads that may go to one fall
   * back to the primary when none answers, so a replica that is gone (promoted by a failover, or
   * down) degrades readiness instead of failing it, and never counts as the database unreachable.
   */
  optional?: boolean;
  check(): Promise<void>;
}

const PROBE_TIMEOUT_MS = 2_000;

/** Rejects when `work` has not settled within `ms` (it keeps running; its outcome is ignored). */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A fresh connection per probe: it proves the server answers now, not that a pooled socket once did.
 * `writable`: the server must also accept writes, i.e. not be a standby in recovery. A DATABASE_URL
 * left on a replica (a failover half done) answers reads and refuses every write; readiness says so.
 */
export function postgresProbe(name: string, connectionString: string, options: { optional?: boolean; writable?: boolean } = {}): ReadinessProbe {
  return {
    name,
    optional: options.optional ?? false,
    async check() {
      const client = new pg.Client({ connectionString, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const { rows } = await client.query<{ recovering: boolean }>('select pg_is_in_recovery() as recovering');
        if (options.writable && rows[0]?.recovering) throw new Error(`${name} is a standby in recovery: it refuses writes`);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
  };
}

/** The part of a `pg` pool a probe uses. */
interface ConnectionPool {
  connect(): Promise<{ query(text: string): Promise<unknown>; release(): void }>;
}

/**
 * The API's own pool hands out a connection that answers: a pool whose connections all leaked or
 * hang cannot serve a request, however well the server answers a fresh connection.
 */
export function poolProbe(name: string, pool: () => Promise<ConnectionPool>): ReadinessProbe {
  return {
    name,
    async check() {
      const client = await (await pool()).connect();
      try {
        await client.query('select 1');
      } finally {
        client.release();
      }
    },
  };
}

export function redisProbe(redis: Redis): ReadinessProbe {
  return {
    name: 'redis',
    async check() {
      await redis.ping();
    },
  };
}

/**
 * `GET /health` touches nothing; `GET /health/ready` asks every dependency at once, and fails
 * without asking while the process drains (it is leaving; nothing is wrong with its dependencies).
 * A required dependency down is 503 (`readiness_failed`); only optional ones down (a replica) is 200
 * `degraded`, logged as `readiness_degraded`.
 */
export function healthRoutes(probes: ReadinessProbe[], draining: Draining): ApiRouter {
  const router = apiRouter();
  router.get('/health', anyone(), (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/health/ready', anyone(), async (ctx) => {
    if (draining.active) {
      ctx.status = 503;
      ctx.body = { error: 'unavailable', message: 'The process is shutting down.', requestId: ctx.state.requestId, draining: true };
      return;
    }
    const results = await Promise.allSettled(probes.map((probe) => withTimeout(probe.check(), PROBE_TIMEOUT_MS)));
    const up = (i: number) => results[i]!.status === 'fulfilled';
    const dependencies = Object.fromEntries(probes.map((probe, i) => [probe.name, up(i) ? 'up' : 'down']));
    const ready = probes.every((probe, i) => probe.optional || up(i));
    const degraded = ready && !probes.every((_, i) => up(i));
    if (!ready) ctx.state.log.warn('readiness_failed', { dependencies });
    else if (degraded) ctx.state.log.warn('readiness_degraded', { dependencies });
    ctx.status = ready ? 200 : 503;
    ctx.body = ready
      ? { status: degraded ? 'degraded' : 'ready', dependencies }
      : {
          error: 'unavailable',
          message: 'A dependency is not answering.',
          requestId: ctx.state.requestId,
          dependencies,
        };
  });
  return router;
}
