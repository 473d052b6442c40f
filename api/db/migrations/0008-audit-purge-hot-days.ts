import { Migration } from '@mikro-orm/migrations';

/**
 * The hot retention is one configured value (`AUDIT_HOT_DAYS`, set by the stack from
 * `dms:storage.auditHotDays`, which also moves exports to Glacier): the purge passes it, and the
 * database still refuses anything under the 30-day floor, whoever calls, so a misconfigured or
 * compromised task cannot empty the recent trail. The rest is as in 0002.
 */
export class AuditPurgeHotDays extends Migration {
  override async up(): Promise<void> {
    this.addSql('drop function audit_purge(bigint)');
    this.addSql(`
      create function audit_purge(through_seq bigint, hot_days integer) returns bigint
      language plpgsql security definer set search_path = public, pg_temp as $$
      declare
        purged bigint;
      begin
        if hot_days is null or hot_days < 30 then
          raise exception 'a hot retention of % days is under the 30-day floor', hot_days using errcode = 'insufficient_privilege';
        end if;
        if not exists (select from audit_exports where last_seq = through_seq and verified_at is not null) then
          raise exception 'audit row % does not end a verified export', through_seq using errcode = 'insufficient_privilege';
        end if;
        if exists (select from audit_logs where seq <= through_seq and occurred_at >= now() - make_interval(days => hot_days)) then
          raise exception 'audit rows through % are not all past the %-day hot retention', through_seq, hot_days
            using errcode = 'insufficient_privilege';
        end if;
        delete from audit_logs where seq <= through_seq;
        get diagnostics purged = row_count;
        return purged;
      end $$`);
    this.addSql('revoke all on function audit_purge(bigint, integer) from public');
    this.addSql('grant execute on function audit_purge(bigint, integer) to dms_api');
  }

  override async down(): Promise<void> {
    this.addSql('drop function audit_purge(bigint, integer)');
  }
}
