import { Migration } from '@mikro-orm/migrations';

/**
 * Finding a patient (`GET /patients?q=`), the day view (`GET /visits?from&to`, `?followUpDue=`),
 * medicine search, and cancelled X-rays.
 *
 * `pg_trgm` and `unaccent` ship with PostgreSQL (contrib) and are on RDS for PostgreSQL's list of
 * supported extensions; since RDS for PostgreSQL 13 both are "trusted", so any role with CREATE on
 * the database may create them, and the migration task runs as the master user `dms_admin`
 * (rds_superuser) in any case. The stacks' parameter group sets no `rds.allowed_extensions`, which
 * would otherwise have to list them (test/infra: the parameter group check).
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.FeatureSupport.Extensions.html
 * Tests and `npm start` migrate as their cluster's superuser.
 */
export class FindPatientsAndDayView extends Migration {
  override async up(): Promise<void> {
    this.addSql('create extension if not exists pg_trgm with schema public');
    this.addSql('create extension if not exists unaccent with schema public');
    // unaccent() is STABLE (its rules file could change), so it cannot index; a wrapper naming the
    // dictionary and its schema is the documented way to fold text in an index. Should the rules
    // file ever change (a PostgreSQL upgrade that edits unaccent.rules), REINDEX the two indexes below.
    this.addSql(`create function dms_fold(text) returns text language sql immutable strict parallel safe
      as $$ select lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$`);
    // A phone number's digits, last first: a suffix search is then a prefix search a B-tree answers.
    this.addSql(`create function dms_phone_suffix_key(text) returns text language sql immutable strict parallel safe
      as $$ select reverse(regexp_replace($1, '[^0-9]', '', 'g')) $$`);

    // Not partial (no `where deleted_at is null`): the planner reads ANALYZE's statistics of an
    // index expression only for a whole-table index, and without them it guesses a phone suffix
    // matches 0.5 % of patients and walks the newest-first index instead. The few soft-deleted
    // rows cost nothing here.
    this.addSql('create index patients_name_search on patients using gin (dms_fold(full_name) gin_trgm_ops)');
    this.addSql('create index patients_phone_suffix on patients (dms_phone_suffix_key(phone) text_pattern_ops)');
    this.addSql('create index patients_date_of_birth on patients (date_of_birth)');
    this.addSql('create index medicines_name_search on medicines using gin (dms_fold(name) gin_trgm_ops)');

    // The day view pages on (visited_at, id) and (follow_up_at, id): the keyset needs the id in the key.
    // The report's range scan on visited_at uses the wider index as well as the one it replaces.
    this.addSql('create index visits_visited_at_id on visits (visited_at, id)');
    this.addSql('drop index visits_visited_at');
    this.addSql('create index visits_follow_up_at_id on visits (follow_up_at, id) where follow_up_at is not null');
    this.addSql('drop index visits_follow_up_at');

    // A pending X-ray can be cancelled: the row stays (what was announced, by whom, is part of the record).
    this.addSql('alter table xrays drop constraint xrays_status_check');
    this.addSql("alter table xrays add constraint xrays_status_check check (status in ('pending', 'uploaded', 'cancelled'))");
  }

  override async down(): Promise<void> {
    this.addSql("delete from xrays where status = 'cancelled'");
    this.addSql('alter table xrays drop constraint xrays_status_check');
    this.addSql("alter table xrays add constraint xrays_status_check check (status in ('pending', 'uploaded'))");
    this.addSql('create index visits_follow_up_at on visits (follow_up_at) where follow_up_at is not null');
    this.addSql('drop index visits_follow_up_at_id');
    this.addSql('create index visits_visited_at on visits (visited_at)');
    this.addSql('drop index visits_visited_at_id');
    this.addSql('drop index medicines_name_search');
    this.addSql('drop index patients_date_of_birth');
    this.addSql('drop index patients_phone_suffix');
    this.addSql('drop index patients_name_search');
    this.addSql('drop function dms_phone_suffix_key(text)');
    this.addSql('drop function dms_fold(text)');
  }
}
