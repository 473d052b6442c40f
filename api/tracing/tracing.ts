import { createRequire } from 'node:module';
import { context, propagation, trace } from '@opentelemetry/api';
import { AWSXRayIdGenerator } from '@opentelemetry/id-generator-aws-xray';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { AwsInstrumentation } from '@opentelemetry/instrumentation-aws-sdk';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ScrubbingSpanProcessor } from './scrub.js';

/**
 * The modules the instrumentations patch. The app is ESM (run by tsx, or as compiled ESM), and
 * OpenTelemetry's Node instrumentations hook `require`: an `import` never passes through that hook.
 * pg, ioredis, the AWS SDK and node:http are CommonJS (the SDK has no `exports` map, so Node loads
 * its `main`, dist-cjs), and Node keeps one instance of a CommonJS module for `require` and `import`
 * alike; so requiring each once, after the instrumentations are enabled, patches the very objects
 * the app imported. The patches are on prototypes (`Client.prototype.query`, `Redis.prototype.
 * sendCommand`, `Server.prototype.emit`, the SDK's middleware stack), which is why a module the app
 * imported before tracing started is traced too. No `--import` loader hook (import-in-the-middle)
 * is needed. test/api/tracing.test.ts proves the spans appear.
 */
const PATCHED_MODULES = ['http', 'https', 'pg', 'pg-pool', 'ioredis', '@smithy/middleware-stack', '@smithy/smithy-client', '@smithy/core/client', '@aws-sdk/middleware-stack', '@aws-sdk/smithy-client'];
/**
 * Packages that may bring their own copy of a patched module: npm nests a second `pg` under the
 * ORM's driver when the versions differ, and each copy is patched on its own.
 */
const NESTING_PACKAGES = ['@mikro-orm/postgresql'];

export interface TracingOptions {
  /** Where finished spans go: OTLP to the collector sidecar in production, memory in tests. */
  exporter: SpanExporter;
  /** Share of requests traced (0 to 1), decided at the request's server span; its children follow. */
  sampleRatio: number;
  environment: string;
  /** Export each span as it ends (tests) instead of in batches (production). */
  exportEachSpan?: boolean;
}

export interface Tracing {
  /** Flushes what is pending, then unpatches the modules and removes the global tracer. */
  shutdown(): Promise<void>;
}

function requireFrom(location: string, name: string): void {
  try {
    createRequire(location)(name);
  } catch {
    // Not installed there (e.g. the pre-Smithy AWS SDK module names, or no nested copy).
  }
}

/** Requires each patched module from the app's own location and from each package that may nest a copy. */
function loadPatchedModules(): void {
  const own = createRequire(import.meta.url);
  const locations = [import.meta.url, ...NESTING_PACKAGES.map((name) => own.resolve(`${name}/package.json`))];
  for (const location of locations) for (const name of PATCHED_MODULES) requireFrom(location, name);
}

/**
 * Traces the API: a server span per request (named by route template in api/middleware/
 * trace-route.ts), with child spans for each SQL statement, Redis command and AWS call. What the
 * instrumentations record is narrowed at the source (no SQL parameter values, Redis commands without
 * arguments, no headers, health probes untraced) and scrubbed again before export
 * (api/tracing/scrub.ts). Incoming `traceparent` headers are ignored: a client neither picks our
 * trace ids nor forces a request to be sampled.
 */
export function startTracing(options: TracingOptions): Tracing {
  const exporting = options.exportEachSpan ? new SimpleSpanProcessor(options.exporter) : new BatchSpanProcessor(options.exporter);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'dms-api', 'deployment.environment.name': options.environment }),
    // X-Ray wants the first 32 bits of a trace id to be the start time in epoch seconds.
    idGenerator: new AWSXRayIdGenerator(),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) }),
    spanProcessors: [new ScrubbingSpanProcessor(exporting)],
  });
  provider.register({ propagator: null });
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        // The load balancer's health checks every few seconds would be most of the traces.
        ignoreIncomingRequestHook: (request) => (request.url ?? '').startsWith('/health'),
        // Outgoing calls (the AWS SDK's) are traced only inside a request.
        requireParentforOutgoingSpans: true,
      }),
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false, addSqlCommenterCommentToQueries: false }),
      // The command, never its arguments: keys carry user ids and client addresses, values tokens.
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
      new AwsInstrumentation({ suppressInternalInstrumentation: true }),
    ],
  });
  loadPatchedModules();
  return {
    shutdown: async () => {
      await provider.forceFlush();
      unregister();
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
