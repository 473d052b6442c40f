import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { auditActor, recordAudit } from '../audit/record.js';
import { User } from '../db/entities.js';
import { conflict, HttpError, notFound } from '../http/errors.js';
import { createdBefore, createdKey, pageOf, listQuery } from '../http/pagination.js';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { isUuid, parseBody } from '../http/validation.js';
import { requireUser } from './access.js';
import { AuthSession, type SessionEndReason } from './entities.js';
import { clientKey } from '../http/client-key.js';
import { lockState } from './lockout.js';
import { lockRefusal, refuseSignIn, type SignInPolicy } from './login.js';
import { confirmEnrolment, removeMfa, startEnrolment } from './mfa.js';
import { acceptablePassword, normalisePassword, PASSWORD_MAX_LENGTH } from './password-policy.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { secret } from './routes.js';
import { revokeSessions } from './sessions.js';

const MAX_PRESENTED_PASSWORD = 1024;

const wrongPassword = () => new HttpError(403, 'wrong_password', 'The current password is not right, or the account is locked for now.');

/**
 * A signed-in user proves the password again before a change that weakens or replaces a
 * credential. A wrong password (or a locked account) counts towards the lock-out like a wrong
 * sign-in, so a stolen access token cannot be used to guess it: 403 `wrong_password`.
 */
async function checkCurrentPassword(ctx: Context, user: User, presented: string, action: string): Promise<void> {
  const em = ctx.state.em;
  const [row] = await em.execute<{ password_hash: string }[]>('select password_hash from users where id = ?', [user.id]);
  const lock = lockRefusal(await lockState(em, user.id, clientKey(ctx.ip)));
  const matches = await verifyPassword(row!.password_hash, presented);
  if (matches && !lock) return;
  const failure = lock ? { event: 'auth_login_locked' as const, reason: lock } : { event: 'auth_login_bad_password' as const, reason: 'bad_password' };
  await refuseSignIn(em, { ...failure, userId: user.id }, { ip: ctx.ip, requestId: ctx.state.requestId, log: ctx.state.log }, action);
  throw wrongPassword();
}

/** Ends the user's other sessions, and this one too when it was a restricted session (it is never upgraded). */
async function endOtherSessions(tx: EntityManager, ctx: Context, reason: SessionEndReason): Promise<number> {
  const user = ctx.state.user!;
  const count = await revokeSessions(tx, { userId: user.id, ...(user.restriction ? {} : { except: user.sessionId }) }, reason);
  if (count > 0) {
    await recordAudit(tx, { action: 'session.revoke', outcome: 'success', entity: 'user', entityId: user.id, ...auditActor(ctx), details: { reason, sessionsRevoked: count } });
  }
  return count;
}

/** What a user sees of one of their sessions. */
function presentSession(session: AuthSession, currentId: string) {
  return { id: session.id, createdAt: session.createdAt, expiresAt: session.expiresAt, ip: session.clientIp, restricted: session.restriction, current: session.id === currentId };
}

/**
 * A user's own account security: TOTP enrolment and removal, the password, their sessions. Each
 * change is audited (ids only) and logged under its event.
 */
export function accountRoutes(policy: SignInPolicy): ApiRouter {
  const router = apiRouter({ prefix: '/auth' });
  const enrolling = requireUser({ alsoRestricted: ['mfa_enrolment'] });

  router.post('/mfa/enroll', enrolling, async (ctx) => {
    const user = await ctx.state.em.findOneOrFail(User, ctx.state.user!.id);
    const otpauthUri = await ctx.state.em.transactional(async (tx) => {
      const uri = await startEnrolment(tx, user);
      await recordAudit(tx, { action: 'auth.mfa_enroll', outcome: 'success', entity: 'user', entityId: user.id, ...auditActor(ctx) });
      return uri;
    });
    ctx.state.log.info('auth_mfa_enrolment_started', { userId: user.id });
    ctx.body = { otpauthUri };
  });

  router.post('/mfa/confirm', enrolling, async (ctx) => {
    const { code } = parseBody({ code: secret(64) }, ctx.request.body);
    const user = ctx.state.user!;
    const confirmed = await ctx.state.em.transactional(async (tx) => {
      const recoveryCodes = await confirmEnrolment(tx, user.id, code);
      if (!recoveryCodes) return undefined;
      await recordAudit(tx, { action: 'auth.mfa_enable', outcome: 'success', entity: 'user', entityId: user.id, ...auditActor(ctx), details: { recoveryCodes: recoveryCodes.length } });
      return { recoveryCodes, sessionsEnded: await endOtherSessions(tx, ctx, 'mfa_enabled') };
    });
    if (!confirmed) {
      ctx.state.log.warn('auth_mfa_confirm_failed', { userId: user.id, ip: ctx.ip });
      throw new HttpError(422, 'invalid_code', 'That code is not the current one: check the device clock and try the next code.', { fields: { code: 'is not the current code' } });
    }
    ctx.state.log.info('auth_mfa_enabled', { userId: user.id, sessionsRevoked: confirmed.sessionsEnded });
    ctx.body = { recoveryCodes: confirmed.recoveryCodes };
  });

  router.delete('/mfa', requireUser(), async (ctx) => {
    const { password } = parseBody({ password: secret(MAX_PRESENTED_PASSWORD) }, ctx.request.body);
    const user = await ctx.state.em.findOneOrFail(User, ctx.state.user!.id);
    if (policy.mfaRequiredRoles.includes(user.role)) throw conflict('mfa_required', `Your role (${user.role}) must sign in with a second factor; an admin can reset it for a new device.`);
    await checkCurrentPassword(ctx, user, password, 'auth.mfa_disable');
    const removed = await ctx.state.em.transactional(async (tx) => {
      const had = await removeMfa(tx, user.id);
      if (had) await recordAudit(tx, { action: 'auth.mfa_disable', outcome: 'success', entity: 'user', entityId: user.id, ...auditActor(ctx) });
      return had;
    });
    if (!removed) throw notFound('mfa_not_enabled', 'Multi-factor sign-in');
    ctx.state.log.info('auth_mfa_disabled', { userId: user.id });
    ctx.status = 204;
  });

  router.post('/password', requireUser({ alsoRestricted: ['password_change'] }), async (ctx) => {
    const input = parseBody({ currentPassword: secret(MAX_PRESENTED_PASSWORD), newPassword: secret(PASSWORD_MAX_LENGTH * 2) }, ctx.request.body);
    const user = await ctx.state.em.findOneOrFail(User, ctx.state.user!.id);
    acceptablePassword('newPassword', input.newPassword, user);
    await checkCurrentPassword(ctx, user, input.currentPassword, 'user.password_change');
    if (normalisePassword(input.currentPassword) === normalisePassword(input.newPassword)) {
      throw new HttpError(422, 'validation_failed', 'Invalid input: newPassword.', { fields: { newPassword: 'must differ from the current password' } });
    }
    const passwordHash = await hashPassword(input.newPassword);
    const ended = await ctx.state.em.transactional(async (tx) => {
      await tx.execute('update users set password_hash = ?, must_change_password = false, updated_at = now() where id = ?', [passwordHash, user.id]);
      await recordAudit(tx, { action: 'user.password_change', outcome: 'success', entity: 'user', entityId: user.id, ...auditActor(ctx), details: { forced: user.mustChangePassword } });
      return endOtherSessions(tx, ctx, 'password_changed');
    });
    ctx.state.log.info('auth_password_changed', { userId: user.id, forced: user.mustChangePassword, sessionsRevoked: ended });
    ctx.status = 204;
  });

  router.get('/sessions', requireUser(), async (ctx) => {
    const user = ctx.state.user!;
    const { page } = listQuery(ctx.query, createdKey);
    const rows = await ctx.state.em.find(
      AuthSession,
      { userId: user.id, revokedAt: null, expiresAt: { $gt: new Date() }, ...createdBefore(page.after) },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 },
    );
    ctx.body = pageOf(rows, page.limit, (session) => createdKey.encode(session), (session) => presentSession(session, user.sessionId));
  });

  router.delete('/sessions/:id', requireUser(), async (ctx) => {
    const user = ctx.state.user!;
    const id = ctx.params.id!;
    const ended = isUuid(id) && await ctx.state.em.transactional(async (tx) => {
      const own = await tx.count(AuthSession, { id, userId: user.id, revokedAt: null, expiresAt: { $gt: new Date() } });
      if (own === 0) return false;
      await revokeSessions(tx, { sessionId: id }, 'logout');
      await recordAudit(tx, { action: 'session.revoke', outcome: 'success', entity: 'session', entityId: id, ...auditActor(ctx), details: { reason: 'logout', sessionsRevoked: 1 } });
      return true;
    });
    if (!ended) throw notFound('not_found', 'The session');
    ctx.state.log.info('auth_session_ended', { userId: user.id, sessionId: id, current: id === user.sessionId });
    ctx.status = 204;
  });

  return router;
}
