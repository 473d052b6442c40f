import Koa from 'koa';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { Orm } from './db/orm.js';
import { healthRoutes, type ReadinessProbe } from './health.js';
import type { Logger } from './logger.js';
import { accessLog } from './middleware/access-log.js';
import { errorBody } from './middleware/errors.js';
import { jsonBody } from './middleware/json-body.js';
import { requestId } from './middleware/request-id.js';
import { securityHeaders } from './middleware/security-headers.js';
import './http/state.js';

/** Everything the app needs from outside; a test builds one with any configuration. */
export interface AppDeps {
  config: Config;
  log: Logger;
  orm: Orm;
  /** What `/health/ready` asks: the primary, each replica, Redis when configured. */
  probes: ReadinessProbe[];
  redis?: Redis;
}

const BODY_LIMIT_BYTES = 100 * 1024;

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

  const health = healthRoutes(probes);

  app
    .use(requestId(log))
    .use(accessLog())
    .use(securityHeaders())
    .use(errorBody())
    .use(health.routes())
    .use(async (ctx, next) => {
      ctx.state.em = orm.em.fork();
      await next();
    })
    .use(jsonBody(BODY_LIMIT_BYTES));

  return app;
}
