import type { Context } from 'koa';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { auditActor, recordAudit } from '../audit/record.js';
import { User } from '../db/entities.js';
import { HttpError, validationFailed } from '../http/errors.js';
import { email, optional, parseBody, type Rule } from '../http/validation.js';
import { signIn, type SignInOutcome, type SignInPolicy } from './login.js';
import { signInWithMfa } from './login-mfa.js';
import { anyone, requireUser } from './access.js';
import { SESSION_RESTRICTIONS } from './entities.js';
import { revokeSessions, rotateRefreshToken, sessionOfRefreshToken, spendRefreshToken } from './sessions.js';
import { isWellFormedRefreshToken, type AccessTokens } from './tokens.js';

/** Longest password a sign-in accepts (the policy allows 128 characters; argon2 pre-hashes any length). */
const MAX_PRESENTED_PASSWORD = 1024;
/** Ours are 43 characters; the well-formedness check that follows says more. */
const MAX_REFRESH_TOKEN = 256;

/** A secret exactly as typed: never trimmed, never echoed in a problem. */
export function secret(maxLength: number): Rule<string> {
  return {
    optional: false,
    parse(value, path, problems) {
      if (typeof value !== 'string' || value.length === 0) problems[path] = 'must be a non-empty string';
      else if (value.length > maxLength) problems[path] = `must be at most ${maxLength} characters`;
      else return { ok: true, value };
      return { ok: false };
    },
  };
}

const invalidCredentials = () => new HttpError(401, 'invalid_credentials', 'The e-mail or password is not right, or the account cannot sign in now.');
const refreshRefused = () => new HttpError(401, 'unauthorized', 'The refresh token is not valid; sign in again.');

/** Longest code a second step accepts: a TOTP code is 6 digits, a recovery code 19 characters; the checks say more. */
const MAX_PRESENTED_CODE = 64;
const MAX_MFA_TOKEN = 256;

/** What a sign-in step answers: the token pair (with `restricted` for a restricted session), the second step, or 401. */
function answer(ctx: Context, result: SignInOutcome): void {
  if (result.outcome === 'refused') throw invalidCredentials();
  ctx.body = result.outcome === 'mfa_required' ? { mfaRequired: true, mfaToken: result.mfaToken, expiresIn: result.expiresIn } : result.tokens;
}

/** `POST /auth/login` (and its second step `/auth/login/mfa`), `/auth/refresh`, `/auth/logout`, `GET /auth/me` (CONTRACT §2). */
export function authRoutes(tokens: AccessTokens, policy: SignInPolicy): ApiRouter {
  const router = apiRouter({ prefix: '/auth' });
  const caller = (ctx: Context) => ({ ip: ctx.ip, requestId: ctx.state.requestId, log: ctx.state.log });

  router.post('/login', anyone(), async (ctx) => {
    const input = parseBody({ email: email(), password: secret(MAX_PRESENTED_PASSWORD) }, ctx.request.body);
    answer(ctx, await signIn(ctx.state.em, tokens, { email: input.email.toLowerCase(), password: input.password, ...caller(ctx) }, policy));
  });

  router.post('/login/mfa', anyone(), async (ctx) => {
    const input = parseBody(
      { mfaToken: secret(MAX_MFA_TOKEN), code: optional(secret(MAX_PRESENTED_CODE)), recoveryCode: optional(secret(MAX_PRESENTED_CODE)) },
      ctx.request.body,
    );
    if ((input.code === undefined) === (input.recoveryCode === undefined)) throw validationFailed({ code: 'send either code or recoveryCode' });
    answer(ctx, await signInWithMfa(ctx.state.em, tokens, { ...input, ...caller(ctx) }, policy));
  });

  router.post('/refresh', anyone(), async (ctx) => {
    const { refreshToken } = parseBody({ refreshToken: secret(MAX_REFRESH_TOKEN) }, ctx.request.body);
    if (!isWellFormedRefreshToken(refreshToken)) refuseRefresh(ctx, 'malformed');
    const rotation = await ctx.state.em.transactional(async (tx) => {
      const result = await rotateRefreshToken(tx, tokens, refreshToken);
      if (result.outcome === 'reused') {
        await recordAudit(tx, {
          action: 'auth.refresh_reuse', outcome: 'denied', entity: 'session', entityId: result.sessionId,
          actorId: result.userId, ip: ctx.ip, requestId: ctx.state.requestId, details: { sessionsRevoked: 1 },
        });
      }
      return result;
    });
    if (rotation.outcome === 'reused') {
      ctx.state.log.warn('auth_refresh_reuse', { userId: rotation.userId, sessionId: rotation.sessionId, ip: ctx.ip });
      throw refreshRefused();
    }
    if (rotation.outcome === 'refused') refuseRefresh(ctx, rotation.reason);
    ctx.body = rotation.tokens;
  });

  router.post('/logout', requireUser({ alsoRestricted: SESSION_RESTRICTIONS }), async (ctx) => {
    const { refreshToken } = parseBody({ refreshToken: secret(MAX_REFRESH_TOKEN) }, ctx.request.body);
    const user = ctx.state.user!;
    const ended = await ctx.state.em.transactional(async (tx) => {
      const sessionIds = new Set([user.sessionId]);
      // Only a token of the caller's own is spent: logging out cannot end someone else's session.
      const tokenSession = isWellFormedRefreshToken(refreshToken) ? await sessionOfRefreshToken(tx, refreshToken, user.id) : undefined;
      if (tokenSession) {
        sessionIds.add(tokenSession);
        await spendRefreshToken(tx, refreshToken);
      }
      const count = await revokeSessions(tx, { sessionIds: [...sessionIds] }, 'logout');
      await recordAudit(tx, { action: 'auth.logout', outcome: 'success', entity: 'session', entityId: user.sessionId, ...auditActor(ctx), details: { sessionsRevoked: count } });
      return count;
    });
    ctx.state.log.info('auth_logout', { userId: user.id, sessionId: user.sessionId, sessionsRevoked: ended });
    ctx.status = 204;
  });

  router.get('/me', requireUser(), async (ctx) => {
    const user = await ctx.state.em.findOneOrFail(User, ctx.state.user!.id);
    ctx.body = { id: user.id, email: user.email, role: user.role, name: user.name };
  });

  return router;
}

function refuseRefresh(ctx: Context, detail: string): never {
  ctx.state.log.warn('auth_error', { reason: 'invalid_token', kind: 'refresh', detail, ip: ctx.ip });
  throw refreshRefused();
}
