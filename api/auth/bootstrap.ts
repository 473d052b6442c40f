import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { recordAudit } from '../audit/record.js';
import { ConfigError, type Config } from '../config.js';
import { User } from '../db/entities.js';
import type { Logger } from '../logger.js';
import { hashPassword } from './passwords.js';
import { passwordProblem } from './password-policy.js';

export const DEV_ADMIN_EMAIL = 'admin@dms.local';
const BOOTSTRAP_ADMIN_NAME = 'Administrator';

/** Serialises first-admin creation across tasks starting at once: only one sees an empty table. */
const FIRST_ADMIN_LOCK = "hashtext('dms.first-admin')";

/**
 * Creates the first admin when no user exists:
 * - from `BOOTSTRAP_ADMIN_EMAIL` / `BOOTSTRAP_ADMIN_PASSWORD` in any environment (a password the
 *   policy refuses stops start-up, naming the variable, whether or not it would be used);
 * - otherwise, in development only (`npm start` on embedded defaults), `admin@dms.local` with a
 *   generated password printed once as `dev_admin_created`: the one log line that carries a
 *   password, so a newcomer can call the API at once. Never under NODE_ENV=production or test.
 */
export async function ensureFirstAdmin(em: EntityManager, config: Config, log: Logger): Promise<void> {
  const bootstrap = config.bootstrapAdmin;
  if (bootstrap) {
    const problem = passwordProblem(bootstrap.password, { email: bootstrap.email, name: BOOTSTRAP_ADMIN_NAME });
    if (problem) throw new ConfigError('BOOTSTRAP_ADMIN_PASSWORD', problem);
  } else if (config.env !== 'development') {
    return;
  }
  if ((await em.count(User, {})) > 0) return;

  const email = (bootstrap?.email ?? DEV_ADMIN_EMAIL).toLowerCase();
  const password = bootstrap?.password ?? randomBytes(18).toString('base64url');
  const source = bootstrap ? 'bootstrap' : 'development';
  const passwordHash = await hashPassword(password);
  const userId = await em.transactional(async (tx) => {
    await tx.execute(`select pg_advisory_xact_lock(${FIRST_ADMIN_LOCK})`);
    if ((await tx.count(User, {})) > 0) return undefined;
    const admin = tx.create(User, { email, name: bootstrap ? BOOTSTRAP_ADMIN_NAME : 'Development admin', role: 'admin', passwordHash, disabled: false });
    await tx.flush();
    await recordAudit(tx, { action: 'user.create', outcome: 'success', entity: 'user', entityId: admin.id, actorId: null, details: { role: 'admin', source } });
    return admin.id;
  });
  if (!userId) return;
  if (bootstrap) {
    log.info('bootstrap_admin_created', { userId, detail: 'the first admin was created from BOOTSTRAP_ADMIN_EMAIL; unset BOOTSTRAP_ADMIN_PASSWORD now' });
  } else {
    log.warn('dev_admin_created', {
      userId,
      detail: `development admin created: sign in as ${DEV_ADMIN_EMAIL} with ${password} (printed once; never in production)`,
    });
  }
}
