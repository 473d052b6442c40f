import { Migration } from '@mikro-orm/migrations';

/**
 * Audited writes queue on one lock to extend the hash chain, so every round trip made while
 * holding it caps the system's write rate. This takes the lock and reads the head in one call:
 * inside a PL/pgSQL function each statement takes a fresh snapshot (READ COMMITTED), so the head
 * read after the lock is granted sees the commit of whoever held it before.
 */
export class AuditLockChainHead extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create function audit_lock_chain_head(out seq text, out hash text)
      language plpgsql volatile as $$
      begin
        perform pg_advisory_xact_lock(7308327773616469);
        select h.seq::text, h.hash into seq, hash from audit_chain_head h where singleton;
      end $$`);
  }

  override async down(): Promise<void> {
    this.addSql('drop function audit_lock_chain_head()');
  }
}
