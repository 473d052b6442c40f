import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';

/** The login role the API connects as in production (CONTRACT §1: `postgres://dms_app@…`), a member of `dms_api`. */
export const APP_ROLE = 'dms_app';
/** The login role of the audit export and purge jobs, a member of `dms_audit_exporter` (migration 0013). */
export const EXPORTER_ROLE = 'dms_audit_export';
const SCRAM_ITERATIONS = 4096;

/**
 * A SCRAM-SHA-256 verifier (RFC 5802/7677, PostgreSQL's `rolpassword` format), computed here so
 * the password itself never appears in a statement the server could log.
 */
export function scramVerifier(password: string, salt = randomBytes(16)): string {
  const salted = pbkdf2Sync(password, salt, SCRAM_ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Why a password cannot be set this way, or `undefined`. */
export function appPasswordProblem(password: string): string | undefined {
  // PostgreSQL applies SASLprep to non-ASCII passwords; printable ASCII is the same before and after.
  if (!/^[\x21-\x7e]+$/.test(password)) return 'must be printable ASCII without spaces';
  if (password.length < 16) return 'must be at least 16 characters';
  return undefined;
}

/**
 * Creates or updates a login role: LOGIN, the given password, member of `group` and nothing else,
 * so it has exactly the privileges the migrations grant that group. Role names are constants here.
 */
export async function ensureLoginRole(em: EntityManager, { role, group, password }: { role: typeof APP_ROLE | typeof EXPORTER_ROLE; group: 'dms_api' | 'dms_audit_exporter'; password: string }): Promise<void> {
  const verifier = scramVerifier(password);
  await em.transactional(async (tx) => {
    await tx.execute(`do $$ begin
      if not exists (select from pg_roles where rolname = '${role}') then create role ${role} login; end if;
    end $$`);
    // The verifier is base64 and '$'/':' only: nothing in it can close the literal.
    await tx.execute(`alter role ${role} with login password '${verifier}'`);
    await tx.execute(`grant ${group} to ${role}`);
  });
}
