import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Role } from '../db/entities.js';
import { AuthSession, type SessionEndReason, type SessionRestriction } from './entities.js';
import { ACCESS_TOKEN_TTL_S, RESTRICTED_SESSION_TTL_S, SESSION_TTL_S, newRefreshToken, refreshTokenHash, type AccessClaims, type AccessTokens } from './tokens.js';

/** What `POST /auth/login` and `POST /auth/refresh` answer (CONTRACT §2); `restricted` names a restricted session's one step. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  restricted?: SessionRestriction;
}

/** Sessions that ended this long ago are pruned when their user signs in again. */
const KEEP_ENDED_SESSIONS_S = 7 * 24 * 60 * 60;

async function issueRefreshToken(em: EntityManager, sessionId: string): Promise<string> {
  const token = newRefreshToken();
  await em.execute('insert into auth_refresh_tokens (token_hash, session_id, created_at) values (?, ?, now())', [refreshTokenHash(token), sessionId]);
  return token;
}

function pair(tokens: AccessTokens, claims: AccessClaims, refreshToken: string): TokenPair {
  return {
    accessToken: tokens.sign(claims),
    refreshToken,
    tokenType: 'Bearer',
    expiresIn: ACCESS_TOKEN_TTL_S,
    ...(claims.restriction ? { restricted: claims.restriction } : {}),
  };
}

/** How a session starts: restricted to one step, and from which client address. */
export interface SessionStart {
  restriction?: SessionRestriction;
  ip: string;
}

/** Starts a session (a refresh-token family) for a user who just proved who they are. Call inside a transaction. */
export async function startSession(
  em: EntityManager,
  tokens: AccessTokens,
  user: { id: string; role: Role },
  { restriction, ip }: SessionStart,
): Promise<{ sessionId: string; tokens: TokenPair }> {
  await em.execute(
    `delete from auth_sessions where user_id = ? and coalesce(revoked_at, expires_at) < now() - make_interval(secs => ?)`,
    [user.id, KEEP_ENDED_SESSIONS_S],
  );
  const now = new Date();
  const session = em.create(AuthSession, {
    id: randomUUID(),
    userId: user.id,
    role: user.role,
    createdAt: now,
    expiresAt: new Date(now.getTime() + (restriction ? RESTRICTED_SESSION_TTL_S : SESSION_TTL_S) * 1000),
    revokedAt: null,
    revokedReason: null,
    restriction: restriction ?? null,
    clientIp: ip,
  });
  await em.flush();
  const refreshToken = await issueRefreshToken(em, session.id);
  return { sessionId: session.id, tokens: pair(tokens, { sub: user.id, role: user.role, sid: session.id, ...(restriction ? { restriction } : {}) }, refreshToken) };
}

export type Rotation =
  | { outcome: 'rotated'; userId: string; sessionId: string; tokens: TokenPair }
  /** A spent token of a live family: the family is now revoked. */
  | { outcome: 'reused'; userId: string; sessionId: string }
  /** Unknown, or its family has ended (expired, logged out, revoked). */
  | { outcome: 'refused'; reason: 'unknown' | 'session_ended' };

interface FamilyRow {
  session_id: string;
  user_id: string;
  role: Role;
  restriction: SessionRestriction | null;
  live: boolean;
}

/**
 * Spends a refresh token and issues the next pair of its family. Call inside a transaction: the
 * spend is one conditional UPDATE, so of two requests racing with the same token exactly one
 * rotates and the other is reuse (RFC 9700 §4.14.2: the family is revoked).
 */
export async function rotateRefreshToken(em: EntityManager, tokens: AccessTokens, presented: string): Promise<Rotation> {
  const hash = refreshTokenHash(presented);
  const family = `select s.id as session_id, s.user_id, s.role, s.restriction, (s.revoked_at is null and s.expires_at > now()) as live
    from auth_refresh_tokens t join auth_sessions s on s.id = t.session_id where t.token_hash = ?`;
  const [spent] = await em.execute<{ session_id: string }[]>(
    'update auth_refresh_tokens set spent_at = now() where token_hash = ? and spent_at is null returning session_id',
    [hash],
  );
  const [row] = await em.execute<FamilyRow[]>(family, [hash]);
  if (!row) return { outcome: 'refused', reason: 'unknown' };
  if (!row.live) return { outcome: 'refused', reason: 'session_ended' };
  if (!spent) {
    await revokeSessions(em, { sessionId: row.session_id }, 'refresh_reuse');
    return { outcome: 'reused', userId: row.user_id, sessionId: row.session_id };
  }
  const refreshToken = await issueRefreshToken(em, row.session_id);
  return {
    outcome: 'rotated',
    userId: row.user_id,
    sessionId: row.session_id,
    tokens: pair(tokens, { sub: row.user_id, role: row.role, sid: row.session_id, ...(row.restriction ? { restriction: row.restriction } : {}) }, refreshToken),
  };
}

/** The session a refresh token belongs to, if it is one of this user's. */
export async function sessionOfRefreshToken(em: EntityManager, presented: string, userId: string): Promise<string | undefined> {
  const [row] = await em.execute<{ session_id: string }[]>(
    'select t.session_id from auth_refresh_tokens t join auth_sessions s on s.id = t.session_id where t.token_hash = ? and s.user_id = ?',
    [refreshTokenHash(presented), userId],
  );
  return row?.session_id;
}

/** Spends a refresh token without issuing another (logout). */
export async function spendRefreshToken(em: EntityManager, presented: string): Promise<void> {
  await em.execute('update auth_refresh_tokens set spent_at = now() where token_hash = ? and spent_at is null', [refreshTokenHash(presented)]);
}

/** Which sessions a revocation ends: all of a user's (but one, perhaps), one, or several. */
export type SessionSelector = { userId: string; except?: string } | { sessionId: string } | { sessionIds: string[] };

/** Revocations made inside a transaction, for the task's own session cache once it commits. */
const endedIn = new WeakMap<object, SessionSelector[]>();

/** The revocations a committed transaction made (each is returned once). */
export function takeEndedSessions(transaction: object): SessionSelector[] {
  const ended = endedIn.get(transaction) ?? [];
  endedIn.delete(transaction);
  return ended;
}

/**
 * Ends live sessions: their refresh tokens stop rotating and their access tokens fail the
 * session check on the next request. Returns how many were live.
 */
export async function revokeSessions(em: EntityManager, which: SessionSelector, reason: SessionEndReason): Promise<number> {
  const where = 'userId' in which
    ? { userId: which.userId, ...(which.except ? { id: { $ne: which.except } } : {}) }
    : 'sessionId' in which ? { id: which.sessionId } : { id: { $in: which.sessionIds } };
  const transaction = em.isInTransaction() ? (em.getTransactionContext() as object | undefined) : undefined;
  if (transaction) endedIn.set(transaction, [...(endedIn.get(transaction) ?? []), which]);
  return em.nativeUpdate(AuthSession, { ...where, revokedAt: null }, { revokedAt: new Date(), revokedReason: reason });
}
