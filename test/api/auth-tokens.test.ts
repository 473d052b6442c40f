import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { ACCESS_TOKEN_TTL_S, AccessTokens } from '../../api/auth/tokens.js';
import type { JwtKey } from '../../api/config.js';
import { startTestApi, TEST_JWT_KEY, type TestApi } from '../support/api.js';
import { createUser, rememberSecret, signedIn, signIn, UNLIMITED, type SignedIn } from '../support/auth.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

function hmacJws(header: object, payload: object, secret: string | Buffer): string {
  const signingInput = `${b64(header)}.${b64(payload)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

function hsKey(kid: string): Extract<JwtKey, { alg: 'HS256' }> {
  return { kid, alg: 'HS256', secret: rememberSecret(randomBytes(48).toString('base64url')) };
}

function pemPair(alg: 'ES256' | 'RS256') {
  const pair = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    : generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  rememberSecret(pair.privateKey);
  return pair;
}

const withKeys = (keys: JwtKey[]) => startTestApi({ env: { JWT_KEYS: JSON.stringify(keys), ...UNLIMITED } });

describe('access tokens (RFC 8725)', function () {
  this.timeout(60_000);
  let api: TestApi;
  let user: SignedIn;
  /** The claims of a real token, for forgeries that differ in one respect only. */
  let claims: { sub: string; role: string; sid: string; typ: string; iss: string; aud: string };
  const now = () => Math.floor(Date.now() / 1000);
  const header = { alg: 'HS256', typ: 'at+jwt', kid: TEST_JWT_KEY.kid };
  const valid = () => ({ ...claims, iat: now(), exp: now() + 600 });

  async function refused(token: string, reason = 'invalid_token'): Promise<void> {
    rememberSecret(token);
    const before = api.logs.records('auth_error').length;
    const res = await api.request('GET', '/auth/me', { token });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.error, 'unauthorized');
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="dms-api", error="invalid_token"/);
    const logged = api.logs.records('auth_error').slice(before);
    assert.deepEqual(logged.map((r) => r.reason), [reason]);
  }

  before(async () => {
    api = await startTestApi({ env: UNLIMITED });
    user = await signedIn(api, 'doctor');
    const decoded = jwt.decode(user.accessToken) as typeof claims;
    claims = { sub: decoded.sub, role: decoded.role, sid: decoded.sid, typ: decoded.typ, iss: decoded.iss, aud: decoded.aud };
  });
  after(() => api.close());

  it('carry kid, typ at+jwt, iss, aud, sub, role, a session id, iat and a 15-minute exp', () => {
    const { header: h, payload } = jwt.decode(user.accessToken, { complete: true }) as jwt.Jwt & { payload: jwt.JwtPayload };
    assert.deepEqual(h, { alg: 'HS256', typ: 'at+jwt', kid: TEST_JWT_KEY.kid });
    assert.equal(payload.iss, 'dms-api');
    assert.equal(payload.aud, 'dms-api');
    assert.equal(payload.sub, user.id);
    assert.equal(payload.role, 'doctor');
    assert.equal(payload.typ, 'access');
    assert.match(String(payload.sid), /^[0-9a-f-]{36}$/);
    assert.equal(payload.exp! - payload.iat!, 900);
  });

  it('accept a token built here with the right key and claims (so each refusal below is for its one difference)', async () => {
    const res = await api.request('GET', '/auth/me', { token: rememberSecret(hmacJws(header, valid(), TEST_JWT_KEY.secret)) });
    assert.equal(res.status, 200);
  });

  describe('are refused with 401 and auth_error', () => {
    it('without a token, or with another scheme', async () => {
      const res = await api.request('GET', '/auth/me');
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="dms-api"');
      assert.equal((await api.request('GET', '/auth/me', { headers: { authorization: `Basic ${user.accessToken}` } })).status, 401);
    });
    it('with alg none', () => refused(`${b64({ alg: 'none', typ: 'at+jwt', kid: TEST_JWT_KEY.kid })}.${b64(valid())}.`));
    it('with alg none and a signature part', () => refused(`${b64({ alg: 'none', typ: 'at+jwt', kid: TEST_JWT_KEY.kid })}.${b64(valid())}.AAAA`));
    it('with an unknown kid', () => refused(hmacJws({ ...header, kid: 'no-such-key' }, valid(), TEST_JWT_KEY.secret)));
    it('without a kid', () => refused(hmacJws({ alg: 'HS256', typ: 'at+jwt' }, valid(), TEST_JWT_KEY.secret)));
    it('signed with another secret under our kid', () => refused(hmacJws(header, valid(), randomBytes(48))));
    it('with a payload changed after signing', async () => {
      const [h, , s] = user.accessToken.split('.');
      await refused(`${h}.${b64({ ...valid(), role: 'admin' })}.${s}`);
    });
    it('from another issuer', () => refused(hmacJws(header, { ...valid(), iss: 'someone-else' }, TEST_JWT_KEY.secret)));
    it('for another audience', () => refused(hmacJws(header, { ...valid(), aud: 'another-api' }, TEST_JWT_KEY.secret)));
    it('when expired, as expired_token', () => refused(hmacJws(header, { ...valid(), iat: now() - 1000, exp: now() - 60 }, TEST_JWT_KEY.secret), 'expired_token'));
    it('without exp', () => refused(hmacJws(header, { ...valid(), exp: undefined }, TEST_JWT_KEY.secret)));
    it('living longer than 15 minutes', () => refused(hmacJws(header, { ...valid(), iat: now() - 1200, exp: now() + 3600 }, TEST_JWT_KEY.secret)));
    it('issued in the future', () => refused(hmacJws(header, { ...valid(), iat: now() + 300, exp: now() + 900 }, TEST_JWT_KEY.secret)));
    it('typed as something other than an access token (claim typ)', () => refused(hmacJws(header, { ...valid(), typ: 'refresh' }, TEST_JWT_KEY.secret)));
    it('typed as something other than an access token (header typ)', () => refused(hmacJws({ ...header, typ: 'JWT' }, valid(), TEST_JWT_KEY.secret)));
    it('with a role that does not exist', () => refused(hmacJws(header, { ...valid(), role: 'superuser' }, TEST_JWT_KEY.secret)));
    it('when the refresh token is presented as an access token', () => refused(user.refreshToken));
    it('when the claimed role is not the session\'s', () => refused(hmacJws(header, { ...valid(), role: 'admin' }, TEST_JWT_KEY.secret)));
    it('when the session does not exist', () => refused(hmacJws(header, { ...valid(), sid: '00000000-0000-4000-8000-000000000000' }, TEST_JWT_KEY.secret)));
  });

  describe('algorithm confusion', () => {
    let rsApi: TestApi;
    let rsUser: SignedIn;
    const rsa = pemPair('RS256');
    before(async () => {
      rsApi = await withKeys([{ kid: 'rs-1', alg: 'RS256', privateKey: rsa.privateKey, publicKey: rsa.publicKey }]);
      rsUser = await signedIn(rsApi, 'staff');
    });
    after(() => rsApi.close());

    it('signs RS256 under an RS256 key', async () => {
      assert.equal(jwt.decode(rsUser.accessToken, { complete: true })?.header.alg, 'RS256');
      assert.equal((await rsApi.request('GET', '/auth/me', { token: rsUser.accessToken })).status, 200);
    });

    it('refuses an HS256 token keyed with the RS256 public key under its kid', async () => {
      const payload = { ...(jwt.decode(rsUser.accessToken) as object), iat: now(), exp: now() + 600 };
      const forged = rememberSecret(hmacJws({ alg: 'HS256', typ: 'at+jwt', kid: 'rs-1' }, payload, rsa.publicKey));
      const res = await rsApi.request('GET', '/auth/me', { token: forged });
      assert.equal(res.status, 401);
      assert.ok(rsApi.logs.records('auth_error').some((r) => r.reason === 'invalid_token'));
    });
  });
});

describe('signing-key rotation (JWT_KEYS: the first signs, every listed key verifies)', function () {
  this.timeout(60_000);
  const previous = hsKey('2024-previous');
  const next = hsKey('2025-next');
  const apis: TestApi[] = [];
  const start = async (keys: JwtKey[]) => {
    const api = await withKeys(keys);
    apis.push(api);
    return api;
  };
  after(() => Promise.all(apis.map((api) => api.close())));

  it('accepts tokens signed with the previous key while the new one signs, and refuses them once the previous key is retired', async () => {
    const before = await start([previous]);
    const during = await start([next, previous]);
    const after = await start([next]);
    const user = await createUser('staff');

    const old = await signIn(before, user);
    assert.equal(jwt.decode(old.accessToken, { complete: true })?.header.kid, previous.kid);
    const fresh = await signIn(during, user);
    assert.equal(jwt.decode(fresh.accessToken, { complete: true })?.header.kid, next.kid);

    assert.equal((await during.request('GET', '/auth/me', { token: old.accessToken })).status, 200, 'previous key still verifies during rotation');
    assert.equal((await during.request('GET', '/auth/me', { token: fresh.accessToken })).status, 200);
    assert.equal((await after.request('GET', '/auth/me', { token: fresh.accessToken })).status, 200);
    const retired = await after.request('GET', '/auth/me', { token: old.accessToken });
    assert.equal(retired.status, 401, 'a token signed with a retired key is refused');
    assert.ok(after.logs.records('auth_error').some((r) => r.reason === 'invalid_token'));
  });

  it('verifies with a retired asymmetric key that keeps only its public half', async () => {
    const ec = pemPair('ES256');
    const signer = await start([{ kid: 'ec-old', alg: 'ES256', privateKey: ec.privateKey, publicKey: ec.publicKey }]);
    const verifier = await start([next, { kid: 'ec-old', alg: 'ES256', publicKey: ec.publicKey }]);
    const user = await signedIn(signer, 'auditor');
    assert.equal(jwt.decode(user.accessToken, { complete: true })?.header.alg, 'ES256');
    assert.equal((await verifier.request('GET', '/auth/me', { token: user.accessToken })).status, 200);
  });
});

describe('a token verified once is remembered, never past its expiry', () => {
  it('answers from memory while valid, and expired_token once exp has passed', () => {
    const tokens = new AccessTokens([TEST_JWT_KEY]);
    const claims = { sub: randomUUID(), role: 'doctor' as const, sid: randomUUID() };
    const token = rememberSecret(tokens.sign(claims));
    assert.deepEqual(tokens.verify(token), { ok: true, claims });
    assert.deepEqual(tokens.verify(token), { ok: true, claims }, 'the second answer comes from memory');
    const realNow = Date.now;
    Date.now = () => realNow() + (ACCESS_TOKEN_TTL_S + 120) * 1000;
    try {
      assert.deepEqual(tokens.verify(token), { ok: false, reason: 'expired_token' });
    } finally {
      Date.now = realNow;
    }
  });

  it('does not remember a token that failed', () => {
    const tokens = new AccessTokens([TEST_JWT_KEY]);
    const other = new AccessTokens([{ kid: TEST_JWT_KEY.kid, alg: 'HS256', secret: randomBytes(48).toString('base64url') }]);
    const forged = rememberSecret(other.sign({ sub: randomUUID(), role: 'admin', sid: randomUUID() }));
    assert.equal(tokens.verify(forged).ok, false);
    assert.equal(tokens.verify(forged).ok, false);
  });
});
