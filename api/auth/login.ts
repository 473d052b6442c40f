import type { EntityManager } from '@mikro-orm/postgresql';
import { recordAudit } from '../audit/record.js';
import type { Role } from '../db/entities.js';
import { clientKey } from '../http/client-key.js';
import type { Logger } from '../logger.js';
import type { SessionRestriction } from './entities.js';
import { countFailure, countSuccess, lockState, LOCKOUT_S, LOCKOUT_THRESHOLD, type LockState } from './lockout.js';
import { MFA_CHALLENGE_TTL_S, openChallenge } from './mfa.js';
import { hashPassword, needsRehash, verifyPassword, verifyWithoutUser } from './passwords.js';
import { startSession, type TokenPair } from './sessions.js';
import type { AccessTokens } from './tokens.js';

/** Who is signing in, from where, in which request. */
export interface Caller {
  ip: string;
  requestId: string;
  log: Logger;
}

export interface LoginAttempt extends Caller {
  /** Lower-cased. */
  email: string;
  password: string;
}

/** What the sign-in policy needs to know: the roles that must use MFA (`MFA_REQUIRED_ROLES`). */
export interface SignInPolicy {
  mfaRequiredRoles: readonly Role[];
}

/** A user who proved who they are, about to get a session. */
export interface Account {
  id: string;
  role: Role;
  disabled: boolean;
  must_change_password: boolean;
  mfa_enabled: boolean;
}

/** Every sign-in step answers one of these; every refusal is the same 401 for the client. */
export type SignInOutcome =
  | { outcome: 'refused' }
  | { outcome: 'mfa_required'; mfaToken: string; expiresIn: number }
  | { outcome: 'signed_in'; tokens: TokenPair };

export type Failure = {
  event: 'auth_login_invalid_user' | 'auth_login_bad_password' | 'auth_login_locked' | 'auth_login_bad_mfa_code';
  reason: string;
  userId?: string;
};

/** The account columns every sign-in step reads, with `u` the user. */
export const ACCOUNT_COLUMNS = `u.id, u.role, u.disabled, u.must_change_password,
  exists (select 1 from auth_mfa m where m.user_id = u.id and m.confirmed_at is not null) as mfa_enabled`;

const NO_USER = '00000000-0000-0000-0000-000000000000';

/** Why this client may not try this account now (api/auth/lockout.ts), or undefined. */
export function lockRefusal(lock: LockState): 'locked' | 'throttled' | undefined {
  return lock.locked ? 'locked' : lock.throttled ? 'throttled' : undefined;
}

/**
 * Checks a password. Every refusal (unknown e-mail, disabled account, wrong password, an account
 * locked for this client or slowed by its guard: api/auth/lockout.ts) costs one argon2 verification, is audited and logged under its own event, and answers
 * `refused`: the route answers them all with the same 401. With MFA on, the right password only
 * opens the second step (`mfa_required`): the session starts with its code (api/auth/login-mfa.ts).
 */
export async function signIn(em: EntityManager, tokens: AccessTokens, attempt: LoginAttempt, policy: SignInPolicy): Promise<SignInOutcome> {
  const { email, password, ip, requestId, log } = attempt;
  const [account] = await em.execute<(Account & { password_hash: string })[]>(`select ${ACCOUNT_COLUMNS}, u.password_hash from users u where u.email = ?`, [email]);
  // Asked for an unknown e-mail too (of an id no user has), so both paths make the same queries.
  const lock = lockRefusal(await lockState(em, account?.id ?? NO_USER, clientKey(ip)));
  // Verify before looking at the account's state, so every path spends the same time.
  const passwordMatches = account ? await verifyPassword(account.password_hash, password) : await verifyWithoutUser(password);

  let failure: Failure | undefined;
  if (!account) failure = { event: 'auth_login_invalid_user', reason: 'unknown_user' };
  else if (lock) failure = { event: 'auth_login_locked', reason: lock, userId: account.id };
  else if (account.disabled) failure = { event: 'auth_login_invalid_user', reason: 'disabled', userId: account.id };
  else if (!passwordMatches) failure = { event: 'auth_login_bad_password', reason: 'bad_password', userId: account.id };

  if (failure) {
    await refuseSignIn(em, failure, attempt);
    return { outcome: 'refused' };
  }

  const user = account!;
  const rehash = needsRehash(user.password_hash) ? await hashPassword(password) : undefined;
  if (rehash) await em.execute('update users set password_hash = ? where id = ?', [rehash, user.id]);
  if (user.mfa_enabled) {
    // The failure count stays until the second step succeeds: a right password must not buy more
    // code guesses, nor make this client a known one.
    const mfaToken = await em.transactional(async (tx) => {
      const token = await openChallenge(tx, user.id);
      await recordAudit(tx, { action: 'auth.mfa_challenge', outcome: 'success', entity: 'user', entityId: user.id, actorId: user.id, actorRole: user.role, ip, requestId });
      return token;
    });
    log.info('auth_login_mfa_required', { userId: user.id, ip });
    return { outcome: 'mfa_required', mfaToken, expiresIn: MFA_CHALLENGE_TTL_S };
  }
  return { outcome: 'signed_in', tokens: await completeSignIn(em, tokens, user, attempt, policy, { method: 'password' }) };
}

/**
 * Audits and logs a refused sign-in step, counting a wrong password or code towards the lock-out.
 * `action` is what was refused: a sign-in, or a signed-in user's password check (`user.password_change`, `auth.mfa_disable`).
 */
export async function refuseSignIn(em: EntityManager, failure: Failure, { ip, requestId, log }: Caller, action = 'auth.login'): Promise<void> {
  const { reason, userId } = failure;
  const client = clientKey(ip);
  const counts = reason === 'bad_password' || reason === 'bad_mfa_code';
  const lockedNow = await em.transactional(async (tx) => {
    const locks = counts && (await countFailure(tx, userId!, client)).lockedNow;
    const outcome = reason === 'locked' || reason === 'throttled' ? 'denied' : 'failure';
    await recordAudit(tx, { action, outcome, entity: 'user', entityId: userId, ip, requestId, details: { reason } });
    if (locks) {
      await recordAudit(tx, { action: 'auth.lockout', outcome: 'success', entity: 'user', entityId: userId, ip, requestId, details: { failures: LOCKOUT_THRESHOLD, lockedForS: LOCKOUT_S, scope: 'client' } });
    }
    return locks;
  });
  // The attempt that locks the account is answered as locked: each attempt logs one auth_login_* event.
  log.warn(lockedNow ? 'auth_login_locked' : failure.event, { ip, client, reason: lockedNow ? 'locked_now' : reason, ...(userId ? { userId } : {}), ...(action === 'auth.login' ? {} : { action }) });
  if (lockedNow) log.warn('auth_error', { reason: 'locked', userId, ip, client, lockedForS: LOCKOUT_S });
}

/**
 * The restriction a new session of this account carries: an admin-forced password change first,
 * then MFA enrolment for a role the policy covers that has no MFA yet.
 */
function restrictionFor(account: Account, policy: SignInPolicy): SessionRestriction | undefined {
  if (account.must_change_password) return 'password_change';
  if (!account.mfa_enabled && policy.mfaRequiredRoles.includes(account.role)) return 'mfa_enrolment';
  return undefined;
}

/** How the user proved who they are, for the audit row and the log line. */
export type SignInMethod = { method: 'password' } | { method: 'totp' } | { method: 'recovery_code'; recoveryCodesLeft: number };

/** Ends a sign-in that succeeded: clears this client's failure count, makes it a known client, and starts the (perhaps restricted) session, audited and logged. */
export async function completeSignIn(em: EntityManager, tokens: AccessTokens, user: Account, caller: Caller, policy: SignInPolicy, how: SignInMethod): Promise<TokenPair> {
  const { ip, requestId, log } = caller;
  const restriction = restrictionFor(user, policy);
  const started = await em.transactional(async (tx) => {
    await countSuccess(tx, user.id, clientKey(ip));
    const session = await startSession(tx, tokens, user, { ip, ...(restriction ? { restriction } : {}) });
    await recordAudit(tx, {
      action: 'auth.login', outcome: 'success', entity: 'session', entityId: session.sessionId, actorId: user.id, actorRole: user.role, ip, requestId,
      details: { ...how, ...(restriction ? { restriction } : {}) },
    });
    return session;
  });
  log.info('auth_login_success', { userId: user.id, sessionId: started.sessionId, ip, ...how, ...(restriction ? { restriction } : {}) });
  return started.tokens;
}
