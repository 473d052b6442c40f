import { ConfigError, loadConfig } from './config.js';
import { provideEmbedded } from './embedded.js';
import { exitOnFatalErrors } from './fatal-errors.js';
import { createLogger } from './logger.js';
import { SHUTDOWN_DEADLINE_MS, startApi } from './server.js';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { startTracing } from './tracing/tracing.js';

/** The process: configuration once, embedded parts where development left a gap, serve, drain on SIGTERM. */
async function main(): Promise<void> {
  const loaded = loadConfig();
  const log = createLogger({ level: loaded.logLevel, env: loaded.env });
  exitOnFatalErrors(log);
  // Before the pools and the server exist, so their first connection is already traced.
  const tracing = loaded.tracing
    ? startTracing({ exporter: new OTLPTraceExporter({ url: `${loaded.tracing.endpoint}/v1/traces` }), sampleRatio: loaded.tracing.sampleRatio, environment: loaded.env })
    : undefined;
  const { config, embedded, recovered, stop: stopEmbedded } = await provideEmbedded(loaded);
  if (recovered.orphanedPostgresPid) {
    log.warn('embedded_postgres_orphan_stopped', {
      pid: recovered.orphanedPostgresPid,
      detail: `stopped the embedded PostgreSQL (pid ${recovered.orphanedPostgresPid}) a previous npm start left running in .data/postgres`,
    });
  }
  if (recovered.s3PortReplaced) {
    log.warn('embedded_s3_port_changed', {
      previousPort: recovered.s3PortReplaced,
      detail: `port ${recovered.s3PortReplaced} of the embedded S3 (.data/s3.port) is taken by another program; now ${config.s3.endpoint}: presigned URLs issued before point nowhere`,
    });
  }
  const api = await startApi({
    config: { ...config, databaseUrl: config.databaseUrl! },
    log,
    // Only the embedded database is ours to migrate; an external one is migrated by `npm run migrate`
    // (in production, the one-off migration task), as its owner rather than the API's role.
    migrate: embedded.includes('postgresql'),
  }).catch(async (error: unknown) => {
    await stopEmbedded();
    throw error;
  });
  const { address, port, everyInterface } = api.bound;
  const where = everyInterface ? `${address === '::' ? '[::]' : address}:${port} (every interface; from this machine ${api.url})` : api.url;
  log.info('startup', {
    detail: `listening on ${where}${embedded.length ? `; embedded: ${embedded.join(', ')}` : ''}${config.s3.endpoint && embedded.includes('s3') ? ` (S3 at ${config.s3.endpoint})` : ''}`,
    listen: api.url,
    bound: `${address}:${port}`,
    embedded,
    replicas: config.replicaUrls.length,
    redis: Boolean(config.redisUrl),
  });
  if (embedded.includes('jwt-dev-key')) {
    log.warn('dev_jwt_key_generated', { detail: 'JWT_KEYS is unset: tokens are signed with a key generated for this process only' });
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    const deadline = setTimeout(() => {
      log.error('shutdown_forced', { signal, durationMs: Date.now() - started, detail: 'the drain or the pools did not finish in time; exiting anyway' });
      log.on('finish', () => process.exit(1));
      log.end();
      // The logger may itself be what is stuck (a blocked stdout): a second later, exit regardless.
      setTimeout(() => process.exit(1), 1_000).unref();
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    await api.close();
    // The last spans (the drained requests') go to the collector before the process ends.
    await tracing?.shutdown();
    clearTimeout(deadline);
    await stopEmbedded();
    log.info('shutdown', { signal, durationMs: Date.now() - started });
    log.on('finish', () => process.exit(0));
    log.end();
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  // One line naming what is wrong, never a stack trace: on-call reads this in the task's stopped reason.
  const reason = error instanceof Error ? error.message || error.name : `${typeof error} thrown (${String(error)}), with no message`;
  const line = error instanceof ConfigError ? `configuration error: ${error.message}` : `start-up failed: ${reason}`;
  process.stderr.write(`dms-api: ${line}\n`);
  process.exit(1);
});
