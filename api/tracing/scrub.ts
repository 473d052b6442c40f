import type { Attributes, Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * Span attributes that may leave the process. An allow-list, not a deny-list: whatever an
 * instrumentation adds in a later version (a header, a URL, an argument) is dropped until someone
 * decides it carries no PHI, no credential and no query string. `url.path` and `url.query` (the
 * path as sent, with ids and a patient's name if a client put one there) are not on it: the server
 * span carries `http.route`, the template.
 */
const KEPT_ATTRIBUTES: ReadonlySet<string> = new Set([
  'http.request.method',
  'http.response.status_code',
  'http.route',
  'url.scheme',
  'server.address',
  'server.port',
  'network.protocol.version',
  'error.type',
  'db.system',
  'db.system.name',
  'db.namespace',
  'db.operation.name',
  'db.query.text',
  'rpc.system',
  'rpc.service',
  'rpc.method',
  'cloud.region',
  'aws.region',
  'aws.request.id',
  'aws.s3.bucket',
]);

const STRING_LITERAL = /'(?:[^']|'')*'/g;
const NUMBER_LITERAL = /(?<![$\w.])\d+(?:\.\d+)?\b/g;

/**
 * SQL text with every literal replaced: the ORM sends parameters ($1, $2) and the pg
 * instrumentation records no values, but a statement written with a literal in it would carry
 * that literal, so literals never leave either.
 */
export function scrubSql(text: string): string {
  return text.replace(STRING_LITERAL, "'?'").replace(NUMBER_LITERAL, '?');
}

export function scrubAttributes(attributes: Attributes): Attributes {
  const kept: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (!KEPT_ATTRIBUTES.has(key)) continue;
    kept[key] = key === 'db.query.text' && typeof value === 'string' ? scrubSql(value) : value;
  }
  return kept;
}

/** The span as exported: kept attributes only, exception events reduced to their type, no status message. */
function scrubbed(span: ReadableSpan): ReadableSpan {
  return Object.create(span, {
    attributes: { value: scrubAttributes(span.attributes) },
    events: {
      value: span.events.map((event) => ({
        ...event,
        // An exception's message and stack can quote a value (a database error's detail does).
        attributes: event.attributes?.['exception.type'] === undefined ? {} : { 'exception.type': event.attributes['exception.type'] },
      })),
    },
    status: { value: { code: span.status.code } },
  }) as ReadableSpan;
}

/**
 * Scrubs every span before the processor that exports it sees it: the second line of defence
 * behind the instrumentations' own settings (api/tracing/tracing.ts), which already leave out
 * parameter values, arguments and headers.
 */
export class ScrubbingSpanProcessor implements SpanProcessor {
  constructor(private readonly next: SpanProcessor) {}

  onStart(span: Span, parentContext: Context): void {
    this.next.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.next.onEnd(scrubbed(span));
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.next.shutdown();
  }
}
