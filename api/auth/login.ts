import type { EntityManager } from '@mikro-orm/postgresql';
import { recordAudit } from '../audit/record.js';
import type { Role } from '../db/entities.js';
import { clientKey } from '../http/client-key.js';
import type { Logger } from '../logger.js';
import { countFailure, countSuccess, lockState, LOCKOUT_S, LOCKOUT_THRESHOLD } from './lockout.js';
import { hashPassword, needsRehash, verifyPassword, verifyWithoutUser } from './passwords.js';
import { startSession, type TokenPair } from './sessions.js';
import type { AccessTokens } from './tokens.js';

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
}

const NO_USER = '00000000-0000-0000-0000-000000000000';

type Failure = { event: 'auth_login_invalid_user' | 'auth_login_bad_password' | 'auth_login_locked'; reason: string; userId?: string };

/**
 * Checks a password and starts a session. Every refusal (unknown e-mail, disabled account, wrong
 * password, an account locked for this client or slowed by its guard: api/auth/lockout.ts) costs
 * one argon2 verification, is audited and logged under its own event, and returns `undefined`:
 * the route answers them all with the same 401.
 */
export async function signIn(em: EntityManager, tokens: AccessTokens, attempt: LoginAttempt): Promise<TokenPair | undefined> {
  const { email, password, ip, requestId, log } = attempt;
  const client = clientKey(ip);
  const [account] = await em.execute<Account[]>('select u.id, u.role, u.password_hash, u.disabled from users u where u.email = ?', [email]);
  // Asked for an unknown e-mail too (of an id no user has), so both paths make the same queries.
  const lock = await lockState(em, account?.id ?? NO_USER, client);
  // Verify before looking at the account's state, so every path spends the same time.
  const passwordMatches = account ? await verifyPassword(account.password_hash, password) : await verifyWithoutUser(password);

  let failure: Failure | undefined;
  if (!account) failure = { event: 'auth_login_invalid_user', reason: 'unknown_user' };
  else if (lock.locked) failure = { event: 'auth_login_locked', reason: 'locked', userId: account.id };
  else if (lock.throttled) failure = { event: 'auth_login_locked', reason: 'throttled', userId: account.id };
  else if (account.disabled) failure = { event: 'auth_login_invalid_user', reason: 'disabled', userId: account.id };
  else if (!passwordMatches) failure = { event: 'auth_login_bad_password', reason: 'bad_password', userId: account.id };

  if (failure) {
    const { reason, userId } = failure;
    const lockedNow = await em.transactional(async (tx) => {
      const locks = reason === 'bad_password' && (await countFailure(tx, userId!, client)).lockedNow;
      await recordAudit(tx, { action: 'auth.login', outcome: reason === 'locked' || reason === 'throttled' ? 'denied' : 'failure', entity: 'user', entityId: userId, ip, requestId, details: { reason } });
      if (locks) {
        await recordAudit(tx, { action: 'auth.lockout', outcome: 'success', entity: 'user', entityId: userId, ip, requestId, details: { failures: LOCKOUT_THRESHOLD, lockedForS: LOCKOUT_S, scope: 'client' } });
      }
      return locks;
    });
    // The attempt that locks the account is answered as locked: each attempt logs one auth_login_* event.
    log.warn(lockedNow ? 'auth_login_locked' : failure.event, { ip, client, reason: lockedNow ? 'locked_now' : reason, ...(userId ? { userId } : {}) });
    if (lockedNow) log.warn('auth_error', { reason: 'locked', userId, ip, client, lockedForS: LOCKOUT_S });
    return undefined;
  }

  const user = account!;
  const rehash = needsRehash(user.password_hash) ? await hashPassword(password) : undefined;
  const started = await em.transactional(async (tx) => {
    await countSuccess(tx, user.id, client);
    if (rehash) await tx.execute('update users set password_hash = ? where id = ?', [rehash, user.id]);
    const session = await startSession(tx, tokens, user);
    await recordAudit(tx, { action: 'auth.login', outcome: 'success', entity: 'session', entityId: session.sessionId, actorId: user.id, actorRole: user.role, ip, requestId });
    return session;
  });
  log.info('auth_login_success', { userId: user.id, sessionId: started.sessionId, ip });
  return started.tokens;
}
