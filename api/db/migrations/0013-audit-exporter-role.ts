import { Migration } from '@mikro-orm/migrations';

/**
 * Export records are the exporter's alone. A row of `audit_exports` marked verified is what lets
 * `audit_purge` delete audit rows, so whoever can write one can erase history that was never
 * exported; the API's role (`dms_api`) could. Now only `dms_audit_exporter` (the export and purge
 * jobs' login, `dms_audit_export` in production) may insert or update export records or purge; it
 * may read the trail and append its own audit rows, and touches no clinical table.
 */
export class AuditExporterRole extends Migration {
  override async up(): Promise<void> {
    this.addSql(`do $$ begin
      if not exists (select from pg_roles where rolname = 'dms_audit_exporter') then create role dms_audit_exporter nologin; end if;
    end $$`);
    this.addSql('grant usage on schema public to dms_audit_exporter');
    this.addSql('grant select on audit_logs, audit_chain_head, audit_exports, schema_migrations to dms_audit_exporter');
    this.addSql('grant insert on audit_logs to dms_audit_exporter');
    this.addSql('grant insert, update on audit_exports to dms_audit_exporter');
    this.addSql('revoke insert, update on audit_exports from dms_api');
    this.addSql('revoke execute on function audit_purge(bigint, integer) from dms_api');
    this.addSql('grant execute on function audit_purge(bigint, integer) to dms_audit_exporter');
  }

  override async down(): Promise<void> {
    this.addSql('revoke execute on function audit_purge(bigint, integer) from dms_audit_exporter');
    this.addSql('grant execute on function audit_purge(bigint, integer) to dms_api');
    this.addSql('grant insert, update on audit_exports to dms_api');
    this.addSql('revoke all on audit_logs, audit_chain_head, audit_exports, schema_migrations from dms_audit_exporter');
    this.addSql('revoke usage on schema public from dms_audit_exporter');
  }
}
