import { defineCommand } from '../lib/command.js';
import { describeError, OpsError, UsageError } from '../lib/errors.js';
import { loadOutputs, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary } from '../lib/report.js';

export const ADMIN_TOKEN_ENV = 'DMS_ADMIN_TOKEN';
const HTTP_TIMEOUT_MS = 15_000;
/** Pages of GET /admin/users to read when the API does not filter by email itself. */
const MAX_PAGES = 100;

interface ApiUser {
  id: string;
  email: string;
  role?: string;
  disabled?: boolean;
}

interface UserPage {
  items: ApiUser[];
  nextCursor: string | null;
}

/** One API call with the admin token; errors name the status and the contract's error code, never the token. */
async function callApi(url: URL, method: 'GET' | 'POST', token: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  } catch (error) {
    throw new OpsError(`${method} ${url.origin}${url.pathname} failed: ${describeError(error)}`);
  }
  if (response.ok) return response;
  const body = (await response.json().catch(() => ({}))) as { error?: unknown; message?: unknown; requestId?: unknown };
  const code = typeof body.error === 'string' ? body.error : 'no error code';
  const requestId = typeof body.requestId === 'string' ? `, request ${body.requestId}` : '';
  const hint = response.status === 401 ? `: ${ADMIN_TOKEN_ENV} is missing, expired or not accepted` : response.status === 403 ? `: the token is not an admin's` : '';
  throw new OpsError(`${method} ${url.pathname} answered ${response.status} (${code}${requestId})${hint}`);
}

function isUserPage(value: unknown): value is UserPage {
  const page = value as Partial<UserPage> | null;
  return typeof page === 'object' && page !== null && Array.isArray(page.items);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function isApiUser(value: unknown): value is ApiUser {
  const user = value as Partial<ApiUser> | null;
  return typeof user === 'object' && user !== null && typeof user.id === 'string' && typeof user.email === 'string';
}

/** GET /admin/users/<id>: what the refresh-reuse alarm and the audit trail hand the engineer. */
async function userById(apiUrl: string, id: string, token: string): Promise<ApiUser> {
  let response: Response;
  try {
    response = await callApi(new URL(`${apiUrl}/admin/users/${encodeURIComponent(id)}`), 'GET', token);
  } catch (error) {
    if (error instanceof OpsError && / answered 404 /.test(error.message)) throw new OpsError(`no user with id ${id}`);
    throw error;
  }
  const body: unknown = await response.json();
  if (!isApiUser(body)) throw new OpsError(`GET /admin/users/${id} did not answer a user`);
  return body;
}

async function userByEmail(apiUrl: string, email: string, token: string): Promise<ApiUser> {
  const wanted = email.toLowerCase();
  let cursor: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const url = new URL(`${apiUrl}/admin/users`);
    url.searchParams.set('email', email);
    url.searchParams.set('limit', '200');
    if (cursor) url.searchParams.set('cursor', cursor);
    const body: unknown = await (await callApi(url, 'GET', token)).json();
    if (!isUserPage(body)) throw new OpsError('GET /admin/users did not answer {"items": [...], "nextCursor"}');
    // Matched here too: an API that ignores ?email= returns every user.
    const match = body.items.find((user) => typeof user.email === 'string' && user.email.toLowerCase() === wanted);
    if (match) return match;
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  throw new OpsError(`no user with email ${email}`);
}

export const revokeSessions = defineCommand({
  name: 'revoke-sessions',
  summary: 'sign a user out everywhere: end every session, by e-mail or user id (through the API)',
  options: {
    user: { type: 'string', valueName: 'email|id', required: true, description: "the user's email address, or their id (as alarms and audit rows name them)" },
  },
  details: [
    `Needs an admin access token in the environment variable ${ADMIN_TOKEN_ENV} (never a flag: flags land in shell`,
    'history); it is never printed. Finds the user with GET /admin/users?email= (or GET /admin/users/<id> for an id),',
    'then POST /admin/users/<id>/revoke-sessions.',
    'Access tokens already issued stop working on their next request too: the API checks the session on every request.',
    `Example: ${ADMIN_TOKEN_ENV}=… npm run ops -- revoke-sessions --user dr.lee@clinic.example --stack production`,
  ],
  async run({ options }, ctx) {
    const who = options.user.trim();
    const byId = UUID.test(who);
    if (!byId && !EMAIL.test(who)) throw new UsageError(`--user "${who}" is neither an email address nor a user id`);
    const token = ctx.env[ADMIN_TOKEN_ENV]?.trim();
    if (!token) throw new UsageError(`set ${ADMIN_TOKEN_ENV} to an admin access token (from POST /auth/login); it is read from the environment only`);
    const outputs = requireOutputs(await loadOutputs(options.stack, options.outputs, ctx), ['apiUrl']);
    const progress = new Progress(ctx);

    progress.step(`looking up ${who}`);
    const user = byId ? await userById(outputs.apiUrl, who.toLowerCase(), token) : await userByEmail(outputs.apiUrl, who, token);
    progress.step(`revoking every session of user ${user.id}`);
    const response = await callApi(new URL(`${outputs.apiUrl}/admin/users/${encodeURIComponent(user.id)}/revoke-sessions`), 'POST', token);
    if (response.status !== 204) throw new OpsError(`POST /admin/users/${user.id}/revoke-sessions answered ${response.status}, expected 204`);

    printSummary(ctx, `revoke-sessions: ${options.stack}`, [
      ['user', `${user.email} (id ${user.id}${user.role ? `, ${user.role}` : ''}${user.disabled ? ', disabled' : ''})`],
      ['api', outputs.apiUrl],
      ['result', 'every session revoked (204): refresh tokens are refused, and access tokens already issued fail on their next request'],
      ['note', 'the user can sign in again with their password: disable the account (PATCH /admin/users/<id>) to stop new logins'],
    ]);
    return 0;
  },
});
