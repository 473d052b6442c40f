import { Migration } from '@mikro-orm/migrations';

const SESSION_END_REASONS_BEFORE = "'logout', 'refresh_reuse', 'admin_revoke', 'user_disabled', 'role_changed', 'password_changed'";
const SESSION_END_REASONS = `${SESSION_END_REASONS_BEFORE}, 'password_reset', 'mfa_enabled', 'mfa_reset'`;

/**
 * What a clinic expects of accounts (issue 15): TOTP multi-factor sign-in with single-use recovery
 * codes, an admin-forced password change, and sessions a user can see and end. Codes, recovery
 * codes and sign-in challenges are stored only as SHA-256 hashes (they are 80 to 256 random bits).
 */
export class AccountSecurity extends Migration {
  override async up(): Promise<void> {
    // Set by an admin: the next sign-in can only change the password.
    this.addSql('alter table users add column must_change_password boolean not null default false');

    this.addSql(`
      create table auth_mfa (
        user_id uuid primary key references users (id) on delete cascade,
        -- The TOTP secret (base32). Never returned after enrolment, never logged or audited.
        secret text not null check (secret ~ '^[A-Z2-7]{32,}$'),
        created_at timestamptz not null,
        -- Null while enrolment is pending: multi-factor sign-in starts once a code confirmed it.
        confirmed_at timestamptz,
        -- The time step of the last code accepted: a code is accepted only for a later step (single use).
        last_time_step bigint
      )`);

    this.addSql(`
      create table auth_mfa_recovery_codes (
        code_hash text primary key check (code_hash ~ '^[0-9a-f]{64}$'),
        user_id uuid not null references users (id) on delete cascade,
        used_at timestamptz
      )`);
    this.addSql('create index auth_mfa_recovery_codes_user on auth_mfa_recovery_codes (user_id)');

    // The first step of a multi-factor sign-in: a password that matched, waiting for its code.
    this.addSql(`
      create table auth_mfa_challenges (
        token_hash text primary key check (token_hash ~ '^[0-9a-f]{64}$'),
        user_id uuid not null references users (id) on delete cascade,
        created_at timestamptz not null,
        expires_at timestamptz not null check (expires_at > created_at),
        failures integer not null default 0 check (failures >= 0),
        spent_at timestamptz
      )`);
    this.addSql('create index auth_mfa_challenges_user on auth_mfa_challenges (user_id)');

    // A restricted session may only enrol in MFA or change the password; it is never upgraded.
    this.addSql("alter table auth_sessions add column restriction text check (restriction in ('mfa_enrolment', 'password_change'))");
    // Where the sign-in came from, so a user can tell their sessions apart (GET /auth/sessions).
    this.addSql('alter table auth_sessions add column client_ip text');
    this.addSql('alter table auth_sessions drop constraint auth_sessions_revoked_reason_check');
    this.addSql(`alter table auth_sessions add constraint auth_sessions_revoked_reason_check check (revoked_reason in (${SESSION_END_REASONS}))`);
    // GET /auth/sessions pages a user's sessions newest first, by (created_at, id): stored at the
    // millisecond, like every keyset column (migration 0007).
    this.addSql('alter table auth_sessions alter column created_at type timestamptz(3)');
    this.addSql('create index auth_sessions_user_created on auth_sessions (user_id, created_at desc, id desc)');
  }

  override async down(): Promise<void> {
    this.addSql('drop index auth_sessions_user_created');
    this.addSql('alter table auth_sessions alter column created_at type timestamptz');
    this.addSql("delete from auth_sessions where revoked_reason in ('password_reset', 'mfa_enabled', 'mfa_reset')");
    this.addSql('alter table auth_sessions drop constraint auth_sessions_revoked_reason_check');
    this.addSql(`alter table auth_sessions add constraint auth_sessions_revoked_reason_check check (revoked_reason in (${SESSION_END_REASONS_BEFORE}))`);
    this.addSql('alter table auth_sessions drop column client_ip');
    this.addSql('alter table auth_sessions drop column restriction');
    this.addSql('drop table auth_mfa_challenges');
    this.addSql('drop table auth_mfa_recovery_codes');
    this.addSql('drop table auth_mfa');
    this.addSql('alter table users drop column must_change_password');
  }
}
