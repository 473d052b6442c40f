import { Migration } from '@mikro-orm/migrations';

/**
 * Every API task caches which sessions are live; this tells each of them, the moment a revocation
 * or deletion commits (NOTIFY is transactional: nothing is sent for a rollback), which session ended.
 */
export class SessionEndNotifications extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create function notify_session_ended() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          perform pg_notify('dms_session_ended', old.id::text);
        elsif old.revoked_at is null and new.revoked_at is not null then
          perform pg_notify('dms_session_ended', new.id::text);
        end if;
        return null;
      end $$`);
    this.addSql(`create trigger auth_sessions_ended after update or delete on auth_sessions
      for each row execute function notify_session_ended()`);
  }

  override async down(): Promise<void> {
    this.addSql('drop trigger auth_sessions_ended on auth_sessions');
    this.addSql('drop function notify_session_ended()');
  }
}
