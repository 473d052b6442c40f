import type { EntityManager } from '@mikro-orm/postgresql';

/** Consecutive failures from one client that lock the account for that client, and for how long. */
export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_S = 15 * 60;
/** Failures of one account from every client (in the last day) past which clients it has not seen sign in are slowed. */
export const GUARD_THRESHOLD = 2 * LOCKOUT_THRESHOLD;
/** The longest wait the guard imposes between password checks from unseen clients. */
export const GUARD_MAX_DELAY_S = LOCKOUT_S;
/** How long a client the account signed in from counts as known, and failures are remembered. */
const KNOWN_CLIENT_DAYS = 90;
const FAILURE_MEMORY = '24 hours';

/**
 * What stands between one client and one account (api/auth/login.ts asks before it looks at the
 * password's verdict):
 * - `locked`: this client failed LOCKOUT_THRESHOLD times in a row and is locked out of this
 *   account for LOCKOUT_S. Other clients are not: a stranger's failures never lock the owner out.
 * - `throttled`: the account is being guessed at from many clients (GUARD_THRESHOLD failures in
 *   a day) and this client has never signed in to it, so it waits its turn (progressive, at most
 *   GUARD_MAX_DELAY_S). Clients the account signed in from in the last 90 days are not slowed.
 */
export interface LockState {
  locked: boolean;
  throttled: boolean;
}

export async function lockState(em: EntityManager, userId: string, client: string): Promise<LockState> {
  const [state] = await em.execute<LockState[]>(
    `select
       coalesce((select f.locked_until > now() from auth_login_failures f where f.user_id = ? and f.client_key = ?), false) as locked,
       coalesce((select g.throttled_until > now() from auth_account_guard g where g.user_id = ?), false)
         and not exists (select 1 from auth_known_clients k where k.user_id = ? and k.client_key = ? and k.last_success_at > now() - make_interval(days => ?)) as throttled`,
    [userId, client, userId, userId, client, KNOWN_CLIENT_DAYS],
  );
  return state!;
}

/**
 * Counts one failed password of `userId` from `client`, in the caller's transaction. Answers
 * whether it locked the account for that client. The lock is not extended by attempts while it
 * holds (they are refused before counting) and restarts the count.
 */
export async function countFailure(em: EntityManager, userId: string, client: string): Promise<{ lockedNow: boolean }> {
  // Failures of clients that went quiet a day ago are forgotten (an attacker's many addresses do not pile up).
  await em.execute(
    `delete from auth_login_failures where user_id = ? and last_failure_at < now() - ?::interval and coalesce(locked_until < now(), true)`,
    [userId, FAILURE_MEMORY],
  );
  const [counted] = await em.execute<{ consecutive_failures: number }[]>(
    `insert into auth_login_failures (user_id, client_key, consecutive_failures, last_failure_at) values (?, ?, 1, now())
     on conflict (user_id, client_key) do update set consecutive_failures = auth_login_failures.consecutive_failures + 1, last_failure_at = now()
     returning consecutive_failures`,
    [userId, client],
  );
  const lockedNow = counted!.consecutive_failures >= LOCKOUT_THRESHOLD;
  if (lockedNow) {
    await em.execute(
      'update auth_login_failures set consecutive_failures = 0, locked_until = now() + make_interval(secs => ?) where user_id = ? and client_key = ?',
      [LOCKOUT_S, userId, client],
    );
  }
  // The guard: each failure past GUARD_THRESHOLD doubles the wait of unseen clients (1 s, 2 s, … up to 15 min).
  await em.execute(
    `insert into auth_account_guard (user_id, recent_failures, last_failure_at) values (?, 1, now())
     on conflict (user_id) do update set
       recent_failures = case when auth_account_guard.last_failure_at < now() - ?::interval then 1 else auth_account_guard.recent_failures + 1 end,
       last_failure_at = now()`,
    [userId, FAILURE_MEMORY],
  );
  await em.execute(
    `update auth_account_guard set throttled_until = now() + make_interval(secs => least(power(2, recent_failures - ?), ?))
     where user_id = ? and recent_failures >= ?`,
    [GUARD_THRESHOLD, GUARD_MAX_DELAY_S, userId, GUARD_THRESHOLD],
  );
  return { lockedNow };
}

/**
 * A successful sign-in from `client`: its failure count ends and it becomes a known client of
 * the account. The account-wide guard is left as it is: an attack on the account goes on while
 * its owner signs in, and the owner's known clients pass it anyway.
 */
export async function countSuccess(em: EntityManager, userId: string, client: string): Promise<void> {
  await em.execute('delete from auth_login_failures where user_id = ? and client_key = ?', [userId, client]);
  await em.execute(
    `insert into auth_known_clients (user_id, client_key, last_success_at) values (?, ?, now())
     on conflict (user_id, client_key) do update set last_success_at = now()`,
    [userId, client],
  );
  await em.execute('delete from auth_known_clients where user_id = ? and last_success_at < now() - make_interval(days => ?)', [userId, KNOWN_CLIENT_DAYS]);
}

/** Lifts every lock and the guard of an account (an admin set its password: its owner is being let back in). */
export async function clearLockout(em: EntityManager, userId: string): Promise<void> {
  await em.execute('delete from auth_login_failures where user_id = ?', [userId]);
  await em.execute('delete from auth_account_guard where user_id = ?', [userId]);
}
