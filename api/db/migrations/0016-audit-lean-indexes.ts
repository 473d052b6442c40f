import { Migration } from '@mikro-orm/migrations';
import { QUEUE_DELETE_GUARD_PER_ROW } from './0015-audit-queue.js';

/**
 * Less work per audit record (issue 16). The sequencer writes every record into `audit_logs`, so
 * each index there, and each per-row trigger on the queue it drains, is paid once per read of a
 * patient. Each change keeps what the trail guarantees:
 * - `audit_logs.hash` loses its unique index: no query looks a row up by its hash, and the hash
 *   covers the row's `seq`, so two rows share one only through a SHA-256 collision; `verify`
 *   re-hashes every row and the chain trigger checks every link.
 * - `audit_logs_action_seq` no longer holds access records (`phi.access`, most of the trail): a
 *   filter on that action finds its rows at the newest end of the primary key. `GET /admin/audit`
 *   sends its filter as a literal (MikroORM's `execute` writes values into the SQL), and PostgreSQL
 *   proves `action = 'patient.update'` implies the index's `action <> 'phi.access'`
 *   (test/api/audit-indexes.test.ts holds both plans).
 * - The queue's delete guard checks a whole statement's rows at once (a transition table) instead
 *   of calling PL/pgSQL once per row: the sequencer deletes up to 2,000 rows in one statement. An
 *   AFTER statement trigger that raises still undoes the whole delete.
 */
export class AuditLeanIndexes extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table audit_logs drop constraint audit_logs_hash_key');
    this.addSql('drop index audit_logs_action_seq');
    this.addSql(`create index audit_logs_action_seq on audit_logs (action, seq desc) where action <> 'phi.access'`);

    this.addSql('drop trigger audit_queue_delete_only_sequenced on audit_queue');
    this.addSql(`
      create or replace function audit_queue_delete_only_sequenced() returns trigger language plpgsql as $$
      declare
        unsequenced uuid;
      begin
        select o.id into unsequenced from old_rows o where not exists (select from audit_logs l where l.id = o.id) limit 1;
        if unsequenced is not null then
          raise exception 'audit record % is not in the chain: delete refused', unsequenced using errcode = 'insufficient_privilege';
        end if;
        return null;
      end $$`);
    this.addSql(`create trigger audit_queue_delete_only_sequenced after delete on audit_queue
      referencing old table as old_rows for each statement execute function audit_queue_delete_only_sequenced()`);
  }

  override async down(): Promise<void> {
    this.addSql('drop trigger audit_queue_delete_only_sequenced on audit_queue');
    for (const statement of QUEUE_DELETE_GUARD_PER_ROW) this.addSql(statement);
    this.addSql('drop index audit_logs_action_seq');
    this.addSql('create index audit_logs_action_seq on audit_logs (action, seq desc)');
    this.addSql('alter table audit_logs add constraint audit_logs_hash_key unique (hash)');
  }
}
