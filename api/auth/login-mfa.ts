import type { EntityManager } from '@mikro-orm/postgresql';
import { clientKey } from '../http/client-key.js';
import { lockState } from './lockout.js';
import { ACCOUNT_COLUMNS, completeSignIn, lockRefusal, refuseSignIn, type Account, type Caller, type SignInMethod, type SignInOutcome, type SignInPolicy } from './login.js';
import { acceptTotp, failChallenge, openChallengeOf, spendChallenge, useRecoveryCode } from './mfa.js';
import type { AccessTokens } from './tokens.js';

/** The second step of a multi-factor sign-in: the challenge of the first, and one code. */
export interface MfaAttempt extends Caller {
  mfaToken: string;
  /** Exactly one of the two. */
  code?: string;
  recoveryCode?: string;
}

/**
 * Checks the code of a sign-in's second step and starts the session. The challenge row is locked
 * for the step, so two requests with one token take turns; a TOTP code is accepted once (its
 * time step is recorded), a recovery code is spent. A wrong code counts towards the account's
 * lock-out of this client like a wrong password, and MFA_CHALLENGE_MAX_FAILURES of them close the challenge.
 */
export async function signInWithMfa(em: EntityManager, tokens: AccessTokens, attempt: MfaAttempt, policy: SignInPolicy): Promise<SignInOutcome> {
  const { ip, log } = attempt;
  const step = await em.transactional(async (tx): Promise<{ account: Account; how: SignInMethod } | { refusal: 'invalid_challenge' } | { refusal: 'locked' | 'throttled' | 'disabled' | 'bad_mfa_code'; userId: string }> => {
    const challenge = await openChallengeOf(tx, attempt.mfaToken);
    if (!challenge) return { refusal: 'invalid_challenge' };
    const [account] = await tx.execute<Account[]>(`select ${ACCOUNT_COLUMNS} from users u where u.id = ?`, [challenge.userId]);
    if (!account || account.disabled || !account.mfa_enabled) return { refusal: 'disabled', userId: challenge.userId };
    const lock = lockRefusal(await lockState(tx, account.id, clientKey(attempt.ip)));
    if (lock) return { refusal: lock, userId: account.id };
    let how: SignInMethod | undefined;
    if (attempt.code !== undefined) {
      if (await acceptTotp(tx, account.id, attempt.code)) how = { method: 'totp' };
    } else {
      const used = await useRecoveryCode(tx, account.id, attempt.recoveryCode ?? '');
      if (used) how = { method: 'recovery_code', recoveryCodesLeft: used.remaining };
    }
    if (!how) {
      await failChallenge(tx, attempt.mfaToken);
      return { refusal: 'bad_mfa_code', userId: account.id };
    }
    await spendChallenge(tx, attempt.mfaToken);
    return { account, how };
  });

  if ('refusal' in step) {
    if (step.refusal === 'invalid_challenge') {
      log.warn('auth_login_bad_mfa_code', { ip, reason: 'invalid_challenge' });
    } else {
      const event = step.refusal === 'bad_mfa_code' ? 'auth_login_bad_mfa_code' : step.refusal === 'disabled' ? 'auth_login_invalid_user' : 'auth_login_locked';
      await refuseSignIn(em, { event, reason: step.refusal, userId: step.userId }, attempt);
    }
    return { outcome: 'refused' };
  }
  return { outcome: 'signed_in', tokens: await completeSignIn(em, tokens, step.account, attempt, policy, step.how) };
}
