import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { ROLES } from '../db/entities.js';

export const SESSION_END_REASONS = [
  'logout', 'refresh_reuse', 'admin_revoke', 'user_disabled', 'role_changed', 'password_changed', 'password_reset', 'mfa_enabled', 'mfa_reset',
] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

/**
 * What a restricted session may do, and nothing else (api/auth/access.ts): enrol in MFA (a role the
 * MFA policy covers, without MFA yet) or change the password (an admin asked for it). A session's
 * restriction never changes: once the step is done, the user signs in again.
 */
export const SESSION_RESTRICTIONS = ['mfa_enrolment', 'password_change'] as const;
export type SessionRestriction = (typeof SESSION_RESTRICTIONS)[number];

/**
 * One sign-in: the family of refresh tokens it rotates through, and the `sid` of every access
 * token issued under it. Every authenticated request reads its row by primary key, so a revoked
 * session stops its access tokens at once. Invariant: whatever changes a user's role or disables
 * them revokes their sessions in the same transaction, so this row alone answers "still valid?".
 */
export const AuthSession = defineEntity({
  name: 'AuthSession',
  tableName: 'auth_sessions',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    /** The role the session's tokens carry. */
    role: p.enum(ROLES),
    createdAt: p.datetime(),
    /** Absolute end of the family, however often it rotates (SESSION_TTL_S after sign-in). */
    expiresAt: p.datetime(),
    revokedAt: p.datetime().nullable(),
    revokedReason: p.enum(SESSION_END_REASONS).nullable(),
    restriction: p.enum(SESSION_RESTRICTIONS).nullable(),
    /** The client address of the sign-in. */
    clientIp: p.text().nullable(),
  },
});
export type AuthSession = InferEntity<typeof AuthSession>;

/** A refresh token, by its SHA-256: spent when used (rotation), a spent one presented again is reuse. */
export const RefreshToken = defineEntity({
  name: 'RefreshToken',
  tableName: 'auth_refresh_tokens',
  properties: {
    tokenHash: p.text().primary(),
    sessionId: p.uuid(),
    createdAt: p.datetime(),
    spentAt: p.datetime().nullable(),
  },
});
export type RefreshToken = InferEntity<typeof RefreshToken>;

/** Consecutive failed sign-ins of one account from one client, and until when it is locked for that client (api/auth/lockout.ts). */
export const LoginFailure = defineEntity({
  name: 'LoginFailure',
  tableName: 'auth_login_failures',
  properties: {
    userId: p.uuid().primary(),
    clientKey: p.text().primary(),
    consecutiveFailures: p.integer(),
    lockedUntil: p.datetime().nullable(),
    lastFailureAt: p.datetime(),
  },
});
export type LoginFailure = InferEntity<typeof LoginFailure>;
