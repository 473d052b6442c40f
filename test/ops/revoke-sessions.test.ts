import assert from 'node:assert/strict';
import { json, localServer, outputsFile, runCli } from './support.js';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.admin-token-under-test.c2lnbmF0dXJl';
const USERS = [
  { id: '0b6f1b0e-1111-4c3a-9d55-000000000001', email: 'alice@clinic.example', role: 'doctor' },
  { id: '0b6f1b0e-2222-4c3a-9d55-000000000002', email: 'Dr.Lee@Clinic.example', role: 'staff' },
];

interface ApiBehaviour {
  /** The API ignores ?email= and pages through everyone, one user a page. */
  ignoresEmailFilter: boolean;
  revokeStatus: number;
}

describe('ops revoke-sessions: forced logout through the admin API', () => {
  const behaviour: ApiBehaviour = { ignoresEmailFilter: false, revokeStatus: 204 };
  const seen: { method: string; url: string; authorization: string | undefined }[] = [];
  let server: Awaited<ReturnType<typeof localServer>>;
  let outputs: string;
  const env = { DMS_ADMIN_TOKEN: TOKEN };

  before(async () => {
    server = await localServer((request, response) => {
      seen.push({ method: request.method ?? '', url: request.url ?? '', authorization: request.headers.authorization });
      if (request.headers.authorization !== `Bearer ${TOKEN}`) return json(response, 401, { error: 'unauthorized', message: 'Unauthorized', requestId: 'req-401' });
      const url = new URL(request.url ?? '/', 'http://x');
      if (request.method === 'GET' && url.pathname === '/admin/users') {
        if (behaviour.ignoresEmailFilter) {
          const index = Number(url.searchParams.get('cursor') ?? 0);
          return json(response, 200, { items: USERS.slice(index, index + 1), nextCursor: index + 1 < USERS.length ? String(index + 1) : null });
        }
        const email = url.searchParams.get('email')?.toLowerCase();
        return json(response, 200, { items: USERS.filter((user) => user.email.toLowerCase() === email), nextCursor: null });
      }
      const byId = /^\/admin\/users\/([^/]+)$/.exec(url.pathname);
      if (request.method === 'GET' && byId) {
        const user = USERS.find((candidate) => candidate.id === byId[1]);
        return user ? json(response, 200, user) : json(response, 404, { error: 'not_found', message: 'The user was not found.', requestId: 'req-404' });
      }
      const revoke = /^\/admin\/users\/([^/]+)\/revoke-sessions$/.exec(url.pathname);
      if (request.method === 'POST' && revoke) {
        if (behaviour.revokeStatus !== 204) return json(response, behaviour.revokeStatus, { error: 'forbidden', message: 'Forbidden', requestId: 'req-403' });
        response.writeHead(204);
        return response.end();
      }
      json(response, 404, { error: 'not_found' });
    });
    outputs = outputsFile({ apiUrl: server.url });
  });
  after(() => server.close());
  beforeEach(() => {
    behaviour.ignoresEmailFilter = false;
    behaviour.revokeStatus = 204;
    seen.length = 0;
  });

  it('finds the user by email and revokes their sessions with the admin token from the environment', async () => {
    const run = await runCli(['revoke-sessions', '--user', 'dr.lee@clinic.example', '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      seen.map(({ method, url }) => `${method} ${url}`),
      ['GET /admin/users?email=dr.lee%40clinic.example&limit=200', `POST /admin/users/${USERS[1]?.id}/revoke-sessions`],
    );
    assert.ok(seen.every((request) => request.authorization === `Bearer ${TOKEN}`));
    assert.match(run.stdout, new RegExp(`user\\s+dr\\.lee@clinic\\.example \\(id ${USERS[1]?.id}, staff\\)`, 'i'));
    assert.match(run.stdout, /result\s+every session revoked \(204\): refresh tokens are refused, and access tokens already issued fail on their next request/);
    assert.doesNotMatch(run.stdout, /work until they expire/, 'the API checks the session on every request: issued tokens do not keep working');
  });

  it('takes the user id the refresh-reuse alarm and the audit trail name, reading the user with GET /admin/users/<id>', async () => {
    const id = USERS[0]!.id;
    const run = await runCli(['revoke-sessions', '--user', id.toUpperCase(), '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(seen.map(({ method, url }) => `${method} ${url}`), [`GET /admin/users/${id}`, `POST /admin/users/${id}/revoke-sessions`]);
    assert.match(run.stdout, new RegExp(`user\\s+alice@clinic\\.example \\(id ${id}, doctor\\)`));
  });

  it('exits 1 for an unknown user id, revoking nothing', async () => {
    const run = await runCli(['revoke-sessions', '--user', '0b6f1b0e-9999-4c3a-9d55-000000000009', '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: no user with id 0b6f1b0e-9999-4c3a-9d55-000000000009$/m);
    assert.ok(seen.every((request) => request.method === 'GET'));
  });

  it('never prints the token', async () => {
    for (const status of [204, 403]) {
      behaviour.revokeStatus = status;
      const run = await runCli(['revoke-sessions', '--user', 'alice@clinic.example', '--stack', 'production', '--outputs', outputs], { env });
      assert.ok(!run.stdout.includes(TOKEN) && !run.stderr.includes(TOKEN));
    }
  });

  it('matches the email itself when the API ignores the filter, following the cursor', async () => {
    behaviour.ignoresEmailFilter = true;
    const run = await runCli(['revoke-sessions', '--user', 'DR.LEE@clinic.example', '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(seen.filter((request) => request.method === 'GET').length, 2);
    assert.equal(seen.at(-1)?.url, `/admin/users/${USERS[1]?.id}/revoke-sessions`);
  });

  it('exits 1 for an unknown user, revoking nothing', async () => {
    const run = await runCli(['revoke-sessions', '--user', 'nobody@clinic.example', '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: no user with email nobody@clinic\.example$/m);
    assert.ok(seen.every((request) => request.method === 'GET'));
  });

  it('exits 1 naming the status, error code and request id when the API refuses', async () => {
    behaviour.revokeStatus = 403;
    const forbidden = await runCli(['revoke-sessions', '--user', 'alice@clinic.example', '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /answered 403 \(forbidden, request req-403\): the token is not an admin's/);

    const rejected = await runCli(['revoke-sessions', '--user', 'alice@clinic.example', '--stack', 'production', '--outputs', outputs], { env: { DMS_ADMIN_TOKEN: 'expired' } });
    assert.equal(rejected.code, 1);
    assert.match(rejected.stderr, /answered 401 \(unauthorized, request req-401\): DMS_ADMIN_TOKEN is missing, expired or not accepted/);
  });

  it('refuses with exit 2 without DMS_ADMIN_TOKEN, or with a malformed email, before calling the API', async () => {
    const noToken = await runCli(['revoke-sessions', '--user', 'alice@clinic.example', '--stack', 'production', '--outputs', outputs], { env: {} });
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /set DMS_ADMIN_TOKEN to an admin access token/);
    const badEmail = await runCli(['revoke-sessions', '--user', 'alice', '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(badEmail.code, 2);
    assert.match(badEmail.stderr, /--user "alice" is neither an email address nor a user id/);
    const tokenFlag = await runCli(['revoke-sessions', '--user', 'alice@clinic.example', '--token', TOKEN, '--stack', 'production', '--outputs', outputs], { env });
    assert.equal(tokenFlag.code, 2, 'there is no --token flag');
    assert.ok(!tokenFlag.stderr.includes(TOKEN), 'an unknown flag is named, its value is not echoed');
    assert.equal(seen.length, 0);
  });
});
