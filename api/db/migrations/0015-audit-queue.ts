import { Migration } from '@mikro-orm/migrations';

/** The queue's delete guard as this migration makes it, one PL/pgSQL call per row (0016 reverts to it). */
export const QUEUE_DELETE_GUARD_PER_ROW = [
  `create or replace function audit_queue_delete_only_sequenced() returns trigger language plpgsql as $$
      begin
        if not exists (select from audit_logs where id = old.id) then
          raise exception 'audit record % is not in the chain: delete refused', old.id using errcode = 'insufficient_privilege';
        end if;
        return old;
      end $$`,
  `create trigger audit_queue_delete_only_sequenced before delete on audit_queue
      for each row execute function audit_queue_delete_only_sequenced()`,
];

/**
 * Audit records leave the request path's one lock (issue 16). A request now commits its records
 * into `audit_queue` (no chain, no lock: many writers at once), and one sequencer per database
 * folds committed queue rows into the hash chain `audit_logs` in batches, through
 * `audit_sequence()`, the only way a row reaches the chain or leaves the queue:
 * - the API role may INSERT and SELECT `audit_queue`, nothing else; a trigger refuses UPDATE and
 *   TRUNCATE for every role, and DELETE of a row the chain does not hold (owner included);
 * - the API role loses INSERT on `audit_logs`: rows reach it only through `audit_sequence()`
 *   (SECURITY DEFINER), which copies queue rows unchanged, so it cannot forge or drop one;
 * - the row-by-row chain trigger of 0002 becomes one check per statement (a transition table):
 *   the rows inserted must continue the head without a gap and link hash to hash, and the head
 *   moves once per batch instead of once per row;
 * - `audit_disclosures` indexes each access record by patient (who saw which patient, when, of
 *   what kind), filled by `audit_sequence()` from the chained rows, and read by the auditors'
 *   queries; it is append-only like the chain and purged with it.
 * Existing chain rows stay where they are: `audit_logs` keeps its layout, so every export, hash and
 * verified prefix remains valid.
 */
export class AuditQueue extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table audit_queue (
        id uuid primary key,
        occurred_at timestamptz not null,
        actor_id text,
        actor_role text,
        action text not null check (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
        outcome text not null check (outcome in ('success', 'failure', 'denied')),
        entity text,
        entity_id text,
        ip text,
        request_id text,
        details jsonb not null default '{}' check (jsonb_typeof(details) = 'object')
      )`);
    // The sequencer takes the oldest first.
    this.addSql('create index audit_queue_occurred_at on audit_queue (occurred_at, id)');
    this.addSql(`create trigger audit_queue_no_update before update on audit_queue
      for each row execute function audit_logs_refuse_change()`);
    this.addSql(`create trigger audit_queue_no_truncate before truncate on audit_queue
      for each statement execute function audit_logs_refuse_change()`);
    for (const statement of QUEUE_DELETE_GUARD_PER_ROW) this.addSql(statement);

    this.addSql(`
      create table audit_disclosures (
        seq bigint not null,
        patient_id uuid not null,
        actor_id text,
        kind text not null,
        occurred_at timestamptz not null,
        primary key (seq, patient_id)
      )`);
    this.addSql('create index audit_disclosures_patient on audit_disclosures (patient_id, occurred_at)');
    this.addSql('create index audit_disclosures_actor on audit_disclosures (actor_id, occurred_at)');
    this.addSql('create index audit_disclosures_occurred_at on audit_disclosures (occurred_at)');
    this.addSql(`create trigger audit_disclosures_no_update before update on audit_disclosures
      for each row execute function audit_logs_refuse_change()`);
    this.addSql(`create trigger audit_disclosures_no_truncate before truncate on audit_disclosures
      for each statement execute function audit_logs_refuse_change()`);
    // The same rule as for the chain: only rows a verified export holds may go (the purge).
    this.addSql(`create trigger audit_disclosures_delete_only_exported before delete on audit_disclosures
      for each row execute function audit_logs_delete_only_exported()`);

    // One check per statement: the inserted rows continue the head, gapless and linked.
    this.addSql('drop trigger audit_logs_extend_chain on audit_logs');
    this.addSql('drop function audit_logs_extend_chain()');
    this.addSql(`
      create function audit_logs_extend_chain() returns trigger
      language plpgsql security definer set search_path = public, pg_temp as $$
      declare
        head audit_chain_head%rowtype;
        added bigint;
        first_seq bigint;
        last_seq bigint;
        unlinked bigint;
      begin
        select * into head from audit_chain_head where singleton for update;
        select count(*), min(seq), max(seq) into added, first_seq, last_seq from new_rows;
        if added = 0 then return null; end if;
        if first_seq <> head.seq + 1 or last_seq - first_seq + 1 <> added then
          raise exception 'audit rows %..% do not extend the chain head %', first_seq, last_seq, head.seq
            using errcode = 'serialization_failure';
        end if;
        select r.seq into unlinked from new_rows r left join new_rows p on p.seq = r.seq - 1
          where r.prev_hash is distinct from (case when r.seq = first_seq then head.hash else p.hash end)
          order by r.seq limit 1;
        if unlinked is not null then
          raise exception 'audit row % does not link to the row before it', unlinked using errcode = 'serialization_failure';
        end if;
        update audit_chain_head set seq = last_seq, hash = (select hash from new_rows where seq = last_seq) where singleton;
        return null;
      end $$`);
    this.addSql(`create trigger audit_logs_extend_chain after insert on audit_logs
      referencing new table as new_rows for each statement execute function audit_logs_extend_chain()`);

    // The sequencer's one step: queue rows `ids`, in that order, become chain rows first_seq.., each
    // with the hash the caller computed; the statement trigger checks they continue the head.
    this.addSql(`
      create function audit_sequence(first_seq bigint, prev_hash text, ids uuid[], hashes text[]) returns bigint
      language plpgsql security definer set search_path = public, pg_temp as $$
      declare
        moved bigint;
      begin
        if cardinality(ids) is distinct from cardinality(hashes) or cardinality(ids) = 0 then
          raise exception 'audit_sequence needs as many hashes as ids' using errcode = 'invalid_parameter_value';
        end if;
        insert into audit_logs (seq, id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details, prev_hash, hash)
          select first_seq + u.n - 1, q.id, q.occurred_at, q.actor_id, q.actor_role, q.action, q.outcome, q.entity, q.entity_id,
                 q.ip, q.request_id, q.details, case when u.n = 1 then prev_hash else hashes[u.n - 1] end, u.hash
            from unnest(ids, hashes) with ordinality as u(id, hash, n)
            join audit_queue q on q.id = u.id
           order by u.n;
        get diagnostics moved = row_count;
        if moved <> cardinality(ids) then
          raise exception 'audit records to sequence are not all queued' using errcode = 'serialization_failure';
        end if;
        -- The API checks each id is a UUID; the pattern keeps a record that is not from stopping the chain.
        insert into audit_disclosures (seq, patient_id, actor_id, kind, occurred_at)
          select distinct l.seq, p.patient_id::uuid, l.actor_id, coalesce(l.details->>'kind', l.action), l.occurred_at
            from audit_logs l cross join lateral jsonb_array_elements_text(l.details->'patients') as p(patient_id)
           where l.seq between first_seq and first_seq + moved - 1 and jsonb_typeof(l.details->'patients') = 'array'
             and p.patient_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
        delete from audit_queue where id = any(ids);
        return moved;
      end $$`);
    this.addSql('revoke all on function audit_sequence(bigint, text, uuid[], text[]) from public');
    this.addSql('grant execute on function audit_sequence(bigint, text, uuid[], text[]) to dms_api, dms_audit_exporter');

    // Every record, chained or still queued: what the auditors' queries read.
    this.addSql(`
      create view audit_trail as
        select seq, id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details from audit_logs
        union all
        select null::bigint, id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details from audit_queue`);
    this.addSql(`
      create view audit_disclosure_trail as
        select seq, patient_id, actor_id, kind, occurred_at from audit_disclosures
        union all
        select null::bigint, p.patient_id::uuid, q.actor_id, coalesce(q.details->>'kind', q.action), q.occurred_at
          from audit_queue q cross join lateral jsonb_array_elements_text(q.details->'patients') as p(patient_id)
         where jsonb_typeof(q.details->'patients') = 'array'
           and p.patient_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'`);

    // The purge removes a record's disclosures with it.
    this.addSql('drop function audit_purge(bigint, integer)');
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
        delete from audit_disclosures where seq <= through_seq;
        delete from audit_logs where seq <= through_seq;
        get diagnostics purged = row_count;
        return purged;
      end $$`);
    this.addSql('revoke all on function audit_purge(bigint, integer) from public');
    this.addSql('grant execute on function audit_purge(bigint, integer) to dms_audit_exporter');

    // Default privileges (0001) granted dms_api full DML on the new tables: keep what it needs.
    this.addSql('revoke update, delete, truncate, references, trigger on audit_queue from dms_api');
    this.addSql('revoke insert, update, delete, truncate, references, trigger on audit_disclosures from dms_api');
    this.addSql('revoke insert on audit_logs from dms_api, dms_audit_exporter');
    this.addSql('grant select on audit_trail, audit_disclosure_trail to dms_api, dms_audit_exporter');
    this.addSql('grant select, insert on audit_queue to dms_audit_exporter');
    this.addSql('grant select on audit_disclosures to dms_audit_exporter');
  }

  override async down(): Promise<void> {
    this.addSql('drop view audit_disclosure_trail, audit_trail');
    this.addSql('drop function audit_sequence(bigint, text, uuid[], text[])');
    this.addSql('drop table audit_disclosures, audit_queue');
    this.addSql('drop function audit_queue_delete_only_sequenced()');
    this.addSql('grant insert on audit_logs to dms_api, dms_audit_exporter');
  }
}
