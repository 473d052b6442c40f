import { Migration } from '@mikro-orm/migrations';

/**
 * `Idempotency-Key` (IETF httpapi idempotency-key draft): the first response to a create, kept per
 * user and key for 24 hours, written in the same transaction as the change it answers for. A row
 * exists only once its change has committed, so a retry either finds the answer or repeats the
 * request; one in flight holds the key's index entry, so a concurrent retry waits for it.
 */
export class IdempotencyKeys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table idempotency_keys (
        user_id uuid not null references users (id) on delete cascade,
        key text not null check (length(key) between 1 and 255),
        request_hash text not null,
        status_code smallint,
        response jsonb,
        created_at timestamptz not null default now(),
        primary key (user_id, key)
      )`);
    this.addSql('create index idempotency_keys_created_at on idempotency_keys (created_at)');
  }

  override async down(): Promise<void> {
    this.addSql('drop table idempotency_keys');
  }
}
