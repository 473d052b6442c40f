// The DR drill's verify after a password rotation: the restored copy keeps the app role's password
// of its restore point, while the verify task signs in as dms_app with today's secret. On a private
// PostgreSQL that checks passwords (SCRAM, as RDS does), drill:verify first resets dms_app through
// the master user the drill names, then verifies as dms_app.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../../api/cli.js';
import { APP_ROLE, scramVerifier } from '../../api/db/app-role.js';
import { LogCapture, migrateDatabase } from '../support/api.js';
import { pgUrl, sql, startOwnServer, type OwnServer } from '../support/postgres.js';

const SNAPSHOT_TIME_PASSWORD = 'snapshot-time-app-pw-Rk4vN8qLz2';
const TODAYS_PASSWORD = 'todays-rotated-app-pw-Jd7sW3mXe9';
const DRILL_MASTER = 'drill_master';

describe('drill:verify after the app password was rotated since the restore point', function () {
  this.timeout(60_000);
  let server: OwnServer;
  let database: string;
  const appUrl = (password: string): string => {
    const url = new URL(pgUrl(database, { user: APP_ROLE, port: server.port }));
    url.password = password;
    return url.toString();
  };
  const verify = async (env: Record<string, string>) => {
    const stdout = new LogCapture();
    const code = await runCommand(['drill:verify'], { env: { NODE_ENV: 'test', LOG_LEVEL: 'info', ...env }, stdout, stderr: new LogCapture() });
    return { code, result: JSON.parse(stdout.lines[0] ?? '{}') as Record<string, unknown> };
  };

  before(async () => {
    server = await startOwnServer();
    // Passwords are checked for every role but the superuser that sets the test up.
    writeFileSync(join(server.dataDir, 'pg_hba.conf'), 'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n');
    database = 'drill_restore';
    const admin = pgUrl('postgres', { port: server.port });
    await sql(admin, 'select pg_reload_conf()');
    await sql(admin, `create database ${database}`);
    const owner = pgUrl(database, { port: server.port });
    await migrateDatabase(owner);
    await sql(owner, `insert into users (id, email, name, role, password_hash, created_at, updated_at) values (gen_random_uuid(), 'drill@test.dms', 'Drill', 'admin', 'x', now(), now())`);
    // The restored copy: dms_app with the password of snapshot time; the master user with the
    // password the drill set through RDS (today's app password).
    await sql(owner, `create role ${APP_ROLE} login password '${scramVerifier(SNAPSHOT_TIME_PASSWORD)}'`);
    await sql(owner, `grant dms_api to ${APP_ROLE}`);
    await sql(owner, `create role ${DRILL_MASTER} login superuser password '${scramVerifier(TODAYS_PASSWORD)}'`);
  });
  after(() => server?.destroy());

  it("cannot sign in as dms_app with today's password on the restored copy (the finding)", async () => {
    await assert.rejects(sql(appUrl(TODAYS_PASSWORD), 'select 1'), /password authentication failed/);
    const { code, result } = await verify({ DATABASE_URL: appUrl(TODAYS_PASSWORD) });
    assert.equal(code, 1);
    assert.equal(result.ok, false);
  });

  it("resets dms_app to today's password through the master user, then verifies as dms_app", async () => {
    const { code, result } = await verify({ DATABASE_URL: appUrl(TODAYS_PASSWORD), DRILL_APP_ROLE_RESET_BY: DRILL_MASTER });
    assert.equal(code, 0, JSON.stringify(result));
    assert.deepEqual(result.appRolePasswordReset, { role: APP_ROLE, by: DRILL_MASTER });
    assert.equal((result.counts as Record<string, number>).users, 1);
    const [me] = (await sql(appUrl(TODAYS_PASSWORD), 'select current_user as name')).rows as { name: string }[];
    assert.equal(me?.name, APP_ROLE, "dms_app signs in with today's password, as the API would on a promoted copy");
  });

  it('fails with one JSON line, not a crash, when the master password was not aligned', async () => {
    await sql(pgUrl(database, { port: server.port }), `alter role ${DRILL_MASTER} password '${scramVerifier('some-other-password-Qp2x')}'`);
    const { code, result } = await verify({ DATABASE_URL: appUrl(TODAYS_PASSWORD), DRILL_APP_ROLE_RESET_BY: DRILL_MASTER });
    assert.equal(code, 1);
    assert.equal(result.ok, false);
  });
});
