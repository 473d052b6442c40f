import pg from 'pg';
import { anyone } from './auth/access.js';
import type { Draining } from './http/draining.js';
import { apiRouter, type ApiRouter } from './http/router.js';
import type { Redis } from 'ioredis';

/** One dependency `/health/ready` asks; `check` rejects when it does not answer. */
export interface ReadinessProbe {
  name: string;
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

/** A fresh connection per probe: it proves the server answers now, not that a pooled socket once did. */
export function postgresProbe(name: string, connectionString: string): ReadinessProbe {
  return {
    name,
    async check() {
      const client = new pg.Client({ connectionString, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('select 1');
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
    const dependencies = Object.fromEntries(
      probes.map((probe, i) => [probe.name, results[i]!.status === 'fulfilled' ? 'up' : 'down']),
    );
    const ready = results.every((result) => result.status === 'fulfilled');
    if (!ready) ctx.state.log.warn('readiness_failed', { dependencies });
    ctx.status = ready ? 200 : 503;
    ctx.body = ready
      ? { status: 'ready', dependencies }
      : {
          error: 'unavailable',
          message: 'A dependency is not answering.',
          requestId: ctx.state.requestId,
          dependencies,
        };
  });
  return router;
}
