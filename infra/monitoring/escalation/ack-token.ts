/**
 * The acknowledge link's token: `<payload>.<signature>`, both base64url. The payload names the
 * execution, the level and the recipient it was sent to, and when it expires; the signature is
 * HMAC-SHA256 with the stack's key over a domain tag and the payload, so a token cannot be forged,
 * altered, or replayed against another stack. One-time use is enforced where it is consumed (a
 * conditional write per execution), not here.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Level, Recipient } from './levels.js';

/** How long a link works: long enough for the last level, short enough to be useless later. */
export const ACK_LINK_TTL_SECONDS = 2 * 60 * 60;

/** Key size the stack generates (bytes); shorter keys are refused. */
export const ACK_KEY_MIN_BYTES = 32;

const DOMAIN = 'dms-escalation-ack-v1';

export interface AckClaims {
  /** Step Functions execution name (the last part of its ARN). */
  execution: string;
  level: Level;
  recipient: Recipient;
  /** Expiry, seconds since the epoch. */
  expiresAt: number;
}

/** Why a token was refused; each maps to its own HTTP status and error code. */
export class AckTokenError extends Error {
  constructor(
    readonly code: 'malformed_token' | 'invalid_signature' | 'token_expired',
    message: string,
  ) {
    super(message);
    this.name = 'AckTokenError';
  }
}

function keyBytes(key: string): Buffer {
  const bytes = Buffer.from(key, 'base64url');
  if (bytes.length < ACK_KEY_MIN_BYTES) throw new Error(`the acknowledge signing key must be at least ${ACK_KEY_MIN_BYTES} bytes`);
  return bytes;
}

function sign(payload: string, key: string): Buffer {
  return createHmac('sha256', keyBytes(key)).update(`${DOMAIN}.${payload}`).digest();
}

export function signAckToken(claims: AckClaims, key: string): string {
  const payload = Buffer.from(
    JSON.stringify({ e: claims.execution, l: claims.level, r: claims.recipient, x: claims.expiresAt }),
  ).toString('base64url');
  return `${payload}.${sign(payload, key).toString('base64url')}`;
}

const RECIPIENTS: readonly string[] = ['channel', 'primaryOnCall', 'backupOnCall'];

/** The claims of a token signed with `key` that has not expired at `now`; throws `AckTokenError` otherwise. */
export function verifyAckToken(token: string, key: string, now: Date): AckClaims {
  const parts = token.split('.');
  if (parts.length !== 2 || !parts.every((part) => /^[A-Za-z0-9_-]+$/.test(part))) {
    throw new AckTokenError('malformed_token', 'the acknowledge link is incomplete or damaged');
  }
  const [payload = '', signature = ''] = parts;
  const expected = sign(payload, key);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new AckTokenError('invalid_signature', 'the acknowledge link was not issued by this stack');
  }
  let raw: { e?: unknown; l?: unknown; r?: unknown; x?: unknown };
  try {
    raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof raw;
  } catch {
    throw new AckTokenError('malformed_token', 'the acknowledge link is incomplete or damaged');
  }
  const { e, l, r, x } = raw;
  if (
    typeof e !== 'string' || !/^[\w-]{1,80}$/.test(e) ||
    typeof l !== 'number' || ![1, 2, 3, 4].includes(l) ||
    typeof r !== 'string' || !RECIPIENTS.includes(r) ||
    typeof x !== 'number' || !Number.isInteger(x)
  ) {
    throw new AckTokenError('malformed_token', 'the acknowledge link is incomplete or damaged');
  }
  if (now.getTime() >= x * 1000) {
    throw new AckTokenError('token_expired', `the acknowledge link expired at ${new Date(x * 1000).toISOString()}`);
  }
  return { execution: e, level: l as Level, recipient: r as Recipient, expiresAt: x };
}
