import { randomBytes } from 'node:crypto';
import { hashPassword } from '../../api/auth/passwords.js';
import type { Role } from '../../api/db/entities.js';
import { sharedDatabase, type TestApi } from './api.js';
import { sql } from './postgres.js';

/**
 * Every credential the suite handed to an API: passwords, access and refresh tokens, signing keys.
 * The last test file of the run (test/zz-log-secrets.test.ts) checks that none reached a log line.
 */
export const usedSecrets = new Set<string>();

export function rememberSecret<T extends string>(value: T): T {
  usedSecrets.add(value);
  return value;
}

/** Rate limits no functional test reaches: only the rate-limit tests exercise the budgets. */
export const UNLIMITED = {
  RATE_LIMIT_LOGIN_MAX: '100000',
  RATE_LIMIT_SENSITIVE_MAX: '100000',
  RATE_LIMIT_ROLE_MAX: 'admin=100000,doctor=100000,staff=100000,auditor=100000',
};

/** A password the policy accepts (random, 24 characters), remembered for the log scan. */
export function strongPassword(): string {
  return rememberSecret(`Pw-${randomBytes(16).toString('base64url')}`);
}

export function uniqueEmail(label = 'user'): string {
  return `${label}-${randomBytes(5).toString('hex')}@test.dms`;
}

export interface TestUser {
  id: string;
  email: string;
  password: string;
  role: Role;
}

/**
 * A user written straight into the run's database, as the bootstrap admin or an earlier admin
 * would have created it (the first admin has no one to create it over HTTP).
 */
export async function createUser(role: Role, { email = uniqueEmail(role), password = strongPassword(), databaseUrl }: { email?: string; password?: string; databaseUrl?: string } = {}): Promise<TestUser> {
  const { rows } = await sql(
    databaseUrl ?? (await sharedDatabase()).ownerUrl,
    `insert into users (id, email, name, role, password_hash, disabled, created_at, updated_at)
     values (gen_random_uuid(), $1, $2, $3, $4, false, now(), now()) returning id`,
    [email.toLowerCase(), `Test ${role}`, role, await hashPassword(password)],
  );
  return { id: rows[0].id as string, email: email.toLowerCase(), password, role };
}

export interface SignedIn extends TestUser {
  accessToken: string;
  refreshToken: string;
}

/** Signs in over HTTP; the tokens are remembered for the log scan. */
export async function signIn(api: TestApi, user: TestUser, headers: Record<string, string> = {}): Promise<SignedIn> {
  const res = await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password }, headers });
  if (res.status !== 200) throw new Error(`sign-in of a ${user.role} answered ${res.status} ${JSON.stringify(res.body)}`);
  return { ...user, accessToken: rememberSecret(res.body.accessToken as string), refreshToken: rememberSecret(res.body.refreshToken as string) };
}

/** A new user of `role`, signed in: what most route tests need. */
export async function signedIn(api: TestApi, role: Role): Promise<SignedIn> {
  return signIn(api, await createUser(role));
}

/** Audit records of one action (and entity id), chained or still queued, oldest first, read as the owner. */
export async function auditRows(action: string, entityId?: string): Promise<Record<string, unknown>[]> {
  const { ownerUrl } = await sharedDatabase();
  const { rows } = await sql(
    ownerUrl,
    `select action, outcome, entity, entity_id, actor_id, actor_role, ip, request_id, details from audit_trail
     where action = $1 and ($2::text is null or entity_id = $2) order by occurred_at, id`,
    [action, entityId ?? null],
  );
  return rows;
}

/**
 * One sign-in attempt for an e-mail that does not exist, as the client at `clientIp` behind one
 * proxy (the ALB appends the address it saw to X-Forwarded-For; `forged` is what the client wrote).
 */
export function loginAttempt(api: TestApi, { clientIp, forged }: { clientIp?: string; forged?: string } = {}) {
  const xff = [forged, clientIp].filter(Boolean).join(', ');
  return api.request('POST', '/auth/login', {
    body: { email: uniqueEmail('probe'), password: 'not-a-real-password' },
    headers: xff ? { 'x-forwarded-for': xff } : {},
  });
}

/**
 * A random address of the IPv6 documentation range (RFC 3849) in a /64 of its own: each call is
 * another client (the API counts an IPv6 client by its /64).
 */
export function testClientIp(): string {
  const group = () => randomBytes(2).toString('hex');
  return `2001:db8:${group()}:${group()}::${group()}`;
}
