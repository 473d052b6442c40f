import { Migration } from '@mikro-orm/migrations';

/**
 * The audit trail (CONTRACT §4). `audit_logs` is append-only for everyone who is not the owner
 * disabling triggers on purpose, and each row is linked to the one before it:
 * - the API role (`dms_api`) may only INSERT and SELECT it;
 * - a trigger refuses UPDATE and TRUNCATE for every role, and DELETE of a row no verified export
 *   covers, so even the owner's purge cannot drop what was never shipped to the bucket;
 * - a SECURITY DEFINER insert trigger checks each row extends the chain head (`seq` = head + 1,
 *   `prev_hash` = head hash) under a row lock and advances the head, so concurrent writers can
 *   never fork the chain and the API role needs no write access to the head.
 */
export class AuditLogs extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table audit_chain_head (
        singleton boolean primary key default true check (singleton),
        seq bigint not null,
        hash text not null
      )`);
    // The genesis: the first row's prev_hash.
    this.addSql(`insert into audit_chain_head (seq, hash) values (0, repeat('0', 64))`);

    this.addSql(`
      create table audit_logs (
        seq bigint primary key check (seq > 0),
        id uuid not null unique,
        occurred_at timestamptz not null,
        actor_id text,
        actor_role text,
        action text not null check (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
        outcome text not null check (outcome in ('success', 'failure', 'denied')),
        entity text,
        entity_id text,
        ip text,
        request_id text,
        details jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
        prev_hash text not null check (prev_hash ~ '^[0-9a-f]{64}$'),
        hash text not null unique check (hash ~ '^[0-9a-f]{64}$')
      )`);
    this.addSql('create index audit_logs_occurred_at on audit_logs (occurred_at)');
    this.addSql('create index audit_logs_actor_seq on audit_logs (actor_id, seq desc)');
    this.addSql('create index audit_logs_action_seq on audit_logs (action, seq desc)');
    this.addSql('create index audit_logs_entity_seq on audit_logs (entity, entity_id, seq desc)');

    // One file in AUDIT_BUCKET per batch: rows first_seq..last_seq, chained from prev_hash to last_hash.
    // A batch is recorded before its object is written, so a crashed export is redone with the same
    // rows and the same key (nothing exported twice, nothing lost).
    this.addSql(`
      create table audit_exports (
        id uuid primary key,
        first_seq bigint not null unique,
        last_seq bigint not null unique check (last_seq >= first_seq),
        prev_hash text not null,
        last_hash text not null,
        row_count integer not null check (row_count = last_seq - first_seq + 1),
        object_key text not null unique,
        sha256 text,
        created_at timestamptz not null,
        verified_at timestamptz
      )`);

    this.addSql(`
      create function audit_logs_extend_chain() returns trigger
      language plpgsql security definer set search_path = public, pg_temp as $$
      declare
        head audit_chain_head%rowtype;
      begin
        select * into head from audit_chain_head where singleton for update;
        if new.seq <> head.seq + 1 or new.prev_hash <> head.hash then
          raise exception 'audit row % does not extend the chain head %', new.seq, head.seq
            using errcode = 'serialization_failure';
        end if;
        update audit_chain_head set seq = new.seq, hash = new.hash where singleton;
        return new;
      end $$`);
    this.addSql(`create trigger audit_logs_extend_chain before insert on audit_logs
      for each row execute function audit_logs_extend_chain()`);

    this.addSql(`
      create function audit_logs_refuse_change() returns trigger language plpgsql as $$
      begin
        raise exception 'audit_logs is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
      end $$`);
    this.addSql(`create trigger audit_logs_no_update before update on audit_logs
      for each row execute function audit_logs_refuse_change()`);
    this.addSql(`create trigger audit_logs_no_truncate before truncate on audit_logs
      for each statement execute function audit_logs_refuse_change()`);

    this.addSql(`
      create function audit_logs_delete_only_exported() returns trigger language plpgsql as $$
      begin
        if not exists (
          select from audit_exports
          where first_seq <= old.seq and last_seq >= old.seq and verified_at is not null
        ) then
          raise exception 'audit row % has no verified export: delete refused', old.seq
            using errcode = 'insufficient_privilege';
        end if;
        return old;
      end $$`);
    this.addSql(`create trigger audit_logs_delete_only_exported before delete on audit_logs
      for each row execute function audit_logs_delete_only_exported()`);

    // The only way rows leave: a prefix of the chain ending where a verified export file ends (so
    // the first row left chains to a hash kept in audit_exports), every row past the hot retention,
    // every row in a verified export (the delete trigger checks each). The purge task runs as the
    // app role, which may call this and nothing else that deletes.
    this.addSql(`
      create function audit_purge(through_seq bigint) returns bigint
      language plpgsql security definer set search_path = public, pg_temp as $$
      declare
        purged bigint;
      begin
        if not exists (select from audit_exports where last_seq = through_seq and verified_at is not null) then
          raise exception 'audit row % does not end a verified export', through_seq using errcode = 'insufficient_privilege';
        end if;
        if exists (select from audit_logs where seq <= through_seq and occurred_at >= now() - interval '90 days') then
          raise exception 'audit rows through % are not all past the 90-day hot retention', through_seq
            using errcode = 'insufficient_privilege';
        end if;
        delete from audit_logs where seq <= through_seq;
        get diagnostics purged = row_count;
        return purged;
      end $$`);
    this.addSql('revoke all on function audit_purge(bigint) from public');
    this.addSql('grant execute on function audit_purge(bigint) to dms_api');

    // Default privileges (0001) granted dms_api full DML; take back all that could rewrite history.
    this.addSql('revoke update, delete, truncate, references, trigger on audit_logs from dms_api');
    this.addSql('revoke insert, update, delete, truncate, references, trigger on audit_chain_head from dms_api');
    this.addSql('revoke delete, truncate, references, trigger on audit_exports from dms_api');
  }

  override async down(): Promise<void> {
    this.addSql('drop table audit_exports');
    this.addSql('drop table audit_logs');
    this.addSql('drop table audit_chain_head');
    this.addSql('drop function audit_purge(bigint), audit_logs_extend_chain(), audit_logs_refuse_change(), audit_logs_delete_only_exported()');
  }
}
