import Koa from 'koa';
import type { Redis } from 'ioredis';
import { accountRoutes } from './auth/account-routes.js';
import { adminUserRoutes } from './auth/admin-users.js';
import type { LiveSessions } from './auth/live-sessions.js';
import { authentication } from './auth/middleware.js';
import { prepareDummyHash } from './auth/passwords.js';
import { authRoutes } from './auth/routes.js';
import { AccessTokens } from './auth/tokens.js';
import type { Config } from './config.js';
import type { Orm } from './db/orm.js';
import { retryingConflicts } from './db/transactions.js';
import { healthRoutes, type ReadinessProbe } from './health.js';
import { closeConnectionsWhileDraining, type Draining } from './http/draining.js';
import { routeMethods } from './http/route-methods.js';
import type { Logger } from './logger.js';
import { accessLog } from './middleware/access-log.js';
import { canonicalPath } from './middleware/canonical-path.js';
import { cors } from './middleware/cors.js';
import { errorBody } from './middleware/errors.js';
import { closeWhenBodyUnread } from './middleware/json-body.js';
import { requestId } from './middleware/request-id.js';
import { requestMetrics } from './middleware/request-metrics.js';
import { securityHeaders } from './middleware/security-headers.js';
import { traceRoute } from './middleware/trace-route.js';
import { rateLimits } from './ratelimit/middleware.js';
import { AccessTrail } from './audit/access.js';
import { auditRoutes } from './audit/routes.js';
import { openApiRoutes } from './openapi/routes.js';
import { medicineRoutes } from './records/medicines.js';
import { livePatientReads } from './records/lookup.js';
import { patientRoutes } from './records/patients.js';
import { prescriptionRoutes } from './records/prescriptions.js';
import { rxPresetRoutes } from './records/presets.js';
import { reportRoutes } from './records/reports.js';
import { visitRoutes } from './records/visits.js';
import { xrayRoutes } from './records/xrays.js';
import type { RequestMetrics } from './metrics/emf.js';
import type { Storage } from './storage/s3.js';
import './http/state.js';

/** Everything the app needs from outside; a test builds one with any configuration. */
export interface AppDeps {
  config: Config;
  log: Logger;
  orm: Orm;
  /** What `/health/ready` asks: the primary, each replica, Redis when configured. */
  probes: ReadinessProbe[];
  redis?: Redis;
  /** S3: X-ray uploads and downloads, prescription documents. */
  storage: Storage;
  /** Which access-token sessions are live (checked on every authenticated request). */
  sessions: LiveSessions;
  /** Set when SIGTERM starts the drain. */
  draining: Draining;
  /** Per-request EMF metrics (`METRICS_NAMESPACE`); absent, none are written. */
  metrics?: RequestMetrics;
}

export function createApp(deps: AppDeps): Koa {
  const { config, log, orm, probes } = deps;
  // Behind the ALB, trust exactly the hops we run: Koa then takes the address the last trusted
  // proxy appended to X-Forwarded-For, not the leftmost entry a client can write.
  const app = new Koa({ proxy: config.trustProxyHops > 0, maxIpsCount: config.trustProxyHops });
  app.silent = true;
  app.on('error', (error: unknown) => {
    log.error(error instanceof Error ? 'unhandled_error' : 'unhandled_error_non_error', {
      ...(error instanceof Error ? { errorName: error.name, errorMessage: error.message } : {}),
      where: 'koa',
    });
  });

  const health = healthRoutes(probes, deps.draining);
  const tokens = new AccessTokens(config.jwtKeys ?? []);
  const primaryPool = () => orm.em.getConnection('write').getNativeClient();
  const accessTrail = new AccessTrail(primaryPool, config.accessRecords);
  // Ready before the first sign-in, so an unknown e-mail is never slower than a known one.
  void prepareDummyHash();

  app
    .use(requestId(log))
    .use(traceRoute())
    .use(accessLog())
    .use(requestMetrics(deps.metrics))
    .use(closeConnectionsWhileDraining(deps.draining))
    .use(securityHeaders())
    .use(closeWhenBodyUnread())
    .use(errorBody())
    .use(canonicalPath())
    // Preflights are answered here: before the rate limiter and authentication, which never see them.
    .use(cors(config.corsOrigins, routeMethods()))
    .use(health.routes())
    .use(openApiRoutes().routes())
    .use(rateLimits({ ...deps, tokens }))
    .use(async (ctx, next) => {
      ctx.state.em = retryingConflicts(orm.em.fork(), ctx.state.log);
      await next();
    })
    .use(async (ctx, next) => {
      ctx.state.accessTrail = accessTrail;
      await next();
    })
    .use(authentication(tokens, deps.sessions))
    .use(authRoutes(tokens, config).routes())
    .use(accountRoutes(config).routes())
    .use(adminUserRoutes().routes())
    .use(patientRoutes(livePatientReads(primaryPool)).routes())
    .use(visitRoutes().routes())
    .use(xrayRoutes(deps.storage).routes())
    .use(prescriptionRoutes(deps.storage).routes())
    .use(medicineRoutes().routes())
    .use(rxPresetRoutes().routes())
    .use(reportRoutes().routes())
    .use(auditRoutes().routes());

  return app;
}
