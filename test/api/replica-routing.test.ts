import assert from 'node:assert/strict';
import { createOrm, migrate, type Orm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { LogCapture, sharedDatabase, type TestDatabase } from '../support/api.js';
import { createDatabase, eventually, pgUrl, runCluster, sql } from '../support/postgres.js';

describe('read replicas (DATABASE_REPLICA_URLS)', () => {
  let db: TestDatabase;
  let orm: Orm;
  before(async () => {
    db = await sharedDatabase();
    orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [db.replicaAppUrl], log: createLogger({ level: 'error', env: 'test', stream: new LogCapture() }) });
  });
  after(() => orm.close());

  const serverPort = async (type: 'read' | 'write') =>
    Number((await orm.em.fork().getConnection(type).execute<{ port: number }[]>('select inet_server_port() as port'))[0]!.port);

  it('sends reads that may be stale to the streaming replica', async () => {
    assert.equal(await serverPort('read'), db.replica.port);
    const [row] = await orm.em.fork().getConnection('read').execute<{ standby: boolean }[]>('select pg_is_in_recovery() as standby');
    assert.equal(row!.standby, true, 'the read connection is a hot standby, not a second connection to the primary');
  });

  it('sends writes, and reads by default, to the primary so a client reads its own writes', async () => {
    const { port: primaryPort, dataDir } = await runCluster();
    assert.equal(await serverPort('write'), primaryPort);
    const { rows: [own] } = await sql(db.ownerUrl, 'show data_directory');
    assert.equal(own.data_directory, dataDir, "the run's own cluster: its roles are no other run's");
    const em = orm.em.fork();
    const [row] = await em.getConnection().execute<{ port: number }[]>('select inet_server_port() as port');
    assert.equal(Number(row!.port), primaryPort);
  });

  it('replicates what the primary commits', async () => {
    const email = `replica-${Date.now()}@dms.test`;
    await sql(db.ownerUrl, `insert into users (id, email, name, role, password_hash, created_at, updated_at) values (gen_random_uuid(), $1, 'r', 'staff', 'x', now(), now())`, [email]);
    await eventually(async () => {
      const { rowCount } = await sql(db.replicaAppUrl, 'select 1 from users where email = $1', [email]);
      assert.equal(rowCount, 1);
    });
  });

  it('runs migrations on the primary even when replicas are configured', async () => {
    const fresh = await createDatabase();
    const owner = await createOrm({ databaseUrl: fresh.ownerUrl, replicaUrls: [pgUrl(fresh.name, { port: db.replica.port })], log: createLogger({ level: 'error', env: 'test', stream: new LogCapture() }) });
    try {
      const applied = await migrate(owner);
      assert.ok(applied.length > 0);
      const { rows } = await sql(fresh.ownerUrl, 'select count(*)::int as n from schema_migrations');
      assert.equal(rows[0].n, applied.length);
    } finally {
      await owner.close();
      await fresh.drop();
    }
  });
});
