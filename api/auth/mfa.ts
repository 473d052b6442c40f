import { createHash, randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { NobleCryptoPlugin, ScureBase32Plugin, TOTP, generateSecret, generateURI } from 'otplib';
import { conflict } from '../http/errors.js';

/**
 * TOTP multi-factor sign-in (RFC 6238 through `otplib`: SHA-1, 6 digits, 30-second steps, what
 * every authenticator app reads from an `otpauth://` URI), its recovery codes and the challenge
 * between a sign-in's two steps. Plain functions on the request's EntityManager; the routes audit
 * and log.
 */

/** The name authenticator apps show above the code. */
export const MFA_ISSUER = 'DMS';
export const RECOVERY_CODE_COUNT = 10;
/** A code of the step before or after the current one still counts: clocks drift, people type slowly. */
const CLOCK_DRIFT_S = 30;
const TOTP_CODE = /^\d{6}$/;
/** How long the second step of a sign-in may wait for its code, and how many wrong codes it takes. */
export const MFA_CHALLENGE_TTL_S = 5 * 60;
export const MFA_CHALLENGE_MAX_FAILURES = 5;

const TOTP_PLUGINS = { crypto: new NobleCryptoPlugin(), base32: new ScureBase32Plugin() };

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

export type MfaState = 'none' | 'pending' | 'enabled';

export async function mfaState(em: EntityManager, userId: string): Promise<MfaState> {
  const [row] = await em.execute<{ confirmed: boolean }[]>('select confirmed_at is not null as confirmed from auth_mfa where user_id = ?', [userId]);
  return !row ? 'none' : row.confirmed ? 'enabled' : 'pending';
}

/** Which of these users have MFA on (for the admins' user list). */
export async function usersWithMfa(em: EntityManager, userIds: readonly string[]): Promise<ReadonlySet<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await em.execute<{ user_id: string }[]>(
    `select user_id from auth_mfa where confirmed_at is not null and user_id in (${userIds.map(() => '?').join(', ')})`,
    [...userIds],
  );
  return new Set(rows.map((row) => row.user_id));
}

/**
 * Starts (or restarts) an enrolment with a new secret and answers its `otpauth://` URI: the only
 * time the secret leaves the server. 409 `mfa_already_enabled` when MFA is on.
 */
export async function startEnrolment(em: EntityManager, user: { id: string; email: string }): Promise<string> {
  const secret = generateSecret();
  const [row] = await em.execute<{ user_id: string }[]>(
    `insert into auth_mfa (user_id, secret, created_at) values (?, ?, now())
     on conflict (user_id) do update set secret = excluded.secret, created_at = now(), last_time_step = null
       where auth_mfa.confirmed_at is null
     returning user_id`,
    [user.id, secret],
  );
  if (!row) throw conflict('mfa_already_enabled', 'Multi-factor sign-in is already on; turn it off first (DELETE /auth/mfa) to enrol another device.');
  return generateURI({ issuer: MFA_ISSUER, label: user.email, secret });
}

/**
 * Accepts a TOTP code once: the code must be of the current step (or one step either side) and of
 * a later step than the last code accepted, and the step is recorded in the same conditional
 * UPDATE, so of two requests with one code exactly one succeeds. `pending` checks the code of an
 * enrolment not yet confirmed (and confirms it).
 */
async function acceptCode(em: EntityManager, userId: string, code: string, state: 'pending' | 'enabled'): Promise<boolean> {
  if (!TOTP_CODE.test(code)) return false;
  const [row] = await em.execute<{ secret: string; last_time_step: string | null }[]>(
    `select secret, last_time_step from auth_mfa where user_id = ? and (confirmed_at is not null) = ?`,
    [userId, state === 'enabled'],
  );
  if (!row) return false;
  const after = row.last_time_step === null ? undefined : Number(row.last_time_step);
  const result = await new TOTP({ secret: row.secret, ...TOTP_PLUGINS }).verify(code, { epochTolerance: CLOCK_DRIFT_S, ...(after === undefined ? {} : { afterTimeStep: after }) });
  if (!result.valid) return false;
  const accepted = await em.execute<{ user_id: string }[]>(
    `update auth_mfa set last_time_step = ?, confirmed_at = coalesce(confirmed_at, now())
     where user_id = ? and coalesce(last_time_step, -1) < ? returning user_id`,
    [result.timeStep, userId, result.timeStep],
  );
  return accepted.length === 1;
}

/** A TOTP code of a user whose MFA is on, accepted once (see `acceptCode`). */
export const acceptTotp = (em: EntityManager, userId: string, code: string) => acceptCode(em, userId, code, 'enabled');

/** Ten new recovery codes (80 random bits each, `xxxx-xxxx-xxxx-xxxx`); any earlier ones stop working. Only hashes are stored. */
async function replaceRecoveryCodes(em: EntityManager, userId: string): Promise<string[]> {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const chars = [...randomBytes(16)].map((byte) => alphabet[byte & 31]).join('');
    return chars.match(/.{4}/g)!.join('-');
  });
  await em.execute('delete from auth_mfa_recovery_codes where user_id = ?', [userId]);
  for (const code of codes) {
    await em.execute('insert into auth_mfa_recovery_codes (code_hash, user_id) values (?, ?)', [sha256(normaliseRecoveryCode(code)!), userId]);
  }
  return codes;
}

/**
 * Confirms a pending enrolment with a code from the device: MFA is on from now on, and the answer
 * is the recovery codes (shown once). `undefined` for a wrong code; 409 `mfa_not_pending` when
 * there is no enrolment to confirm.
 */
export async function confirmEnrolment(em: EntityManager, userId: string, code: string): Promise<string[] | undefined> {
  if ((await mfaState(em, userId)) !== 'pending') throw conflict('mfa_not_pending', 'There is no enrolment to confirm: start one with POST /auth/mfa/enroll.');
  if (!(await acceptCode(em, userId, code, 'pending'))) return undefined;
  return replaceRecoveryCodes(em, userId);
}

/** Recovery codes are typed by hand: case, spaces and dashes do not matter. */
function normaliseRecoveryCode(code: string): string | undefined {
  const normal = code.toLowerCase().replace(/[\s-]+/g, '');
  return /^[a-z2-7]{16}$/.test(normal) ? normal : undefined;
}

/** Spends one recovery code of the user (once: a conditional UPDATE); answers how many are left, or undefined. */
export async function useRecoveryCode(em: EntityManager, userId: string, code: string): Promise<{ remaining: number } | undefined> {
  const normal = normaliseRecoveryCode(code);
  if (!normal) return undefined;
  const spent = await em.execute<{ user_id: string }[]>(
    'update auth_mfa_recovery_codes set used_at = now() where code_hash = ? and user_id = ? and used_at is null returning user_id',
    [sha256(normal), userId],
  );
  if (spent.length !== 1) return undefined;
  const [left] = await em.execute<{ remaining: number }[]>('select count(*)::int as remaining from auth_mfa_recovery_codes where user_id = ? and used_at is null', [userId]);
  return { remaining: left!.remaining };
}

/** Turns MFA off and forgets its secret and recovery codes; true when there was something to remove. */
export async function removeMfa(em: EntityManager, userId: string): Promise<boolean> {
  await em.execute('delete from auth_mfa_recovery_codes where user_id = ?', [userId]);
  const removed = await em.execute<{ user_id: string }[]>('delete from auth_mfa where user_id = ? returning user_id', [userId]);
  return removed.length > 0;
}

/** The first step of a multi-factor sign-in passed: a single-use token for the second (only its hash is stored). */
export async function openChallenge(em: EntityManager, userId: string): Promise<string> {
  await em.execute('delete from auth_mfa_challenges where user_id = ? and (expires_at < now() or spent_at is not null)', [userId]);
  const token = randomBytes(32).toString('base64url');
  await em.execute(
    'insert into auth_mfa_challenges (token_hash, user_id, created_at, expires_at) values (?, ?, now(), now() + make_interval(secs => ?))',
    [sha256(token), userId, MFA_CHALLENGE_TTL_S],
  );
  return token;
}

export const isWellFormedChallenge = (token: string) => /^[A-Za-z0-9_-]{43}$/.test(token);

/**
 * The open challenge of a token, locked for this transaction (two second steps with one token
 * take turns): `undefined` when unknown, expired, spent or out of attempts.
 */
export async function openChallengeOf(em: EntityManager, token: string): Promise<{ userId: string } | undefined> {
  if (!isWellFormedChallenge(token)) return undefined;
  const [row] = await em.execute<{ user_id: string }[]>(
    `select user_id from auth_mfa_challenges
     where token_hash = ? and spent_at is null and expires_at > now() and failures < ? for update`,
    [sha256(token), MFA_CHALLENGE_MAX_FAILURES],
  );
  return row ? { userId: row.user_id } : undefined;
}

/** A wrong code for a challenge: counted; at MFA_CHALLENGE_MAX_FAILURES the challenge is closed. */
export async function failChallenge(em: EntityManager, token: string): Promise<void> {
  await em.execute('update auth_mfa_challenges set failures = failures + 1 where token_hash = ?', [sha256(token)]);
}

/** The challenge did its job: it cannot be used again. */
export async function spendChallenge(em: EntityManager, token: string): Promise<void> {
  await em.execute('update auth_mfa_challenges set spent_at = now() where token_hash = ?', [sha256(token)]);
}
