import { validationFailed } from './errors.js';

/**
 * A small typed validator: each field is checked on its own and every problem is reported at once
 * (422 `validation_failed` with `fields: { name: problem }`), so a client fixes a form in one round.
 */
export type Problems = Record<string, string>;

type Outcome<T> = { ok: true; value: T } | { ok: false };

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses) fragment describing what a rule accepts. */
export type JsonSchema = Record<string, unknown>;

export interface Rule<T, Optional extends boolean = false> {
  readonly optional: Optional;
  /**
   * What the rule accepts, for the OpenAPI document: validation and documentation cannot drift.
   * Build rules with `rule(schema, check)` so they carry it; without one the document says "any".
   */
  readonly schema?: JsonSchema;
  /** Checks `value` found at `path`; on failure records why under `path` (or deeper, for nested input). */
  parse(value: unknown, path: string, problems: Problems): Outcome<T>;
}

type AnyRule = Rule<unknown, boolean>;
export type Shape = Record<string, AnyRule>;
type ValueOf<R> = R extends Rule<infer T, boolean> ? T : never;
/** The object a shape accepts: optional rules become optional keys. */
export type Infer<S extends Shape> = { [K in keyof S as S[K] extends Rule<unknown, true> ? never : K]: ValueOf<S[K]> } & {
  [K in keyof S as S[K] extends Rule<unknown, true> ? K : never]?: ValueOf<S[K]>;
};

/** A rule from its JSON Schema and a check that returns the accepted value, or a string saying what is wrong. */
export function rule<T>(schema: JsonSchema, check: (value: unknown) => { value: T } | string): Rule<T> {
  return {
    optional: false,
    schema,
    parse(value, path, problems) {
      const result = check(value);
      if (typeof result === 'string') {
        problems[path] = result;
        return { ok: false };
      }
      return { ok: true, value: result.value };
    },
  };
}

/** The field may be left out (undefined); it is then absent from the result. */
export function optional<T>(inner: Rule<T, boolean>): Rule<T | undefined, true> {
  return {
    optional: true,
    schema: inner.schema,
    parse: (value, path, problems) => (value === undefined ? { ok: true, value: undefined } : inner.parse(value, path, problems)),
  };
}

/** `null` is a value: it clears the field. */
export function nullable<T>(inner: Rule<T, boolean>): Rule<T | null> {
  return {
    optional: false,
    schema: { anyOf: [inner.schema ?? {}, { type: 'null' }] },
    parse: (value, path, problems) => (value === null ? { ok: true, value: null } : inner.parse(value, path, problems)),
  };
}

export function text({ max = 200, min = 1, pattern, hint }: { max?: number; min?: number; pattern?: RegExp; hint?: string } = {}): Rule<string> {
  return rule({ type: 'string', minLength: min, maxLength: max, ...(pattern ? { pattern: pattern.source } : {}) }, (value) => {
    if (typeof value !== 'string') return 'must be a string';
    const trimmed = value.trim();
    if (trimmed.length < min) return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
    if (trimmed.length > max) return `must be at most ${max} characters`;
    // NUL cannot be stored in PostgreSQL text; other control characters have no place in these fields.
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(trimmed)) return 'must not contain control characters';
    if (pattern && !pattern.test(trimmed)) return hint ?? 'has the wrong format';
    return { value: trimmed };
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

export function uuid(): Rule<string> {
  return rule({ type: 'string', format: 'uuid' }, (value) => (isUuid(value) ? { value: value.toLowerCase() } : 'must be a UUID'));
}

/** A calendar date `YYYY-MM-DD` that exists (no 2023-02-30), kept as the string. */
export function calendarDate({ notInFuture = false }: { notInFuture?: boolean } = {}): Rule<string> {
  return rule({ type: 'string', format: 'date' }, (value) => {
    if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return 'must be a date YYYY-MM-DD';
    const parsed = new Date(`${value}T00:00:00Z`);
    if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== value) return 'is not a real date';
    if (value < '1900-01-01') return 'must be 1900-01-01 or later';
    if (notInFuture && value > new Date().toISOString().slice(0, 10)) return 'must not be in the future';
    return { value };
  });
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** An ISO 8601 instant with an explicit offset (a clinic spans time zones; a bare local time is ambiguous). */
export function dateTime(): Rule<Date> {
  return rule({ type: 'string', format: 'date-time' }, (value) => {
    if (typeof value !== 'string' || !ISO_DATE_TIME.test(value)) return 'must be an ISO 8601 date-time with an offset, e.g. 2024-05-01T09:30:00Z';
    const parsed = new Date(value);
    if (Number.isNaN(parsed.getTime())) return 'is not a real date-time';
    const year = parsed.getUTCFullYear();
    if (year < 1900 || year > 2200) return 'is out of range';
    return { value: parsed };
  });
}

/** PostgreSQL's `bigint` range: a larger number is an error in the database, not a row it lacks. */
const BIGINT_MAX = 9_223_372_036_854_775_807n;

/** A positive whole number as its decimal string (a `bigint` column, e.g. the audit `seq`), within the column's range. */
export function positiveBigint(): Rule<string> {
  return rule({ type: 'string', pattern: '^[1-9][0-9]*$' }, (value) => {
    if (typeof value !== 'string' || !/^[1-9]\d{0,18}$/.test(value) || BigInt(value) > BIGINT_MAX) return `must be a whole number from 1 to ${BIGINT_MAX}`;
    return { value };
  });
}

/** An instant exactly as the API writes one (`toISOString()`: UTC, milliseconds), in years 0001–9999 as PostgreSQL and every client hold them. */
export function isoInstant(): Rule<Date> {
  return rule({ type: 'string', format: 'date-time' }, (value) => {
    if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(value) || value.startsWith('0000')) return 'must be an instant such as 2024-05-01T09:30:00.000Z';
    const parsed = new Date(value);
    if (Number.isNaN(parsed.getTime()) || parsed.toISOString() !== value) return 'is not a real instant';
    return { value: parsed };
  });
}

export function integer({ min, max }: { min: number; max: number }): Rule<number> {
  return rule({ type: 'integer', minimum: min, maximum: max }, (value) => {
    if (typeof value !== 'number' || !Number.isInteger(value)) return 'must be a whole number';
    if (value < min || value > max) return `must be between ${min} and ${max}`;
    return { value };
  });
}

export function boolean(): Rule<boolean> {
  return rule({ type: 'boolean' }, (value) => (typeof value === 'boolean' ? { value } : 'must be true or false'));
}

export function oneOf<const T extends string>(allowed: readonly T[]): Rule<T> {
  return rule({ type: 'string', enum: [...allowed] }, (value) => ((allowed as readonly unknown[]).includes(value) ? { value: value as T } : `must be one of ${allowed.join(', ')}`));
}

export const email = () => text({ max: 254, pattern: /^[^@\s]+@[^@\s]+\.[^@\s]+$/, hint: 'must be an e-mail address' });

export const phone = () => text({ max: 32, min: 3, pattern: /^\+?[0-9 ()./-]{3,32}$/, hint: 'must be a phone number' });

export function arrayOf<T>(item: Rule<T, boolean>, { min = 0, max }: { min?: number; max: number }): Rule<T[]> {
  return {
    optional: false,
    schema: { type: 'array', items: item.schema ?? {}, ...(min > 0 ? { minItems: min } : {}), maxItems: max },
    parse(value, path, problems) {
      if (!Array.isArray(value)) {
        problems[path] = 'must be an array';
        return { ok: false };
      }
      if (value.length < min || value.length > max) {
        problems[path] = min > 0 ? `must hold ${min} to ${max} items` : `must hold at most ${max} items`;
        return { ok: false };
      }
      const out: T[] = [];
      let ok = true;
      value.forEach((element, index) => {
        const parsed = item.parse(element, `${path}[${index}]`, problems);
        if (parsed.ok) out.push(parsed.value);
        else ok = false;
      });
      return ok ? { ok: true, value: out } : { ok: false };
    },
  };
}

function parseShape<S extends Shape>(shape: S, input: unknown, path: string, problems: Problems, { allowUnknown = false, partial = false } = {}): Outcome<Infer<S>> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problems[path || 'body'] = 'must be a JSON object';
    return { ok: false };
  }
  const source = input as Record<string, unknown>;
  const at = (key: string) => (path ? `${path}.${key}` : key);
  let ok = true;
  if (!allowUnknown) {
    for (const key of Object.keys(source)) {
      if (!Object.hasOwn(shape, key)) {
        problems[at(key)] = 'is not a known field';
        ok = false;
      }
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, fieldRule] of Object.entries(shape)) {
    const value = Object.hasOwn(source, key) ? source[key] : undefined;
    if (value === undefined && (partial || fieldRule.optional)) continue;
    if (value === undefined) {
      problems[at(key)] = 'is required';
      ok = false;
      continue;
    }
    const parsed = fieldRule.parse(value, at(key), problems);
    if (parsed.ok) {
      if (parsed.value !== undefined) out[key] = parsed.value;
    } else ok = false;
  }
  return ok ? { ok: true, value: out as Infer<S> } : { ok: false };
}

/** A nested object (e.g. a prescription item); problems are reported as `items[0].dose`. */
export function object<S extends Shape>(shape: S): Rule<Infer<S>> {
  return { optional: false, schema: shapeSchema(shape), parse: (value, path, problems) => parseShape(shape, value, path, problems) };
}

/** The JSON Schema of a body `shape` accepts; `partial` for a PATCH (nothing required). */
export function shapeSchema(shape: Shape, { partial = false } = {}): JsonSchema {
  const required = partial ? [] : Object.entries(shape).filter(([, r]) => !r.optional).map(([key]) => key);
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(shape).map(([key, r]) => [key, r.schema ?? {}])),
    ...(required.length ? { required } : {}),
    additionalProperties: false,
    ...(partial ? { minProperties: 1 } : {}),
  };
}

/** Validates a JSON body against `shape`; unknown fields are refused. Throws 422 with every bad field. */
export function parseBody<S extends Shape>(shape: S, body: unknown): Infer<S> {
  const problems: Problems = {};
  const parsed = parseShape(shape, body, '', problems);
  if (!parsed.ok) throw validationFailed(problems);
  return parsed.value;
}

/** A PATCH body: every field optional, at least one present. */
export function parsePatch<S extends Shape>(shape: S, body: unknown): Partial<Infer<S>> {
  const problems: Problems = {};
  const parsed = parseShape(shape, body, '', problems, { partial: true });
  if (!parsed.ok) throw validationFailed(problems);
  if (Object.keys(parsed.value).length === 0) throw validationFailed({ body: 'names no field to change' });
  return parsed.value;
}

/** The value `input` is, when `check` accepts it; `undefined` when it does not (the problem is not kept). */
export function accepted<T>(check: Rule<T, boolean>, input: unknown): T | undefined {
  const parsed = check.parse(input, '', {});
  return parsed.ok ? parsed.value : undefined;
}

/**
 * Checks query parameters (strings; a repeated parameter is an array and is refused) against
 * `shape`, recording problems; a parameter neither in `shape` nor in `alsoKnown` is refused as
 * an unknown body field is (`is not a known parameter`), so a misspelt filter is never silently
 * ignored. The problem names the parameter, never its value (a search string is PHI).
 */
export function checkQuery<S extends Shape>(shape: S, query: Record<string, string | string[] | undefined>, problems: Problems, alsoKnown: readonly string[] = []): Infer<S> | undefined {
  let unknown = false;
  for (const name of Object.keys(query)) {
    if (!Object.hasOwn(shape, name) && !alsoKnown.includes(name)) {
      problems[name] = 'is not a known parameter';
      unknown = true;
    }
  }
  const parsed = parseShape(shape, query, '', problems, { allowUnknown: true });
  return parsed.ok && !unknown ? parsed.value : undefined;
}
