import { Migration } from '@mikro-orm/migrations';

export class UsersAndPatients extends Migration {
  override async up(): Promise<void> {
    // The API's login role (dms_app in production) is a member of dms_api and gets nothing else:
    // tables created by the migration runner grant it DML, and audit_logs takes UPDATE/DELETE back.
    this.addSql(`do $$ begin
      if not exists (select from pg_roles where rolname = 'dms_api') then create role dms_api nologin; end if;
    end $$`);
    this.addSql('grant usage on schema public to dms_api');
    this.addSql('alter default privileges grant select, insert, update, delete on tables to dms_api');
    this.addSql('alter default privileges grant usage, select on sequences to dms_api');
    this.addSql(`
      create table users (
        id uuid primary key,
        email text not null,
        name text not null,
        role text not null check (role in ('admin', 'doctor', 'staff', 'auditor')),
        password_hash text not null,
        disabled boolean not null default false,
        created_at timestamptz not null,
        updated_at timestamptz not null
      )`);
    this.addSql('create unique index users_email_unique on users (email)');
    this.addSql(`
      create table patients (
        id uuid primary key,
        full_name text not null,
        date_of_birth date not null,
        sex text,
        phone text,
        email text,
        notes text,
        deleted_at timestamptz,
        created_at timestamptz not null,
        updated_at timestamptz not null
      )`);
    this.addSql('create index patients_created_at_id on patients (created_at desc, id desc) where deleted_at is null');
  }

  override async down(): Promise<void> {
    this.addSql('drop table patients');
    this.addSql('drop table users');
  }
}
