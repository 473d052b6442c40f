import type pg from 'pg';
import { perTurn } from '../turn-batching.js';

/**
 * Rows of one table by id, read for every request of one turn of the event loop in one statement
 * (`… where id = any($1)`, DataLoader's batching): one round trip, one wake-up of PostgreSQL and
 * one plan for all of them. On the primary: a request sees every write committed before it
 * arrived. `condition` narrows the rows (`deleted_at is null`).
 */
export class RowsById {
  /** The row with `id` (a UUID), or `undefined`. */
  readonly read: (id: string) => Promise<Record<string, unknown> | undefined>;

  constructor(pool: () => Promise<pg.Pool>, table: string, condition: string) {
    const statement = `select * from ${table} where id = any($1::uuid[]) and ${condition}`;
    this.read = perTurn(async (ids: string[]) => {
      const { rows } = await (await pool()).query<Record<string, unknown>>(statement, [[...new Set(ids)]]);
      const byId = new Map(rows.map((row) => [row.id as string, row]));
      return ids.map((id) => byId.get(id));
    });
  }
}
