import type { EntityManager } from '@mikro-orm/postgresql';
import { recordAudit } from '../audit/record.js';
import type { Role } from '../db/entities.js';
import type { Logger } from '../logger.js';
import { hashPassword, needsRehash, verifyPassword, verifyWithoutUser } from './passwords.js';
import { startSession, type TokenPair } from './sessions.js';
import type { AccessTokens } from './tokens.js';

/** Consecutive failures that lock an account, and for how long. */
export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_S = 15 * 60;

export interface LoginAttempt {
  /** Lower-cased. */
  email: string;
  password: string;
  ip: string;
  requestId: string;
  log: Logger;
}

interface Account {
  id: string;
  role: Role;
  password_hash: string;
  disabled: boolean;
  locked: boolean;
}

type Failure = { event: 'auth_login_invalid_user' | 'auth_login_bad_password' | 'auth_login_locked'; reason: string; userId?: string };

/**
 * Checks a password and starts a session. Every refusal (unknown e-mail, disabled account, wrong
 * password, locked account) costs one argon2 verification, is audited and logged under its own
 * event, and returns `undefined`: the route answers them all with the same 401.
 */
export async function signIn(em: EntityManager, tokens: AccessTokens, attempt: LoginAttempt): Promise<TokenPair | undefined> {
  const { email, password, ip, requestId, log } = attempt;
  const [account] = await em.execute<Account[]>(
    `select u.id, u.role, u.password_hash, u.disabled, coalesce(f.locked_until > now(), false) as locked
     from users u left join auth_login_failures f on f.user_id = u.id where u.email = ?`,
    [email],
  );
  // Verify before looking at the account's state, so every path spends the same time.
  const passwordMatches = account ? await verifyPassword(account.password_hash, password) : await verifyWithoutUser(password);

  let failure: Failure | undefined;
  if (!account) failure = { event: 'auth_login_invalid_user', reason: 'unknown_user' };
  else if (account.locked) failure = { event: 'auth_login_locked', reason: 'locked', userId: account.id };
  else if (account.disabled) failure = { event: 'auth_login_invalid_user', reason: 'disabled', userId: account.id };
  else if (!passwordMatches) failure = { event: 'auth_login_bad_password', reason: 'bad_password', userId: account.id };

  if (failure) {
    const { reason, userId } = failure;
    const lockedNow = await em.transactional(async (tx) => {
      const locks = reason === 'bad_password' && (await countFailure(tx, userId!));
      await recordAudit(tx, { action: 'auth.login', outcome: reason === 'locked' ? 'denied' : 'failure', entity: 'user', entityId: userId, ip, requestId, details: { reason } });
      if (locks) {
        await recordAudit(tx, { action: 'auth.lockout', outcome: 'success', entity: 'user', entityId: userId, ip, requestId, details: { failures: LOCKOUT_THRESHOLD, lockedForS: LOCKOUT_S } });
      }
      return locks;
    });
    // The attempt that locks the account is answered as locked: each attempt logs one auth_login_* event.
    log.warn(lockedNow ? 'auth_login_locked' : failure.event, { ip, reason: lockedNow ? 'locked_now' : reason, ...(userId ? { userId } : {}) });
    if (lockedNow) log.warn('auth_error', { reason: 'locked', userId, ip, lockedForS: LOCKOUT_S });
    return undefined;
  }

  const user = account!;
  const rehash = needsRehash(user.password_hash) ? await hashPassword(password) : undefined;
  const started = await em.transactional(async (tx) => {
    await tx.execute('delete from auth_login_failures where user_id = ?', [user.id]);
    if (rehash) await tx.execute('update users set password_hash = ? where id = ?', [rehash, user.id]);
    const session = await startSession(tx, tokens, user);
    await recordAudit(tx, { action: 'auth.login', outcome: 'success', entity: 'session', entityId: session.sessionId, actorId: user.id, actorRole: user.role, ip, requestId });
    return session;
  });
  log.info('auth_login_success', { userId: user.id, sessionId: started.sessionId, ip });
  return started.tokens;
}

/** Counts one more consecutive failure; true when it reaches the threshold and locks the account. */
async function countFailure(em: EntityManager, userId: string): Promise<boolean> {
  const [counted] = await em.execute<{ consecutive_failures: number }[]>(
    `insert into auth_login_failures (user_id, consecutive_failures, last_failure_at) values (?, 1, now())
     on conflict (user_id) do update set consecutive_failures = auth_login_failures.consecutive_failures + 1, last_failure_at = now()
     returning consecutive_failures`,
    [userId],
  );
  if (counted!.consecutive_failures < LOCKOUT_THRESHOLD) return false;
  // The lock restarts the count: after it ends, another full run of failures is needed.
  await em.execute(
    'update auth_login_failures set consecutive_failures = 0, locked_until = now() + make_interval(secs => ?) where user_id = ?',
    [LOCKOUT_S, userId],
  );
  return true;
}
