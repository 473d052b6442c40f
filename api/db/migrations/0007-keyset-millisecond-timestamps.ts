import { Migration } from '@mikro-orm/migrations';

/** Every column a list pages on by (timestamp, id): see `instantKey` in api/http/pagination.ts. */
const KEYSET_TIMESTAMPS = [
  ['users', 'created_at'],
  ['patients', 'created_at'],
  ['visits', 'visited_at'],
  ['prescriptions', 'created_at'],
  ['rx_presets', 'created_at'],
  ['xrays', 'created_at'],
] as const;

/**
 * A page cursor carries its timestamp as a JavaScript Date, exact to the millisecond, but
 * `timestamptz` keeps microseconds: a row stamped by the database's now() (an admin's SQL, the
 * tests) at .000789 is served, its cursor says .000, and "strictly before .000" then skips every
 * other row of that millisecond. Storing these columns at millisecond precision makes what the
 * cursor holds exactly what is stored (PostgreSQL rounds existing values), so ties fall to the id.
 * Each ALTER rewrites its table and its indexes under an exclusive lock: run it in a deploy window.
 */
export class KeysetMillisecondTimestamps extends Migration {
  override async up(): Promise<void> {
    for (const [table, column] of KEYSET_TIMESTAMPS) this.addSql(`alter table ${table} alter column ${column} type timestamptz(3)`);
  }

  override async down(): Promise<void> {
    for (const [table, column] of KEYSET_TIMESTAMPS) this.addSql(`alter table ${table} alter column ${column} type timestamptz`);
  }
}
