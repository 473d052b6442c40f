import type { EventSubscriber, TransactionEventArgs } from '@mikro-orm/core';
import pg from 'pg';
import type { Orm } from '../db/orm.js';
import type { Logger } from '../logger.js';
import { takeEndedSessions, type SessionSelector } from './sessions.js';
import type { AccessClaims } from './tokens.js';

/** The channel migration 0005's trigger notifies when a session is revoked or deleted. */
const CHANNEL = 'dms_session_ended';
/** A backstop only: revocations reach the cache through the channel, at commit. */
const CACHE_TTL_MS = 30_000;
const MAX_ENTRIES = 50_000;
const RECONNECT_DELAYS_MS = [250, 1_000, 5_000];

interface LiveEntry {
  userId: string;
  role: string;
  restriction: string | null;
  validUntil: number;
}

interface SessionRow {
  user_id: string;
  role: string;
  restriction: string | null;
  /** Epoch milliseconds (the ORM's pool parses timestamps as text). */
  expires_ms: number | string;
  live: boolean;
}

/** The token was issued for this session as it is: same user, same role, same restriction (or none). */
const matches = (userId: string, role: string, restriction: string | null, claims: AccessClaims) =>
  userId === claims.sub && role === claims.role && restriction === (claims.restriction ?? null);

/**
 * Is an access token's session still live? Every authenticated request asks, so that a revoked
 * session (logout, admin revocation, disabled user, changed role, refresh-token reuse) fails on
 * its next request, not at token expiry.
 *
 * The answer is cached per task, and a cached "live" is trusted only while this task LISTENs on
 * the primary: the trigger on `auth_sessions` NOTIFYs each session that ends as the revoking
 * transaction commits, and the task that revoked also forgets it the moment its own commit returns.
 * While the listener is down, every request asks the database, and the cache starts empty again
 * once it is back (a notification may have been missed). A lookup that raced a notification is
 * not cached.
 */
export class LiveSessions {
  private readonly cache = new Map<string, LiveEntry>();
  /** Bumped on every invalidation: a lookup begun before one does not fill the cache. */
  private generation = 0;
  private listener: pg.Client | undefined;
  private listening = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly orm: Orm,
    private readonly databaseUrl: string,
    private readonly log: Logger,
  ) {
    const subscriber: EventSubscriber = {
      afterTransactionCommit: ({ transaction }: TransactionEventArgs) => {
        if (transaction) for (const ended of takeEndedSessions(transaction as object)) this.forget(ended);
      },
    };
    orm.em.getEventManager().registerSubscriber(subscriber);
  }

  /** Starts listening in the background; until it does, every check asks the database. */
  start(): void {
    void this.listen(0);
  }

  async isLive(claims: AccessClaims): Promise<boolean> {
    const now = Date.now();
    if (this.listening) {
      const known = this.cache.get(claims.sid);
      if (known && now < known.validUntil && matches(known.userId, known.role, known.restriction, claims)) return true;
    }
    const generation = this.generation;
    const pool = await this.orm.em.getConnection().getNativeClient();
    const { rows } = await pool.query<SessionRow>(
      'select user_id, role, restriction, extract(epoch from expires_at)::float8 * 1000 as expires_ms, (revoked_at is null and expires_at > now()) as live from auth_sessions where id = $1',
      [claims.sid],
    );
    const row = rows[0];
    const live = row?.live === true && matches(row.user_id, row.role, row.restriction, claims);
    if (live && this.listening && generation === this.generation) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(claims.sid, { userId: row.user_id, role: row.role, restriction: row.restriction, validUntil: Math.min(now + CACHE_TTL_MS, Number(row.expires_ms)) });
    }
    return live;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.listening = false;
    await this.listener?.end().catch(() => undefined);
  }

  private forget(which: SessionSelector): void {
    this.generation++;
    if ('sessionId' in which) this.cache.delete(which.sessionId);
    else if ('sessionIds' in which) for (const id of which.sessionIds) this.cache.delete(id);
    else for (const [id, entry] of this.cache) if (entry.userId === which.userId && id !== which.except) this.cache.delete(id);
  }

  private clear(): void {
    this.generation++;
    this.cache.clear();
  }

  private async listen(attempt: number): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 3_000 });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    client.on('notification', ({ payload }) => {
      if (payload) this.forget({ sessionId: payload });
    });
    try {
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
    } catch {
      await client.end().catch(() => undefined);
      this.reconnect(attempt + 1);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    this.clear();
    this.listening = true;
    if (attempt > 0) this.log.info('session_listener_recovered', { attempts: attempt });
  }

  private lost(client: pg.Client): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    this.listening = false;
    this.clear();
    if (this.closed) return;
    this.log.warn('session_listener_lost', { detail: 'session checks go to the database until it is back' });
    this.reconnect(1);
  }

  private reconnect(attempt: number): void {
    if (this.closed) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(attempt - 1, RECONNECT_DELAYS_MS.length - 1)]!;
    this.retry = setTimeout(() => void this.listen(attempt), delay);
  }
}
