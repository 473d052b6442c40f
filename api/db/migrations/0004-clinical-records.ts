import { Migration } from '@mikro-orm/migrations';

/** Visits (with follow-ups), medicines, Rx presets, prescriptions and X-ray metadata. */
export class ClinicalRecords extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table visits (
        id uuid primary key,
        patient_id uuid not null references patients (id),
        visited_at timestamptz not null,
        reason text not null,
        notes text,
        follow_up_at timestamptz,
        follow_up_notes text,
        created_by uuid references users (id),
        created_at timestamptz not null,
        updated_at timestamptz not null
      )`);
    this.addSql('create index visits_patient_visited on visits (patient_id, visited_at desc, id desc)');
    // /reports/visits counts by day over a range.
    this.addSql('create index visits_visited_at on visits (visited_at)');
    this.addSql('create index visits_follow_up_at on visits (follow_up_at) where follow_up_at is not null');

    this.addSql(`
      create table medicines (
        id uuid primary key,
        name text not null,
        form text,
        strength text,
        created_at timestamptz not null,
        updated_at timestamptz not null
      )`);
    // One row per (name, form, strength), whatever the letter case: a second "Amoxicillin 500 mg" is a 409.
    this.addSql(`create unique index medicines_identity on medicines (lower(name), lower(coalesce(form, '')), lower(coalesce(strength, '')))`);
    this.addSql('create index medicines_name_id on medicines (name, id)');

    this.addSql(`
      create table rx_presets (
        id uuid primary key,
        name text not null,
        items jsonb not null check (jsonb_typeof(items) = 'array'),
        created_by uuid references users (id),
        created_at timestamptz not null,
        updated_at timestamptz not null
      )`);
    this.addSql('create unique index rx_presets_name on rx_presets (lower(name))');
    this.addSql('create index rx_presets_created on rx_presets (created_at desc, id desc)');

    this.addSql(`
      create table prescriptions (
        id uuid primary key,
        patient_id uuid not null references patients (id),
        visit_id uuid not null references visits (id),
        prescriber_id uuid references users (id),
        items jsonb not null check (jsonb_typeof(items) = 'array'),
        notes text,
        document_key text not null unique,
        created_at timestamptz not null,
        updated_at timestamptz not null
      )`);
    this.addSql('create index prescriptions_visit_created on prescriptions (visit_id, created_at desc, id desc)');

    this.addSql(`
      create table xrays (
        id uuid primary key,
        patient_id uuid not null references patients (id),
        visit_id uuid not null references visits (id),
        object_key text not null unique,
        content_type text not null check (content_type in ('application/dicom', 'image/jpeg', 'image/png')),
        size_bytes bigint not null check (size_bytes > 0),
        description text,
        status text not null default 'pending' check (status in ('pending', 'uploaded')),
        uploaded_at timestamptz,
        created_by uuid references users (id),
        created_at timestamptz not null,
        updated_at timestamptz not null,
        check ((status = 'uploaded') = (uploaded_at is not null))
      )`);
    this.addSql('create index xrays_visit_created on xrays (visit_id, created_at desc, id desc)');

    // The migrator made its table before 0001 set default privileges: `drill:verify`, running as
    // the API role, reads it to report migrations a restored database lacks.
    this.addSql('grant select on schema_migrations to dms_api');
  }

  override async down(): Promise<void> {
    this.addSql('drop table xrays, prescriptions, rx_presets, medicines, visits');
  }
}
