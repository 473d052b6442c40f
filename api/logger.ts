import { Writable } from 'node:stream';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import winston from 'winston';
import type { Environment, LogLevel } from './config.js';

export type Logger = winston.Logger;

/**
 * Keys whose values are credentials wherever they appear in a log record: whatever the scheme of
 * an `Authorization` (Basic, Digest, a bare key) or the shape of a cookie, the whole value goes.
 */
const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|api[-_]?key|private_?key|signature|credential|^url$|^sql$/i;

/**
 * Credentials that can hide inside free text: JWTs, bearer and basic credentials, header lines
 * (`Authorization: …`, `Cookie: …`, `X-Api-Key: …`, also as a JSON dump's `"set-cookie":[…]`), and
 * SigV4 query parameters. A header line loses everything after its name up to the end of the line.
 */
const SECRET_TEXT: [RegExp, string][] = [
  [/eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*/g, '[redacted-jwt]'],
  [/\b((?:proxy-)?authorization|set-cookie|cookie|x-api-key|api[-_]?key)(["']?\s*[:=]\s*\[?\s*["']?)[^\r\n"']+/gi, '$1$2[redacted]'],
  [/Bearer\s+[^\s"',]+/gi, 'Bearer [redacted]'],
  [/Basic\s+[A-Za-z0-9+/=._~-]{4,}/gi, 'Basic [redacted]'],
  [/(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"']+/gi, '$1[redacted]'],
];

const REDACTED = '[redacted]';
/** Nesting kept in a record; anything deeper is dropped rather than logged unread. */
const MAX_DEPTH = 6;
const TOO_DEEP = '[too deep]';

function scrubText(text: string): string {
  return SECRET_TEXT.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? REDACTED : scrub(inner, depth + 1);
  }
  return out;
}

/**
 * The trace id of the span the line is written under (a request's server span, or one of its
 * children), so a log line leads to its trace and a trace to its lines. Without tracing there is no
 * active span and no field.
 */
const traceContext = winston.format((info) => {
  const span = trace.getSpan(context.active());
  if (span && isSpanContextValid(span.spanContext())) info.traceId = span.spanContext().traceId;
  return info;
});

/** Redacts secrets in place: winston formats must return the same info object (it carries symbols). */
const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    info[key] = SECRET_KEY.test(key) ? REDACTED : scrub(info[key], 0);
  }
  return info;
});

/**
 * stdout, one write per event-loop turn: a pipe write on Linux is synchronous, so a line per
 * request would cost a syscall per request. Lines still leave in order, within the same turn
 * of the loop, and whatever is pending is written before the process exits.
 */
export class BatchedStdout extends Writable {
  private pending: string[] = [];
  private scheduled = false;

  constructor() {
    super({ decodeStrings: false });
    process.once('exit', () => this.flush());
  }

  override _write(line: string | Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.pending.push(line.toString());
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    done();
  }

  override _final(done: () => void): void {
    this.flush();
    done();
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending.join('');
    this.pending = [];
    process.stdout.write(lines);
  }
}

export interface LoggerOptions {
  level: LogLevel;
  env: Environment;
  service?: string;
  /** Where lines go; stdout by default. Tests pass a stream to read what was logged. */
  stream?: Writable;
}

/**
 * One JSON object per line (CONTRACT §5): `timestamp`, `level`, `event`, `service`, `env`, and
 * `reqId` on request-scoped child loggers; `traceId` on every line written inside a trace. Call as `log.info('event_name', { ...fields })`.
 */
export function createLogger({ level, env, service = 'dms-api', stream }: LoggerOptions): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { service, env },
    format: winston.format.combine(
      winston.format((info) => {
        info.event = info.message;
        delete (info as { message?: unknown }).message;
        return info;
      })(),
      redact(),
      traceContext(),
      winston.format.timestamp(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Stream({ stream: stream ?? new BatchedStdout() })],
  });
}
