import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { runCommand } from '../../api/cli.js';
import { APP_ROLE, EXPORTER_ROLE } from '../../api/db/app-role.js';
import { migrations } from '../../api/db/migrations/index.js';
import { LogCapture } from '../support/api.js';
import { createDatabase, ensureTestAppRole, sql } from '../support/postgres.js';

/** Runs a command in-process as the task would, returning its exit code and its one stdout line. */
async function command(args: string[], env: Record<string, string>): Promise<{ code: number; result: Record<string, unknown>; stderr: string[] }> {
  const stdout = new LogCapture();
  const stderr = new LogCapture();
  const code = await runCommand(args, { env: { NODE_ENV: 'test', LOG_LEVEL: 'info', ...env }, stdout, stderr });
  assert.equal(stdout.lines.length, 1, `one JSON line on stdout, got ${JSON.stringify(stdout.lines)}`);
  return { code, result: JSON.parse(stdout.lines[0]!), stderr: stderr.lines };
}

/** Does `password` match PostgreSQL's stored SCRAM-SHA-256 verifier? (RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key"))) */
function verifierAccepts(verifier: string, password: string): boolean {
  const [, iterations, salt, storedKey] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(verifier) ?? [];
  if (!iterations || !salt || !storedKey) return false;
  const salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), Number(iterations), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return createHash('sha256').update(clientKey).digest('base64') === storedKey;
}

describe('one-off commands of the migration and DR drill tasks', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof createDatabase>>;
  before(async () => {
    db = await createDatabase();
  });
  after(() => db?.drop());

  describe('migrate', () => {
    const password = `app-${Date.now()}-Xq9#vT2!kLm8`;

    it('applies every migration as the owner and creates the API login role with the app password', async () => {
      const { code, result, stderr } = await command(['migrate'], { DATABASE_URL: db.ownerUrl, DB_APP_PASSWORD: password });
      assert.equal(code, 0, JSON.stringify(result));
      assert.deepEqual(result.applied, migrations.map((m) => m.name));
      const { rows } = await sql(db.ownerUrl, `select rolcanlogin, rolsuper, rolpassword, pg_has_role('${APP_ROLE}', 'dms_api', 'member') as member from pg_authid where rolname = '${APP_ROLE}'`);
      assert.equal(rows[0].rolcanlogin, true);
      assert.equal(rows[0].rolsuper, false);
      assert.equal(rows[0].member, true);
      assert.ok(verifierAccepts(rows[0].rolpassword, password), 'the stored verifier is of the app password');
      assert.ok(!stderr.join('\n').includes(password), 'the password is never logged');
    });

    it('is idempotent, and rotates the password on the next run', async () => {
      const rotated = `${password}-rotated`;
      const { code, result } = await command(['migrate'], { DATABASE_URL: db.ownerUrl, DB_APP_PASSWORD: rotated });
      assert.equal(code, 0);
      assert.deepEqual(result.applied, []);
      const { rows } = await sql(db.ownerUrl, `select rolpassword from pg_authid where rolname = '${APP_ROLE}'`);
      assert.ok(verifierAccepts(rows[0].rolpassword, rotated));
      assert.ok(!verifierAccepts(rows[0].rolpassword, password));
    });

    it('creates the audit exporter login with DB_EXPORTER_PASSWORD: in dms_audit_exporter, not in dms_api', async () => {
      const exporterPassword = `exp-${Date.now()}-Zr4#pQ7!wNs1`;
      const { code, result, stderr } = await command(['migrate'], { DATABASE_URL: db.ownerUrl, DB_EXPORTER_PASSWORD: exporterPassword });
      assert.equal(code, 0, JSON.stringify(result));
      assert.deepEqual(result.rolesUpdated, [EXPORTER_ROLE]);
      const { rows } = await sql(db.ownerUrl, `select rolpassword, pg_has_role('${EXPORTER_ROLE}', 'dms_audit_exporter', 'member') as exporter,
        pg_has_role('${EXPORTER_ROLE}', 'dms_api', 'member') as api from pg_authid where rolname = '${EXPORTER_ROLE}'`);
      assert.deepEqual([rows[0].exporter, rows[0].api], [true, false]);
      assert.ok(verifierAccepts(rows[0].rolpassword, exporterPassword));
      assert.ok(!stderr.join('\n').includes(exporterPassword), 'the password is never logged');
      const weak = await command(['migrate'], { DATABASE_URL: db.ownerUrl, DB_EXPORTER_PASSWORD: 'short' });
      assert.match(String(weak.result.error), /DB_EXPORTER_PASSWORD/);
    });

    it('refuses a weak app password, naming the variable', async () => {
      const { code, result } = await command(['migrate'], { DATABASE_URL: db.ownerUrl, DB_APP_PASSWORD: 'short' });
      assert.equal(code, 1);
      assert.equal(result.ok, false);
      assert.match(String(result.error), /DB_APP_PASSWORD/);
    });

    it('refuses an unknown command or flag with exit 2', async () => {
      const stderr = new LogCapture();
      assert.equal(await runCommand(['audit:verfy'], { env: {}, stdout: new LogCapture(), stderr }), 2);
      assert.equal(await runCommand(['audit:verify', '--database-only'], { env: {}, stdout: new LogCapture(), stderr }), 2);
      assert.match(stderr.lines.join('\n'), /unknown flag --database-only/);
    });

    it('says which variable is missing instead of failing obscurely', async () => {
      const { code, result } = await command(['audit:verify'], {});
      assert.equal(code, 1);
      assert.deepEqual(result, { command: 'audit:verify', ok: false, error: 'configuration', variable: 'DATABASE_URL' });
    });
  });

  describe('drill:verify', () => {
    // The verify task connects as the app role: here the tests' one, a member of dms_api like dms_app.
    before(() => ensureTestAppRole(db.ownerUrl, { withGroups: true }));

    it('fails a database nobody can sign in to, passes one with a user, fails a broken chain', async () => {
      const empty = await command(['drill:verify'], { DATABASE_URL: db.appUrl });
      assert.equal(empty.code, 1);
      assert.equal((empty.result.counts as Record<string, number>).users, 0);

      await sql(db.ownerUrl, `insert into users (id, email, name, role, password_hash, created_at, updated_at) values (gen_random_uuid(), 'drill@test.dms', 'Drill', 'admin', 'x', now(), now())`);
      const good = await command(['drill:verify'], { DATABASE_URL: db.appUrl });
      assert.equal(good.code, 0, JSON.stringify(good.result));
      assert.deepEqual(good.result.pendingMigrations, []);
      assert.equal((good.result.audit as { ok: boolean }).ok, true);
      assert.equal((good.result.counts as Record<string, number>).users, 1);

      // A row that extends the head (the trigger allows it) but does not hash to itself.
      await sql(db.ownerUrl, `insert into audit_logs (seq, id, occurred_at, action, outcome, prev_hash, hash)
        values (1, gen_random_uuid(), now(), 'patient.update', 'success', repeat('0', 64), repeat('a', 64))`);
      const broken = await command(['drill:verify'], { DATABASE_URL: db.appUrl });
      assert.equal(broken.code, 1);
      assert.deepEqual((broken.result.audit as { firstBroken: { seq: string; reason: string } }).firstBroken.reason, 'hash_mismatch');
    });

    it('runs as its own process and prints exactly one JSON line, exit code agreeing', () => {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'api/cli.ts', 'drill:verify'], {
        env: { PATH: process.env.PATH, NODE_ENV: 'test', DATABASE_URL: db.appUrl, LOG_LEVEL: 'info' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(run.status, 1, 'the chain is broken since the previous test');
      const lines = run.stdout.trim().split('\n');
      assert.equal(lines.length, 1);
      assert.equal(JSON.parse(lines[0]!).ok, false);
    });
  });
});
