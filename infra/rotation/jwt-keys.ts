/**
 * The JWT_KEYS list (CONTRACT §1: a JSON array, the first key signs, every key verifies) and its
 * automatic rotation: two-phase, one phase per rotation, so one redeploy is always safe.
 *
 * A task reads the list once, at start, and a deployment replaces tasks one by one: while it rolls,
 * old and new tasks verify each other's tokens. So a key must be known to every running task before
 * any task signs with it, and a key that signed must stay until its tokens (15 minutes) expire.
 * Each rotation therefore promotes the key the previous rotation staged (every task has verified
 * with it since), keeps the key that signed until now, and stages a fresh one at the end of the list:
 *
 *   [A]           -> [A, B]        first rotation: B staged (verify only), A still signs
 *   [A, B]        -> [B, A, C]     B signs, A verifies the tokens it signed, C staged
 *   [B, A, C]     -> [C, B, D]     A has signed nothing for a whole rotation period: dropped
 *
 * `npm run ops -- rotate-jwt-key` (the runbook's emergency path) reads the same list: it takes the
 * last key, when newer than the first, for a staged one.
 */
import { randomBytes } from 'node:crypto';
import { RotationError, type RotationStrategy } from './protocol.js';

/**
 * One entry of JWT_KEYS. `createdAt` is ours: the API reads kid, alg and the key material and
 * ignores other fields, so a rotation can tell how old a key is.
 */
export interface JwtKeyEntry {
  kid: string;
  alg: string;
  createdAt?: string;
  [field: string]: unknown;
}

export const HMAC_SECRET_BYTES = 32;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/**
 * A staged key signs only once the list that staged it has been current this long: the deployment
 * that followed (minutes) has long replaced every task that did not know it.
 */
export const STAGED_KEY_MIN_AGE_MS = HOUR_MS;
/**
 * Verify-only keys older than the signing key leave the list only when the list has not changed for
 * this long: the signing key alone has signed for a day, far beyond a token's 15 minutes.
 */
export const RETIRE_AFTER_MS = DAY_MS;

/**
 * When a key was added: its createdAt, else the date in a `k-yyyymmdd-…` kid counted as the END of
 * that day (a kid carries no time of day; erring late never retires a key too early).
 */
export function keyAddedAt(key: JwtKeyEntry): Date | undefined {
  if (typeof key.createdAt === 'string' && !Number.isNaN(Date.parse(key.createdAt))) return new Date(key.createdAt);
  const match = /^k-(\d{4})(\d{2})(\d{2})-/.exec(key.kid);
  if (!match) return undefined;
  const startOfDay = Date.parse(`${match[1]}-${match[2]}-${match[3]}T00:00:00Z`);
  return Number.isNaN(startOfDay) ? undefined : new Date(startOfDay + DAY_MS);
}

/** A key added after the signing key but not yet signing: the last one, when newer than the first. */
export function stagedKey(keys: readonly JwtKeyEntry[]): JwtKeyEntry | undefined {
  const last = keys.at(-1);
  const first = keys[0];
  if (keys.length < 2 || !last || !first) return undefined;
  const lastAdded = keyAddedAt(last);
  const firstAdded = keyAddedAt(first);
  return lastAdded && (!firstAdded || lastAdded > firstAdded) ? last : undefined;
}

export function newHmacKey(now: Date, existing: readonly JwtKeyEntry[]): JwtKeyEntry {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  let kid: string;
  do kid = `k-${day}-${randomBytes(4).toString('hex')}`;
  while (existing.some((key) => key.kid === kid));
  return { kid, alg: 'HS256', secret: randomBytes(HMAC_SECRET_BYTES).toString('base64url'), createdAt: now.toISOString() };
}

/** The list in a secret value, or a RotationError that never quotes the value (it holds signing keys). */
export function parseKeyList(value: string): JwtKeyEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  const valid =
    Array.isArray(parsed) &&
    parsed.length > 0 &&
    parsed.every((key) => typeof key === 'object' && key !== null && typeof (key as JwtKeyEntry).kid === 'string' && typeof (key as JwtKeyEntry).alg === 'string');
  if (!valid) throw new RotationError('the JWT keys secret is not a JSON array of {"kid","alg",…} keys');
  const keys = parsed as JwtKeyEntry[];
  if (new Set(keys.map((key) => key.kid)).size !== keys.length) throw new RotationError('the JWT keys secret repeats a kid');
  return keys;
}

/** The list after one rotation, from the current list and the time it became current. */
export function nextKeyList(keys: readonly JwtKeyEntry[], currentSince: Date, now: Date): JwtKeyEntry[] {
  const [signing] = keys;
  if (!signing) throw new RotationError('the JWT keys secret holds no key');
  const unchangedFor = now.getTime() - currentSince.getTime();
  const settled = unchangedFor >= RETIRE_AFTER_MS;
  const staged = stagedKey(keys);
  if (!staged) return [signing, ...(settled ? [] : keys.slice(1)), newHmacKey(now, keys)];
  if (unchangedFor < STAGED_KEY_MIN_AGE_MS) {
    throw new RotationError(
      `key ${staged.kid} was staged at ${currentSince.toISOString()}; it may sign only once every task has restarted with it: rotate again after ${new Date(currentSince.getTime() + STAGED_KEY_MIN_AGE_MS).toISOString()}`,
    );
  }
  return [staged, signing, ...(settled ? [] : keys.slice(1, -1)), newHmacKey(now, keys)];
}

/** Enough of the API's own JWT_KEYS check that a list this rotation writes is one the API starts with. */
function checkSignable(keys: readonly JwtKeyEntry[]): void {
  for (const key of keys) {
    if (!/^[\w.-]{1,64}$/.test(key.kid)) throw new RotationError(`key ${key.kid.slice(0, 64)} has a kid the API refuses`);
    if (key.alg === 'HS256' && (typeof key.secret !== 'string' || Buffer.byteLength(key.secret) < HMAC_SECRET_BYTES)) {
      throw new RotationError(`key ${key.kid} has no HS256 secret of ${HMAC_SECRET_BYTES} bytes`);
    }
  }
}

export interface JwtKeysDeps {
  now(): Date;
  /** Restarts the API so every task reads the new list (tasks read secrets at start only). */
  redeploy(): Promise<void>;
}

export function jwtKeysRotation(deps: JwtKeysDeps): RotationStrategy {
  return {
    create: (current) => JSON.stringify(nextKeyList(parseKeyList(current.value), current.createdAt, deps.now())),
    // The keys live in the secret only: there is no resource to tell.
    async set() {},
    async test(pending) {
      checkSignable(parseKeyList(pending));
    },
    async finish() {
      await deps.redeploy();
    },
  };
}
