import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context, Middleware } from 'koa';
import { canonicalJson } from '../audit/chain.js';
import { HttpError, validationFailed } from './errors.js';

/** How long a key answers for its first request (the draft leaves it to the server; 24 h). */
export const IDEMPOTENCY_WINDOW_HOURS = 24;

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** A Structured Field string (`"…"`, as the draft writes it) or the bare token clients often send. */
const KEY = /^"?([\x21\x23-\x5b\x5d-\x7e]{1,255})"?$/;

function parseKey(header: string): string {
  const match = KEY.exec(header.trim());
  if (!match || header.trim().startsWith('"') !== header.trim().endsWith('"')) {
    throw validationFailed({ [IDEMPOTENCY_HEADER]: 'must be 1 to 255 visible ASCII characters, optionally in double quotes' });
  }
  return match[1]!;
}

const keyReused = () =>
  new HttpError(422, 'idempotency_key_reused', 'This Idempotency-Key was already used with a different request.');

/** The request as the key binds it: the route, its ids and the JSON body (key order does not matter). */
function fingerprint(ctx: Context): string {
  const { _matchedRoute: route, params } = ctx as Context & { _matchedRoute?: string; params?: Record<string, string> };
  return createHash('sha256').update(canonicalJson({ method: ctx.method, route, params, body: ctx.request.body ?? null })).digest('hex');
}

interface StoredKey {
  request_hash: string;
  status_code: number;
  response: unknown;
}

/**
 * Claims `key` for this request inside `tx`: `undefined` when this request is to run (a new key,
 * or one older than the window), the stored first response when one has committed. A concurrent
 * request with the same key waits here until the first one commits or rolls back.
 */
async function claim(tx: EntityManager, userId: string, key: string, hash: string): Promise<StoredKey | undefined> {
  // Responses hold PHI: keys past the window go, a batch at a time, whoever's they are.
  await tx.execute(`delete from idempotency_keys where (user_id, key) in (
    select user_id, key from idempotency_keys where created_at < now() - interval '${IDEMPOTENCY_WINDOW_HOURS} hours'
    order by created_at limit 100 for update skip locked)`);
  const claimed = await tx.execute<unknown[]>(
    `insert into idempotency_keys (user_id, key, request_hash) values (?, ?, ?)
     on conflict (user_id, key) do update set request_hash = excluded.request_hash, status_code = null, response = null, created_at = now()
       where idempotency_keys.created_at < now() - interval '${IDEMPOTENCY_WINDOW_HOURS} hours'
     returning key`,
    [userId, key, hash],
  );
  if (claimed.length) return undefined;
  const [stored] = await tx.execute<StoredKey[]>('select request_hash, status_code, response from idempotency_keys where user_id = ? and key = ?', [userId, key]);
  return stored;
}

/**
 * Runs the route's own transactions inside `tx`: the change, its audit rows and the key's stored
 * response commit together. Each call flushes as a transaction of its own would, so a constraint a
 * route maps to 409 is still met inside its call.
 */
function joining(tx: EntityManager): EntityManager {
  const join = async (work: (em: EntityManager) => Promise<unknown>) => {
    const result = await work(tx);
    await tx.flush();
    return result;
  };
  tx.transactional = join as EntityManager['transactional'];
  return tx;
}

/** Marks the middleware, so a test can tell which routes honour the header. */
export const IDEMPOTENT = Symbol('idempotent');

/**
 * `Idempotency-Key` on a route that creates something: the same key and body from the same user
 * within 24 h answers the first response again (`Idempotent-Replayed: true`) without creating
 * anything; the same key with another body is 422 `idempotency_key_reused`. Without the header
 * the route runs as it always does. Only a success is kept: an error changed nothing, so a retry
 * runs the request again. Compose it right after the route's access guard.
 */
export function idempotent(): Middleware & { [IDEMPOTENT]: true } {
  const middleware: Middleware = async (ctx, next) => {
    const header = ctx.get(IDEMPOTENCY_HEADER);
    if (!header) return next();
    const key = parseKey(header);
    const userId = ctx.state.user!.id;
    const hash = fingerprint(ctx);
    // A fork of its own: the transaction runs the rest of the request, so it is never run twice.
    await ctx.state.em.fork().transactional(async (tx) => {
      const stored = await claim(tx, userId, key, hash);
      if (stored) {
        if (stored.request_hash !== hash) throw keyReused();
        ctx.status = stored.status_code;
        ctx.body = stored.response;
        ctx.set('Idempotent-Replayed', 'true');
        return;
      }
      ctx.state.em = joining(tx);
      await next();
      if (ctx.status >= 200 && ctx.status < 300) {
        await tx.execute('update idempotency_keys set status_code = ?, response = ?::jsonb where user_id = ? and key = ?',
          [ctx.status, JSON.stringify(ctx.body ?? null), userId, key]);
      } else {
        await tx.execute('delete from idempotency_keys where user_id = ? and key = ?', [userId, key]);
      }
    });
  };
  return Object.assign(middleware, { [IDEMPOTENT]: true as const });
}
