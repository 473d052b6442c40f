import { validationFailed } from './errors.js';
import { accepted, checkQuery, isoInstant, text, uuid, type Infer, type Problems, type Shape } from './validation.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

/** What a list answers (CONTRACT §2). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * Where a keyset page resumes: the sort key of the last item served. Encoded as opaque base64url
 * so clients pass it back untouched and the order of the key can change without breaking them.
 */
export interface PageRequest<K> {
  limit: number;
  after?: K;
}

/**
 * Reads one cursor's decoded parts back into a sort key, or `undefined` when they are not one.
 * `decode` checks each part with the rule that checks the same value as input (so a value the
 * database would refuse, such as a seq beyond `bigint` or the date 0000-00-00, never reaches it).
 */
export type CursorKey<K> = {
  encode(key: K): unknown[];
  decode(parts: unknown[]): K | undefined;
};

export function encodeCursor(parts: unknown[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

function decodeCursor(raw: string): unknown[] | undefined {
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(raw)) return undefined;
  try {
    const parts: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    return Array.isArray(parts) ? parts : undefined;
  } catch {
    return undefined;
  }
}

/** The parameters every list takes besides its filters. */
const PAGING = ['limit', 'cursor'] as const;

/** `limit` (default 50, capped at 200) and `cursor`, recording what is malformed in `problems`. */
function checkPage<K>(query: Record<string, string | string[] | undefined>, key: CursorKey<K>, problems: Problems): PageRequest<K> {
  let limit = DEFAULT_LIMIT;
  const rawLimit = query.limit;
  if (rawLimit !== undefined) {
    if (typeof rawLimit !== 'string' || !/^\d{1,6}$/.test(rawLimit) || Number(rawLimit) < 1) problems.limit = 'must be a whole number of at least 1';
    else limit = Math.min(Number(rawLimit), MAX_LIMIT);
  }
  let after: K | undefined;
  const rawCursor = query.cursor;
  if (rawCursor !== undefined) {
    const parts = typeof rawCursor === 'string' ? decodeCursor(rawCursor) : undefined;
    after = parts && key.decode(parts);
    // Only the exact parts this list encodes are a cursor it issued (no other spelling of a time, an id or a name).
    if (after !== undefined && JSON.stringify(key.encode(after)) !== JSON.stringify(parts)) after = undefined;
    if (after === undefined) problems.cursor = 'is not a cursor this list issued';
  }
  return { limit, ...(after !== undefined ? { after } : {}) };
}

/**
 * A list's whole query string: its `filters` (rules of api/http/validation.ts), `limit` and
 * `cursor`. Any other parameter is 422 like an unknown body field; every problem is reported at once.
 */
export function listQuery<K, S extends Shape = Record<never, never>>(
  query: Record<string, string | string[] | undefined>,
  key: CursorKey<K>,
  filters: S = {} as S,
): { page: PageRequest<K>; filters: Infer<S> } {
  const problems: Problems = {};
  const parsed = checkQuery(filters, query, problems, PAGING);
  const page = checkPage(query, key, problems);
  if (!parsed || Object.keys(problems).length > 0) throw validationFailed(problems);
  return { page, filters: parsed };
}

/**
 * Builds the page from up to `limit + 1` rows fetched past the cursor: the extra row only says
 * another page exists, so the last page never points at an empty one.
 */
export function pageOf<R, T>(rows: R[], limit: number, cursorOf: (row: R) => unknown[], present: (row: R) => T): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map(present), nextCursor: rows.length > limit && last !== undefined ? encodeCursor(cursorOf(last)) : null };
}

/** A sort key: one column's value and the id that breaks ties. */
export type SortKey<F extends string, V> = Record<F, V> & { id: string };

/** Keys on a timestamp column (`createdAt`, `visitedAt`), exact to the millisecond: migration 0007 stores these at that precision. */
export function instantKey<F extends string>(field: F): CursorKey<SortKey<F, Date>> {
  return {
    encode: (row) => [row[field].toISOString(), row.id],
    decode(parts) {
      const instant = accepted(isoInstant(), parts[0]);
      const id = accepted(uuid(), parts[1]);
      if (parts.length !== 2 || instant === undefined || id === undefined) return undefined;
      return { [field]: instant, id } as SortKey<F, Date>;
    },
  };
}

/** Keys on a text column (names, for alphabetical lists). */
export function textKey<F extends string>(field: F): CursorKey<SortKey<F, string>> {
  return {
    encode: (row) => [row[field], row.id],
    decode(parts) {
      const value = accepted(text({ max: 1000 }), parts[0]);
      const id = accepted(uuid(), parts[1]);
      if (parts.length !== 2 || value === undefined || id === undefined) return undefined;
      return { [field]: value, id } as SortKey<F, string>;
    },
  };
}

/**
 * The keyset condition "strictly after `after`" on (`field`, id), in MikroORM's filter syntax:
 * `desc` for newest-first lists, `asc` for alphabetical ones.
 */
export function keysetAfter<F extends string, V>(field: F, after: SortKey<F, V> | undefined, direction: 'asc' | 'desc'): Record<string, unknown> {
  if (!after) return {};
  const beyond = direction === 'desc' ? '$lt' : '$gt';
  return { $or: [{ [field]: { [beyond]: after[field] } }, { [field]: after[field], id: { [beyond]: after.id } }] };
}

/** The key of every newest-first list: (createdAt, id). */
export const createdKey = instantKey('createdAt');

export const createdBefore = (after: SortKey<'createdAt', Date> | undefined) => keysetAfter('createdAt', after, 'desc');
