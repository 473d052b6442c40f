import { LockMode } from '@mikro-orm/core';
import { apiRouter, type ApiRouter } from '../http/router.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { auditActor, recordAudit } from '../audit/record.js';
import { transactionalUnique } from '../db/transactions.js';
import { ROLES, User, type Role } from '../db/entities.js';
import { conflict, notFound } from '../http/errors.js';
import { createdBefore, createdKey, pageOf, listQuery } from '../http/pagination.js';
import { boolean, email, isUuid, oneOf, optional, parseBody, parsePatch, text, } from '../http/validation.js';
import type { SessionEndReason } from './entities.js';
import { requireRole } from './access.js';
import { clearLockout } from './lockout.js';
import { hashPassword } from './passwords.js';
import { PASSWORD_MAX_LENGTH, acceptablePassword } from './password-policy.js';
import { secret } from './routes.js';
import { removeMfa, usersWithMfa } from './mfa.js';
import { revokeSessions } from './sessions.js';
import { idempotent } from '../http/idempotency.js';

/**
 * A password a user will have from now on, with room for 128 code points in UTF-16 units: the policy
 * (which counts code points) is applied once its owner is known (`acceptablePassword`).
 */
const newPassword = () => secret(PASSWORD_MAX_LENGTH * 2);

const userFields = {
  email: email(),
  password: newPassword(),
  role: oneOf(ROLES),
  name: text({ max: 200 }),
  /** A password the admin chose is one to change at the first sign-in. */
  mustChangePassword: optional(boolean()),
};
const userChanges = {
  name: text({ max: 200 }),
  role: oneOf(ROLES),
  disabled: boolean(),
  password: newPassword(),
  mustChangePassword: boolean(),
};

/** What a client sees of a user: never the password, its hash or an MFA secret; whether MFA is on. */
function present(user: User, withMfa: ReadonlySet<string>) {
  return {
    id: user.id, email: user.email, name: user.name, role: user.role, disabled: user.disabled,
    mustChangePassword: user.mustChangePassword, mfaEnabled: withMfa.has(user.id), createdAt: user.createdAt, updatedAt: user.updatedAt,
  };
}

const normaliseEmail = (address: string) => address.toLowerCase();

async function findUser(em: EntityManager, id: string, lock = false): Promise<User> {
  const user = isUuid(id) ? await em.findOne(User, id.toLowerCase(), lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {}) : null;
  if (!user) throw notFound('not_found', 'The user');
  return user;
}

/** Whether `changes` could take a user out of the enabled admins (it then needs `lockEnabledAdmins` first). */
const mayDemote = (changes: { role?: Role; disabled?: boolean }) => (changes.role !== undefined && changes.role !== 'admin') || changes.disabled === true;

/**
 * Locks every enabled admin row, in id order, and returns their ids. Taken before the target's own
 * row lock, and in the same order by every such change, so two admins demoting each other at once
 * queue on the first row instead of each holding one row and waiting for the other's (a deadlock);
 * the second then counts the admins as the first left them.
 */
async function lockEnabledAdmins(em: EntityManager): Promise<string[]> {
  const admins = await em.execute<{ id: string }[]>("select id from users where role = 'admin' and not disabled order by id for update");
  return admins.map((admin) => admin.id);
}

/** Refuses a change that would leave no enabled admin: nobody could manage users after it. */
function keepAnAdmin(enabledAdmins: string[], user: User, next: { role: Role; disabled: boolean }): void {
  const staysAdmin = next.role === 'admin' && !next.disabled;
  if (user.role !== 'admin' || user.disabled || staysAdmin) return;
  if (enabledAdmins.every((id) => id === user.id)) throw conflict('last_admin', 'This is the last enabled admin: make another admin first.');
}

/** Why a change ends the user's sessions (access tokens carry the role; a password change signs out everywhere). */
function endsSessions(user: User, changes: Partial<{ role: Role; disabled: boolean; password: string; mustChangePassword: boolean }>): SessionEndReason | undefined {
  if (changes.disabled === true && !user.disabled) return 'user_disabled';
  if (changes.role !== undefined && changes.role !== user.role) return 'role_changed';
  // A forced reset ends every session: the next sign-in can only change the password.
  if (changes.mustChangePassword === true) return 'password_reset';
  if (changes.password !== undefined) return 'password_changed';
  return undefined;
}

async function auditRevocation(em: EntityManager, ctx: Context, userId: string, reason: SessionEndReason, count: number): Promise<void> {
  await recordAudit(em, { action: 'session.revoke', outcome: 'success', entity: 'user', entityId: userId, ...auditActor(ctx), details: { reason, sessionsRevoked: count } });
}

/** `/admin/users` (CONTRACT §2): admins manage users and end their sessions. */
export function adminUserRoutes(): ApiRouter {
  const router = apiRouter({ prefix: '/admin/users' });

  router.get('/', requireRole('admin'), async (ctx) => {
    const { page, filters: { email: address } } = listQuery(ctx.query, createdKey, { email: optional(email()) });
    const rows = await ctx.state.em.find(
      User,
      { ...(address ? { email: normaliseEmail(address) } : {}), ...createdBefore(page.after) },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 },
    );
    const withMfa = await usersWithMfa(ctx.state.em, rows.map((user) => user.id));
    ctx.body = pageOf(rows, page.limit, (user) => createdKey.encode(user), (user) => present(user, withMfa));
  });

  router.post('/', requireRole('admin'), idempotent(), async (ctx) => {
    const input = parseBody(userFields, ctx.request.body);
    const passwordHash = await hashPassword(acceptablePassword('password', input.password, input));
    const user = await transactionalUnique(ctx.state.em, async (tx) => {
      const created = tx.create(User, {
        email: normaliseEmail(input.email), name: input.name, role: input.role, passwordHash, disabled: false, mustChangePassword: input.mustChangePassword ?? false,
      });
      await tx.flush();
      await recordAudit(tx, { action: 'user.create', outcome: 'success', entity: 'user', entityId: created.id, ...auditActor(ctx), details: { role: created.role, mustChangePassword: created.mustChangePassword } });
      return created;
    }, () => conflict('email_taken', 'A user with this e-mail exists.'));
    ctx.status = 201;
    ctx.body = present(user, new Set());
  });

  // The refresh-reuse alarm and the audit trail name users by id: this turns one into a person.
  router.get('/:id', requireRole('admin'), async (ctx) => {
    const user = await findUser(ctx.state.em, ctx.params.id!);
    ctx.body = present(user, await usersWithMfa(ctx.state.em, [user.id]));
  });

  router.patch('/:id', requireRole('admin'), async (ctx) => {
    const changes = parsePatch(userChanges, ctx.request.body);
    const passwordHash = changes.password === undefined ? undefined : await hashPassword(changes.password);
    const user = await ctx.state.em.transactional(async (tx) => {
      const enabledAdmins = mayDemote(changes) ? await lockEnabledAdmins(tx) : [];
      const target = await findUser(tx, ctx.params.id!, true);
      if (changes.password !== undefined) acceptablePassword('password', changes.password, { email: target.email, name: changes.name ?? target.name });
      if (mayDemote(changes)) keepAnAdmin(enabledAdmins, target, { role: changes.role ?? target.role, disabled: changes.disabled ?? target.disabled });
      const reason = endsSessions(target, changes);
      tx.assign(target, {
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.role !== undefined ? { role: changes.role } : {}),
        ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}),
        ...(passwordHash ? { passwordHash } : {}),
        ...(changes.mustChangePassword !== undefined ? { mustChangePassword: changes.mustChangePassword } : {}),
      });
      await tx.flush();
      // An admin's new password also lifts a lock-out: the account's owner is being let back in.
      if (passwordHash) await clearLockout(tx, target.id);
      await recordAudit(tx, {
        action: 'user.update', outcome: 'success', entity: 'user', entityId: target.id, ...auditActor(ctx),
        details: { fields: Object.keys(changes).sort().join(','), role: target.role, disabled: target.disabled, mustChangePassword: target.mustChangePassword },
      });
      if (reason) await auditRevocation(tx, ctx, target.id, reason, await revokeSessions(tx, { userId: target.id }, reason));
      return target;
    });
    ctx.body = present(user, await usersWithMfa(ctx.state.em, [user.id]));
  });

  // A lost or replaced device, or a suspected compromise: MFA off (the user enrols again at the next
  // sign-in when the policy requires it) and every session ended.
  router.delete('/:id/mfa', requireRole('admin'), async (ctx) => {
    const { userId, hadMfa, sessionsRevoked } = await ctx.state.em.transactional(async (tx) => {
      const target = await findUser(tx, ctx.params.id!, true);
      const had = await removeMfa(tx, target.id);
      await recordAudit(tx, { action: 'user.mfa_reset', outcome: 'success', entity: 'user', entityId: target.id, ...auditActor(ctx), details: { hadMfa: had } });
      const count = await revokeSessions(tx, { userId: target.id }, 'mfa_reset');
      await auditRevocation(tx, ctx, target.id, 'mfa_reset', count);
      return { userId: target.id, hadMfa: had, sessionsRevoked: count };
    });
    ctx.state.log.info('auth_mfa_reset', { userId, adminId: ctx.state.user!.id, hadMfa, sessionsRevoked });
    ctx.status = 204;
  });

  router.post('/:id/revoke-sessions', requireRole('admin'), async (ctx) => {
    await ctx.state.em.transactional(async (tx) => {
      const target = await findUser(tx, ctx.params.id!);
      await auditRevocation(tx, ctx, target.id, 'admin_revoke', await revokeSessions(tx, { userId: target.id }, 'admin_revoke'));
    });
    ctx.status = 204;
  });

  return router;
}
