/**
 * Rotation of a PostgreSQL login role's password (`dms_app`, `dms_audit_export`): single user, then a
 * forced new deployment of the service that uses it.
 *
 * PostgreSQL keeps one password per role, and ECS gives a task its secrets once, at start: from
 * setSecret until the service's new tasks are up, a running API task that opens a NEW connection with
 * the old password is refused (connections already open keep working; the pool keeps them for 30 s
 * of idleness). finishSecret therefore redeploys the service at once, and the schedule puts the
 * rotation in the quiet hours. Alternating users would close that window but needs a second login
 * role per user and the user name out of the task's DATABASE_URL; the window is the accepted cost.
 * The scheduled jobs read the secret when they start: nothing to redeploy for them.
 */
import { randomBytes } from 'node:crypto';
import { appPasswordProblem, scramVerifier } from '../../api/db/app-role.js';
import { RotationError, type RotationStrategy } from './protocol.js';

/** The part of a pg client the rotation uses. */
export interface Queryable {
  query(text: string): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}

export interface DatabaseLoginDeps {
  /** The login role whose password the secret holds (a constant of the program, never input). */
  role: 'dms_app' | 'dms_audit_export';
  /** The master user's credentials (the RDS-managed secret), read when setSecret runs. */
  master(): Promise<{ username: string; password: string }>;
  /** A connection to the database as `user` (TLS-verified in Lambda). */
  connect(user: string, password: string): Promise<Queryable>;
  /** Restarts the service whose tasks hold the password; absent when only scheduled jobs use it. */
  redeploy?: () => Promise<void>;
}

/** 32 random bytes, base64url: 43 printable characters, as the program generates the first one. */
export const newDatabasePassword = (): string => randomBytes(32).toString('base64url');

async function withConnection<T>(connect: Promise<Queryable>, use: (client: Queryable) => Promise<T>): Promise<T> {
  const client = await connect;
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

export function databaseLoginRotation(deps: DatabaseLoginDeps): RotationStrategy {
  const setPassword = async (password: string): Promise<void> => {
    const problem = appPasswordProblem(password);
    if (problem) throw new RotationError(`the pending ${deps.role} password ${problem}`);
    const master = await deps.master();
    // The SCRAM verifier, not the password: log_statement = ddl logs this statement.
    await withConnection(deps.connect(master.username, master.password), (client) => client.query(`alter role ${deps.role} with password '${scramVerifier(password)}'`));
  };
  return {
    create: () => newDatabasePassword(),
    set: (pending) => setPassword(pending),
    async test(pending) {
      const [row] = await withConnection(deps.connect(deps.role, pending), async (client) => (await client.query('select current_user as name')).rows);
      if (row?.['name'] !== deps.role) throw new RotationError(`signed in with the pending password as ${String(row?.['name'])}, not ${deps.role}`);
    },
    // Set again once it is current: a migration task that ran since setSecret set the role back to
    // the then-current password (it sets the role from the secret on every deployment).
    async finish(current) {
      await setPassword(current);
      await deps.redeploy?.();
    },
  };
}
