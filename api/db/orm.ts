import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { auditSubscriber } from '../audit/record.js';
import { AuthSession, LoginFailure, RefreshToken } from '../auth/entities.js';
import type { Logger } from '../logger.js';
import { recordEntities } from '../records/entities.js';
import { Patient, User } from './entities.js';
import { migrations } from './migrations/index.js';

export type Orm = MikroORM;

export const entities = [User, Patient, AuthSession, RefreshToken, LoginFailure, ...recordEntities];

export interface OrmOptions {
  databaseUrl: string;
  replicaUrls: string[];
  log: Logger;
  /** Pool size per connection (primary and each replica). */
  poolMax?: number;
}

/**
 * MikroORM on the primary with each replica as a read connection. Reads go to the primary unless
 * a caller asks for `connectionType: 'read'`: only reads that may be stale opt in, so a client
 * always reads its own writes.
 */
export function ormConfig({ databaseUrl, replicaUrls, log, poolMax = 10 }: OrmOptions): Options {
  return {
    entities,
    clientUrl: databaseUrl,
    replicas: replicaUrls.map((clientUrl, index) => ({ name: `replica-${index + 1}`, clientUrl })),
    preferReadReplicas: false,
    extensions: [Migrator],
    subscribers: [auditSubscriber(log)],
    migrations: { migrationsList: migrations, tableName: 'schema_migrations', silent: true, transactional: true, allOrNothing: true, snapshot: false },
    pool: { min: 0, max: poolMax, idleTimeoutMillis: 30_000 },
    // Fail fast while the database is away, so requests answer 503 instead of hanging.
    driverOptions: { connectionTimeoutMillis: 3_000 },
    logger: (message) => log.debug('orm', { detail: message }),
    debug: false,
  };
}

export function createOrm(options: OrmOptions): Promise<Orm> {
  return MikroORM.init(ormConfig(options));
}

/** Applies pending migrations on the primary (never through a replica). Returns their names. */
export async function migrate(orm: Orm): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((m) => m.name);
}
