import assert from 'node:assert/strict';
import { DEV_ADMIN_EMAIL, ensureFirstAdmin } from '../../api/auth/bootstrap.js';
import { ConfigError, loadConfig } from '../../api/config.js';
import { createOrm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import { LogCapture, migratedDatabase, startTestApiOn, type TestApi } from '../support/api.js';
import { rememberSecret, strongPassword, uniqueEmail } from '../support/auth.js';
import { createDatabase, sql } from '../support/postgres.js';

type Database = Awaited<ReturnType<typeof createDatabase>>;

/** A migrated database with no user in it, as a new environment starts. */
async function emptyDatabase(): Promise<Database> {
  const db = await migratedDatabase();
  return db;
}

const users = async (db: Database) => (await sql(db.ownerUrl, 'select email, role from users')).rows;

describe('the first admin', function () {
  this.timeout(60_000);
  const databases: Database[] = [];
  const apis: TestApi[] = [];
  const fresh = async () => {
    const db = await emptyDatabase();
    databases.push(db);
    return db;
  };
  const start = async (db: Database, env: Record<string, string>) => {
    const api = await startTestApiOn(db, env);
    apis.push(api);
    return api;
  };
  after(async () => {
    await Promise.all(apis.map((api) => api.close()));
    await Promise.all(databases.map((db) => db.drop()));
  });

  describe('from BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD', () => {
    it('is created when no user exists, once, even by two tasks starting together, and audited', async () => {
      const db = await fresh();
      const email = uniqueEmail('first-admin');
      const password = strongPassword();
      const env = { BOOTSTRAP_ADMIN_EMAIL: email, BOOTSTRAP_ADMIN_PASSWORD: password };
      const [a] = await Promise.all([start(db, env), start(db, env)]);
      assert.deepEqual(await users(db), [{ email, role: 'admin' }]);
      const login = await a!.request('POST', '/auth/login', { body: { email, password } });
      assert.equal(login.status, 200);
      rememberSecret(login.body.accessToken);
      rememberSecret(login.body.refreshToken);
      const audit = (await sql(db.ownerUrl, "select actor_id, details from audit_trail where action = 'user.create'")).rows;
      assert.deepEqual(audit, [{ actor_id: null, details: { role: 'admin', source: 'bootstrap' } }]);
      const created = apis.flatMap((api) => api.logs.records('bootstrap_admin_created'));
      assert.equal(created.length, 1);
      assert.doesNotMatch(JSON.stringify(created), new RegExp(email));
    });

    it('changes nothing when a user exists already', async () => {
      const db = await fresh();
      await start(db, { BOOTSTRAP_ADMIN_EMAIL: uniqueEmail('one'), BOOTSTRAP_ADMIN_PASSWORD: strongPassword() });
      await start(db, { BOOTSTRAP_ADMIN_EMAIL: uniqueEmail('two'), BOOTSTRAP_ADMIN_PASSWORD: strongPassword() });
      assert.equal((await users(db)).length, 1);
    });

    it('stops start-up naming BOOTSTRAP_ADMIN_PASSWORD when the password fails the policy', async () => {
      const db = await fresh();
      for (const weak of ['short', 'password1234']) {
        await assert.rejects(start(db, { BOOTSTRAP_ADMIN_EMAIL: uniqueEmail(), BOOTSTRAP_ADMIN_PASSWORD: weak }), (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.equal(error.variable, 'BOOTSTRAP_ADMIN_PASSWORD');
          assert.ok(!error.message.includes(weak));
          return true;
        });
      }
      assert.equal((await users(db)).length, 0);
    });
  });

  describe('on embedded defaults (development, nothing set)', () => {
    it('is admin@dms.local with a generated password printed once, on a dedicated warn line', async () => {
      const db = await fresh();
      const first = await start(db, { NODE_ENV: 'development' });
      const [line] = first.logs.records('dev_admin_created');
      assert.equal(line?.level, 'warn');
      const password = rememberSecret(/ with (\S+) \(printed once/.exec(String(line?.detail))?.[1] ?? '');
      assert.ok(password.length >= 24, 'a generated password of 24 characters');
      const login = await first.request('POST', '/auth/login', { body: { email: DEV_ADMIN_EMAIL, password } });
      assert.equal(login.status, 200);
      rememberSecret(login.body.accessToken);
      rememberSecret(login.body.refreshToken);
      const again = await start(db, { NODE_ENV: 'development' });
      assert.deepEqual(again.logs.records('dev_admin_created'), []);
      assert.deepEqual(await users(db), [{ email: DEV_ADMIN_EMAIL, role: 'admin' }]);
    });

    it('never exists under NODE_ENV=production or test', async () => {
      const db = await fresh();
      const logs = new LogCapture();
      const log = createLogger({ level: 'info', env: 'production', stream: logs });
      const orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [], log });
      try {
        for (const env of ['production', 'test'] as const) {
          await ensureFirstAdmin(orm.em.fork(), { ...loadConfig({}), env }, log);
        }
      } finally {
        await orm.close();
      }
      assert.equal((await users(db)).length, 0);
      assert.deepEqual(logs.records('dev_admin_created'), []);
    });
  });
});
