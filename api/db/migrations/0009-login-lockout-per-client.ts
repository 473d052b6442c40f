import { Migration } from '@mikro-orm/migrations';

/**
 * Lock-out per (account, client) instead of per account (issue 15, finding 1: ten wrong passwords
 * every 15 minutes from one address kept any account locked for ever). Three tables, see
 * api/auth/lockout.ts:
 * - `auth_login_failures`: consecutive failures and the lock of one account from one client (an
 *   IPv4 address or an IPv6 /64). Rebuilt with the client in its key: locks standing at the
 *   migration are lifted (they named no client), and counting starts again.
 * - `auth_account_guard`: failures of an account from every client in the last day, and until
 *   when clients it has not seen sign in must wait (the credential-stuffing guard).
 * - `auth_known_clients`: clients the account signed in from (90 days), which that guard lets through.
 */
export class LoginLockoutPerClient extends Migration {
  override async up(): Promise<void> {
    this.addSql('drop table auth_login_failures');
    this.addSql(`
      create table auth_login_failures (
        user_id uuid not null references users (id) on delete cascade,
        client_key text not null check (length(client_key) between 1 and 64),
        consecutive_failures integer not null check (consecutive_failures >= 0),
        locked_until timestamptz,
        last_failure_at timestamptz not null,
        primary key (user_id, client_key)
      )`);
    this.addSql(`
      create table auth_account_guard (
        user_id uuid primary key references users (id) on delete cascade,
        recent_failures integer not null check (recent_failures >= 0),
        last_failure_at timestamptz not null,
        throttled_until timestamptz
      )`);
    this.addSql(`
      create table auth_known_clients (
        user_id uuid not null references users (id) on delete cascade,
        client_key text not null check (length(client_key) between 1 and 64),
        last_success_at timestamptz not null,
        primary key (user_id, client_key)
      )`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table auth_known_clients');
    this.addSql('drop table auth_account_guard');
    this.addSql('drop table auth_login_failures');
    this.addSql(`
      create table auth_login_failures (
        user_id uuid primary key references users (id) on delete cascade,
        consecutive_failures integer not null check (consecutive_failures >= 0),
        locked_until timestamptz,
        last_failure_at timestamptz not null
      )`);
  }
}
