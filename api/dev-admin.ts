import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { recordAudit } from './audit/record.js';
import { DEV_ADMIN_EMAIL } from './auth/bootstrap.js';
import { clearLockout } from './auth/lockout.js';
import { hashPassword } from './auth/passwords.js';
import { revokeSessions } from './auth/sessions.js';
import { ConfigError, loadConfig } from './config.js';
import { User } from './db/entities.js';
import { createOrm, migrate } from './db/orm.js';
import { embeddedPostgres } from './embedded.js';
import { DATA_DIR, lockDataDir, StartupError } from './dev-data.js';
import { createLogger } from './logger.js';

/**
 * `npm run dev:admin-password`: a new password for the development admin (`admin@dms.local`) of
 * `npm start`'s embedded database, for a newcomer who lost the one printed at the first start.
 * Development only, and only on the embedded database (with `npm start` stopped: it holds `.data/`).
 * The account is enabled, its lock-out cleared, its sessions ended; the change is audited as
 * `user.update` (source `dev-admin-password`) with its `session.revoke`, like an admin's reset.
 * Resolves to the line to print.
 */
export async function resetDevAdminPassword(env: Record<string, string | undefined> = process.env, dataDir = DATA_DIR): Promise<string> {
  const config = loadConfig(env, 'cli');
  if (config.env !== 'development') throw new ConfigError('NODE_ENV', 'dev:admin-password is for development only (NODE_ENV unset or development)');
  if (config.databaseUrl) throw new ConfigError('DATABASE_URL', 'dev:admin-password resets the embedded database of npm start; unset DATABASE_URL (for another database, an admin resets passwords with PATCH /admin/users/{id})');
  const log = createLogger({ level: 'error', env: config.env, service: 'dms-dev-admin', stream: process.stderr });
  const release = await lockDataDir(dataDir);
  try {
    const pg = await embeddedPostgres(dataDir);
    try {
      const orm = await createOrm({ databaseUrl: pg.url, replicaUrls: [], log, poolMax: 1 });
      try {
        await migrate(orm);
        const password = randomBytes(18).toString('base64url');
        const passwordHash = await hashPassword(password);
        await orm.em.fork().transactional(async (tx) => {
          const admin = await tx.findOne(User, { email: DEV_ADMIN_EMAIL });
          if (!admin) throw new StartupError(`there is no ${DEV_ADMIN_EMAIL} in ${dataDir}/postgres: npm start creates it (and prints its password) when the database has no user`);
          tx.assign(admin, { passwordHash, disabled: false, mustChangePassword: false });
          await tx.flush();
          await clearLockout(tx, admin.id);
          await recordAudit(tx, { action: 'user.update', outcome: 'success', entity: 'user', entityId: admin.id, actorId: null, details: { fields: 'password', role: admin.role, disabled: false, mustChangePassword: false, source: 'dev-admin-password' } });
          const ended = await revokeSessions(tx, { userId: admin.id }, 'password_reset');
          await recordAudit(tx, { action: 'session.revoke', outcome: 'success', entity: 'user', entityId: admin.id, actorId: null, details: { reason: 'password_reset', sessionsRevoked: ended } });
        });
        return `dms-dev-admin: sign in as ${DEV_ADMIN_EMAIL} with ${password} (development only; printed once)`;
      } finally {
        await orm.close();
      }
    } finally {
      await pg.stop();
    }
  } finally {
    await release();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    process.stdout.write(`${await resetDevAdminPassword()}\n`);
  } catch (error) {
    const known = error instanceof ConfigError || error instanceof StartupError;
    process.stderr.write(`dms-dev-admin: ${known ? error.message : `failed: ${error instanceof Error ? error.message : String(error)}`}\n`);
    process.exitCode = 1;
  }
}
