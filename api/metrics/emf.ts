import type { Writable } from 'node:stream';

/**
 * Per-route golden signals as CloudWatch Embedded Metric Format records: one JSON line per request,
 * which CloudWatch Logs turns into metrics when it ingests the line (no metric filter per route, no
 * PutMetricData call). The format: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 * (an `_aws` block naming the namespace, the dimension sets and the metrics; each dimension and
 * metric a top-level member of the same object; at most 30 dimensions in a set, 100 metrics).
 */

/** What the SLOs group routes by (docs/monitoring.md): a latency objective each, except `probes`. */
export type RouteClass = 'reads' | 'writes' | 'auth' | 'probes';

/** Status classes as dimension values: a handful of series per route, never one per status. */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/**
 * What each record publishes. Every distinct set of dimension values is a custom metric, billed
 * monthly, so each metric gets only the dimensions it needs: traffic by route and status class,
 * latency (p50/p95/p99) and errors by route, and latency by route class for the SLOs
 * (docs/monitoring.md#service-level-objectives has the count and the cost).
 */
export const EMF_DIRECTIVES = [
  { Dimensions: [['Route', 'Method', 'StatusClass']], Metrics: [{ Name: 'Requests', Unit: 'Count' }] },
  { Dimensions: [['Route', 'Method']], Metrics: [{ Name: 'Latency', Unit: 'Milliseconds' }, { Name: 'Errors', Unit: 'Count' }] },
  { Dimensions: [['RouteClass']], Metrics: [{ Name: 'Latency', Unit: 'Milliseconds' }] },
] as const;

/** One request as the metrics see it: the route template, never the path as sent. */
export interface RequestSample {
  route: string;
  method: string;
  status: number;
  latencyMs: number;
  /** Properties, not dimensions: they let Logs Insights go from a metric to the request's log lines and trace. */
  requestId: string;
  traceId?: string;
}

export function statusClass(status: number): StatusClass {
  const hundreds = Math.min(5, Math.max(1, Math.floor(status / 100)));
  return `${hundreds}xx` as StatusClass;
}

/**
 * The route class of an operation: health and the API description are `probes` (the load balancer
 * polls them; they would flatter every objective); sign-in and token routes are `auth` (slow by
 * design: argon2); other GETs are `reads`; everything else changes something (`writes`).
 */
export function routeClass(method: string, route: string): RouteClass {
  if (route.startsWith('/health') || route.startsWith('/openapi')) return 'probes';
  if (route === '/auth' || route.startsWith('/auth/')) return 'auth';
  return method === 'GET' || method === 'HEAD' ? 'reads' : 'writes';
}

/** The EMF record of one request (a plain object; `JSON.stringify` it as one line). */
export function emfRecord(namespace: string, sample: RequestSample, timestampMs: number): Record<string, unknown> {
  const klass = statusClass(sample.status);
  return {
    _aws: {
      Timestamp: timestampMs,
      CloudWatchMetrics: EMF_DIRECTIVES.map((directive) => ({ Namespace: namespace, ...directive })),
    },
    Route: sample.route,
    Method: sample.method,
    StatusClass: klass,
    RouteClass: routeClass(sample.method, sample.route),
    Requests: 1,
    // Microsecond resolution is plenty, and keeps the line short.
    Latency: Math.round(sample.latencyMs * 1000) / 1000,
    Errors: klass === '5xx' ? 1 : 0,
    requestId: sample.requestId,
    ...(sample.traceId ? { traceId: sample.traceId } : {}),
  };
}

/** Writes one EMF line per request to a stream (stdout in production, a capture in tests). */
export class RequestMetrics {
  constructor(
    private readonly namespace: string,
    private readonly stream: Writable,
  ) {}

  record(sample: RequestSample): void {
    this.stream.write(`${JSON.stringify(emfRecord(this.namespace, sample, Date.now()))}\n`);
  }
}
