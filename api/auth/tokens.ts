import { createHash, createPrivateKey, createPublicKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { ConfigError, type JwtKey } from '../config.js';
import { ROLES, type Role } from '../db/entities.js';
import { SESSION_RESTRICTIONS, type SessionRestriction } from './entities.js';

/** Access tokens live 15 minutes: the longest a retired signing key must stay in JWT_KEYS. */
export const ACCESS_TOKEN_TTL_S = 15 * 60;
/** A refresh-token family (one sign-in) ends 12 hours after the sign-in, however often it rotates. */
export const SESSION_TTL_S = 12 * 60 * 60;
/** A restricted session (enrol in MFA, change the password) is one step, not a working day. */
export const RESTRICTED_SESSION_TTL_S = 30 * 60;

const ISSUER = 'dms-api';
const AUDIENCE = 'dms-api';
/** RFC 9068 explicit typing (RFC 8725 §3.11): no other JWT can pass for an access token. */
const HEADER_TYPE = 'at+jwt';
/** Allowance for clock skew between the tasks that sign and verify. */
const CLOCK_TOLERANCE_S = 5;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 4096;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface AccessClaims {
  /** The user id. */
  sub: string;
  role: Role;
  /** The session (refresh-token family) the token was issued under. */
  sid: string;
  /** A restricted session's one permitted step (claim `rst`): every other route refuses the token. */
  restriction?: SessionRestriction;
}

export type Verification = { ok: true; claims: AccessClaims } | { ok: false; reason: 'invalid_token' | 'expired_token' };

interface VerifyingKey {
  alg: JwtKey['alg'];
  key: KeyObject;
}

/**
 * Signs with the first key of JWT_KEYS and verifies with any listed key, each under its own
 * algorithm only: the `kid` picks the key and the key fixes the algorithm, so `alg: none`, an
 * HS256 token keyed with an RSA public key, or an unknown `kid` never verify.
 */
/** Enough for every live token of a busy task; at ~0.5 KiB each, a few MiB at most. */
const VERIFIED_TOKENS_KEPT = 10_000;

export class AccessTokens {
  private readonly signing: { kid: string; alg: JwtKey['alg']; key: KeyObject };
  private readonly verifying: Map<string, VerifyingKey>;
  /** Tokens that verified, with their expiry: insertion-ordered, the oldest evicted first. */
  private readonly verified = new Map<string, { claims: AccessClaims; exp: number }>();

  constructor(keys: readonly JwtKey[]) {
    const [first] = keys;
    if (!first) throw new ConfigError('JWT_KEYS', 'is required: no key to sign access tokens with');
    this.verifying = new Map(keys.map((k) => [k.kid, { alg: k.alg, key: k.alg === 'HS256' ? createSecretKey(Buffer.from(k.secret)) : createPublicKey(k.publicKey) }]));
    if (first.alg !== 'HS256' && !first.privateKey) throw new ConfigError('JWT_KEYS', `the first key ("${first.kid}") signs, so it needs a privateKey`);
    this.signing = {
      kid: first.kid,
      alg: first.alg,
      key: first.alg === 'HS256' ? createSecretKey(Buffer.from(first.secret)) : createPrivateKey(first.privateKey!),
    };
  }

  sign({ sub, role, sid, restriction }: AccessClaims): string {
    return jwt.sign({ role, sid, typ: 'access', ...(restriction ? { rst: restriction } : {}) }, this.signing.key, {
      algorithm: this.signing.alg,
      keyid: this.signing.kid,
      header: { alg: this.signing.alg, typ: HEADER_TYPE },
      expiresIn: ACCESS_TOKEN_TTL_S,
      issuer: ISSUER,
      audience: AUDIENCE,
      subject: sub,
    });
  }

  /**
   * Verifies a token: a token verified before is answered from memory until it expires (the
   * signature and claims of the same string cannot change; the session is checked every time).
   */
  verify(token: string): Verification {
    const known = this.verified.get(token);
    if (!known) return this.verifySignature(token);
    if (Date.now() / 1000 <= known.exp + CLOCK_TOLERANCE_S) return { ok: true, claims: known.claims };
    this.verified.delete(token);
    return { ok: false, reason: 'expired_token' };
  }

  private remember(token: string, claims: AccessClaims, exp: number): Verification {
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { claims, exp });
    return { ok: true, claims };
  }

  private verifySignature(token: string): Verification {
    const invalid = { ok: false, reason: 'invalid_token' } as const;
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return invalid;
    const decoded = jwt.decode(token, { complete: true });
    const kid = decoded?.header.kid;
    const key = kid === undefined ? undefined : this.verifying.get(kid);
    if (!decoded || !key || decoded.header.alg !== key.alg || decoded.header.typ !== HEADER_TYPE) return invalid;
    let payload: string | jwt.JwtPayload;
    try {
      payload = jwt.verify(token, key.key, {
        algorithms: [key.alg],
        issuer: ISSUER,
        audience: AUDIENCE,
        clockTolerance: CLOCK_TOLERANCE_S,
      });
    } catch (error) {
      return error instanceof jwt.TokenExpiredError ? { ok: false, reason: 'expired_token' } : invalid;
    }
    if (typeof payload === 'string') return invalid;
    const { sub, role, sid, typ, exp, iat, rst } = payload as jwt.JwtPayload & { role?: unknown; sid?: unknown; typ?: unknown; rst?: unknown };
    // jsonwebtoken accepts a token without `exp`: ours always carry one and live 15 minutes, so a
    // token without it, living longer or issued in the future was not issued here.
    if (typ !== 'access' || typeof exp !== 'number' || typeof iat !== 'number') return invalid;
    if (exp - iat > ACCESS_TOKEN_TTL_S || iat > Date.now() / 1000 + CLOCK_TOLERANCE_S) return invalid;
    if (typeof sub !== 'string' || !UUID.test(sub) || typeof sid !== 'string' || !UUID.test(sid)) return invalid;
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) return invalid;
    if (rst !== undefined && !(SESSION_RESTRICTIONS as readonly unknown[]).includes(rst)) return invalid;
    return this.remember(token, { sub, role: role as Role, sid, ...(rst ? { restriction: rst as SessionRestriction } : {}) }, exp);
  }
}

const REFRESH_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** An opaque refresh token: 32 random bytes, base64url. Only its hash is stored. */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The stored form of a refresh token (SHA-256, hex): 256 random bits need no salt or slow hash. */
export function refreshTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export const isWellFormedRefreshToken = (token: unknown): token is string => typeof token === 'string' && REFRESH_TOKEN.test(token);
