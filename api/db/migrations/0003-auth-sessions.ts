import { Migration } from '@mikro-orm/migrations';

/**
 * Sessions, refresh tokens and login lock-outs (issue 3). Tokens are stored only as SHA-256
 * hashes; a session row is read by primary key on every authenticated request.
 */
export class AuthSessions extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table auth_sessions (
        id uuid primary key,
        user_id uuid not null references users (id) on delete cascade,
        role text not null check (role in ('admin', 'doctor', 'staff', 'auditor')),
        created_at timestamptz not null,
        expires_at timestamptz not null check (expires_at > created_at),
        revoked_at timestamptz,
        revoked_reason text check (revoked_reason in ('logout', 'refresh_reuse', 'admin_revoke', 'user_disabled', 'role_changed', 'password_changed')),
        check ((revoked_at is null) = (revoked_reason is null))
      )`);
    // Revoking every session of a user, and pruning a user's ended sessions at sign-in.
    this.addSql('create index auth_sessions_user on auth_sessions (user_id)');

    this.addSql(`
      create table auth_refresh_tokens (
        token_hash text primary key check (token_hash ~ '^[0-9a-f]{64}$'),
        session_id uuid not null references auth_sessions (id) on delete cascade,
        created_at timestamptz not null,
        spent_at timestamptz
      )`);
    this.addSql('create index auth_refresh_tokens_session on auth_refresh_tokens (session_id)');

    this.addSql(`
      create table auth_login_failures (
        user_id uuid primary key references users (id) on delete cascade,
        consecutive_failures integer not null check (consecutive_failures >= 0),
        locked_until timestamptz,
        last_failure_at timestamptz not null
      )`);

    // GET /admin/users pages newest first.
    this.addSql('create index users_created_at_id on users (created_at desc, id desc)');
  }

  override async down(): Promise<void> {
    this.addSql('drop index users_created_at_id');
    this.addSql('drop table auth_login_failures');
    this.addSql('drop table auth_refresh_tokens');
    this.addSql('drop table auth_sessions');
  }
}
