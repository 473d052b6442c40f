import { createPrivateKey, createPublicKey } from 'node:crypto';
import { ROLES, type Role } from './db/entities.js';

/** A configuration problem: start-up stops with one line naming the variable. */
export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type Environment = 'production' | 'development' | 'test';
export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'verbose' | 'debug' | 'silly';

export type JwtKey =
  | { kid: string; alg: 'HS256'; secret: string }
  | { kid: string; alg: 'ES256' | 'RS256'; privateKey?: string; publicKey: string };

export interface RateLimit {
  max: number;
  windowS: number;
}

/** Signed-in requests: a budget per (user, prefix) whose size is the user's role's. */
export interface UserRateLimit {
  maxByRole: Record<Role, number>;
  windowS: number;
}

export interface Config {
  env: Environment;
  port: number;
  host: string;
  /** Unset outside production: `npm start` runs an embedded PostgreSQL. */
  databaseUrl?: string;
  replicaUrls: string[];
  redisUrl?: string;
  s3: {
    endpoint?: string;
    forcePathStyle: boolean;
    region?: string;
    xrayBucket?: string;
    auditBucket?: string;
    /** ARN of the buckets' customer-managed KMS key: every write names it (`S3_KMS_KEY_ARN`); unset: `AES256` (embedded and test stores). */
    kmsKeyArn?: string;
    /** Only for embedded and test stores; AWS uses the task role's credential chain. */
    credentials?: { accessKeyId: string; secretAccessKey: string };
  };
  /** Unset outside production: `npm start` generates a development key. */
  jwtKeys?: JwtKey[];
  trustProxyHops: number;
  /** `login` per client; `sensitive` per (client, prefix) for anonymous requests; `user` per (user, prefix) for signed-in ones. */
  rateLimits: { login: RateLimit; sensitive: RateLimit; user: UserRateLimit };
  /** Namespace of the rate-limit counters in Redis (`RATE_LIMIT_KEY_PREFIX`); unset: `dms:ratelimit`. */
  rateLimitKeyPrefix?: string;
  presignTtlS: number;
  /** Web client origins allowed to call the API (and the embedded S3) from a browser (`CORS_ORIGINS`); none by default. */
  corsOrigins: readonly string[];
  /**
   * Days audit rows stay in the database (`AUDIT_HOT_DAYS`, default 90 as CONTRACT §4 says); the stack
   * sets it from the same value that moves exports to Glacier. The database refuses under 30.
   */
  auditHotDays: number;
  /**
   * Access records of PHI responses (`AUDIT_ACCESS_RECORDS`, `on` by default). `off` exists to
   * measure their price (`npm run bench`) and is refused with NODE_ENV=production.
   */
  accessRecords: boolean;
  /** Distinct patients per user per hour above which `phi_access_heavy_user` is logged (`AUDIT_HEAVY_USER_PATIENTS`, default 500). */
  heavyUserPatients: number;
  bootstrapAdmin?: { email: string; password: string };
  /** Roles that must sign in with MFA (`MFA_REQUIRED_ROLES`): without it, they can only enrol. */
  mfaRequiredRoles: readonly Role[];
  logLevel: LogLevel;
  /**
   * CloudWatch namespace of the per-request EMF metrics (`METRICS_NAMESPACE`, e.g. `DMS/production`);
   * unset: no metrics are written (development, tests that do not ask for them).
   */
  metricsNamespace?: string;
  /**
   * OpenTelemetry tracing (api/tracing): on when `OTEL_EXPORTER_OTLP_ENDPOINT` names the collector
   * (the stack's sidecar, `http://127.0.0.1:4318`); `OTEL_TRACES_SAMPLER_ARG` is the share of
   * requests traced (0 to 1, default 1 as OpenTelemetry's own). Unset: no tracing, no span, no cost.
   */
  tracing?: { endpoint: string; sampleRatio: number };
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];
const ENVIRONMENTS: readonly Environment[] = ['production', 'development', 'test'];
const MIN_HMAC_SECRET_BYTES = 32;

function present(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = present(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = present(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `unknown option "${raw}" (one of ${allowed.join(', ')})`);
  }
  return raw as T;
}

function boolean(env: Env, name: string): boolean {
  const value = oneOf(env, name, ['true', 'false', '1', '0'], 'false');
  return value === 'true' || value === '1';
}

function url(env: Env, name: string, protocols: readonly string[], raw = present(env, name)): string | undefined {
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')} (got ${parsed.protocol})`);
  }
  if (!parsed.hostname) throw new ConfigError(name, 'has no host');
  return raw;
}

function keyPrefix(env: Env, name: string): string | undefined {
  const raw = present(env, name);
  if (raw !== undefined && !/^[\w:.-]{1,64}$/.test(raw)) throw new ConfigError(name, 'must be 1-64 letters, digits, ":", ".", "_" or "-"');
  return raw;
}

const POSTGRES = ['postgres:', 'postgresql:'];

/**
 * `CORS_ORIGINS`: comma-separated exact origins (`https://app.example.com`, `http://localhost:5173`),
 * compared byte for byte with a browser's `Origin` header, which is always scheme, lower-case host
 * and a port only when it is not the scheme's default: anything else here could never match, so it
 * is refused rather than silently ignored. `*` is refused: the API holds PHI.
 */
function corsOrigins(env: Env): string[] {
  const raw = present(env, 'CORS_ORIGINS');
  if (raw === undefined) return [];
  const origins = raw.split(',').map((entry) => entry.trim());
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError('CORS_ORIGINS', `"${origin}" is not an origin (scheme://host[:port], lower-case, no path or trailing slash; comma-separated)`);
    }
  }
  return [...new Set(origins)];
}

/** Requests per (signed-in user, prefix) per window, by role: a receptionist (staff) or doctor works all day in the records. */
const DEFAULT_ROLE_MAX: Record<Role, number> = { admin: 300, doctor: 600, staff: 600, auditor: 300 };

/** `RATE_LIMIT_ROLE_MAX`: comma-separated `role=max`; a role left out keeps its default. */
function roleMax(env: Env, name: string): Record<Role, number> {
  const raw = present(env, name);
  const budgets = { ...DEFAULT_ROLE_MAX };
  if (raw === undefined) return budgets;
  const seen = new Set<string>();
  for (const entry of raw.split(',')) {
    const match = /^\s*([a-z]+)\s*=\s*(\d+)\s*$/.exec(entry);
    if (!match) throw new ConfigError(name, `"${entry.trim()}" is not role=max (e.g. staff=600)`);
    const [, role, max] = match as unknown as [string, string, string];
    if (!(ROLES as readonly string[]).includes(role)) throw new ConfigError(name, `unknown role "${role}" (one of ${ROLES.join(', ')})`);
    if (seen.has(role)) throw new ConfigError(name, `names ${role} twice`);
    seen.add(role);
    const value = Number(max);
    if (value < 1 || value > 1_000_000) throw new ConfigError(name, `${role}: must be between 1 and 1000000`);
    budgets[role as Role] = value;
  }
  return budgets;
}

function replicaUrls(env: Env): string[] {
  const raw = present(env, 'DATABASE_REPLICA_URLS');
  if (raw === undefined) return [];
  return raw.split(',').map((part) => url(env, 'DATABASE_REPLICA_URLS', POSTGRES, part.trim())!);
}

function jwtKey(entry: unknown, index: number): JwtKey {
  const where = `JWT_KEYS`;
  if (typeof entry !== 'object' || entry === null) throw new ConfigError(where, `key ${index} is not an object`);
  const key = entry as Record<string, unknown>;
  if (typeof key.kid !== 'string' || !/^[\w.-]{1,64}$/.test(key.kid)) {
    throw new ConfigError(where, `key ${index} needs a "kid" of letters, digits, "_", "-" or "."`);
  }
  if (key.alg === 'HS256') {
    if (typeof key.secret !== 'string' || Buffer.byteLength(key.secret) < MIN_HMAC_SECRET_BYTES) {
      throw new ConfigError(where, `key "${key.kid}" needs a secret of at least ${MIN_HMAC_SECRET_BYTES} bytes`);
    }
    return { kid: key.kid, alg: 'HS256', secret: key.secret };
  }
  if (key.alg === 'ES256' || key.alg === 'RS256') {
    if (typeof key.publicKey !== 'string') throw new ConfigError(where, `key "${key.kid}" needs a publicKey (PEM)`);
    const expectedType = key.alg === 'ES256' ? 'ec' : 'rsa';
    try {
      const pub = createPublicKey(key.publicKey);
      if (pub.asymmetricKeyType !== expectedType) throw new Error('type');
      if (key.alg === 'RS256' && (pub.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error('size');
      if (key.privateKey !== undefined) {
        if (typeof key.privateKey !== 'string') throw new Error('private');
        createPrivateKey(key.privateKey);
      }
    } catch {
      throw new ConfigError(where, `key "${key.kid}" has no valid ${key.alg} PEM key pair`);
    }
    return { kid: key.kid, alg: key.alg, publicKey: key.publicKey, ...(key.privateKey ? { privateKey: key.privateKey as string } : {}) };
  }
  throw new ConfigError(where, `key "${key.kid}" has alg ${String(key.alg)}; allowed: HS256, ES256, RS256`);
}

function jwtKeys(env: Env): JwtKey[] | undefined {
  const raw = present(env, 'JWT_KEYS');
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('JWT_KEYS', 'is not valid JSON');
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new ConfigError('JWT_KEYS', 'must be a non-empty JSON array');
  const keys = parsed.map(jwtKey);
  if (new Set(keys.map((k) => k.kid)).size !== keys.length) throw new ConfigError('JWT_KEYS', 'has a repeated kid');
  const signing = keys[0]!;
  if (signing.alg !== 'HS256' && !signing.privateKey) {
    throw new ConfigError('JWT_KEYS', `the first key ("${signing.kid}") signs, so it needs a privateKey`);
  }
  return keys;
}

function bootstrapAdmin(env: Env): Config['bootstrapAdmin'] {
  const email = present(env, 'BOOTSTRAP_ADMIN_EMAIL');
  const password = env.BOOTSTRAP_ADMIN_PASSWORD;
  if (email === undefined && !password) return undefined;
  if (email === undefined) throw new ConfigError('BOOTSTRAP_ADMIN_EMAIL', 'is required with BOOTSTRAP_ADMIN_PASSWORD');
  if (!password) throw new ConfigError('BOOTSTRAP_ADMIN_PASSWORD', 'is required with BOOTSTRAP_ADMIN_EMAIL');
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new ConfigError('BOOTSTRAP_ADMIN_EMAIL', 'is not an e-mail address');
  return { email, password };
}

/** `S3_KMS_KEY_ARN`: a KMS key ARN (the bucket policies compare the write's key id with the ARN, not an alias or bare id). */
function kmsKeyArn(env: Env): string | undefined {
  const value = present(env, 'S3_KMS_KEY_ARN');
  if (value !== undefined && !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/.test(value)) {
    throw new ConfigError('S3_KMS_KEY_ARN', 'is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)');
  }
  return value;
}

/** Production's MFA policy unless `MFA_REQUIRED_ROLES` says otherwise: the roles that change records or users. */
export const PRODUCTION_MFA_REQUIRED_ROLES: readonly Role[] = ['admin', 'doctor'];

/** `MFA_REQUIRED_ROLES`: comma-separated roles, or `none`; unset: admin and doctor in production, none elsewhere. */
function mfaRequiredRoles(env: Env, environment: Environment): readonly Role[] {
  const raw = present(env, 'MFA_REQUIRED_ROLES');
  if (raw === undefined) return environment === 'production' ? PRODUCTION_MFA_REQUIRED_ROLES : [];
  if (raw === 'none') return [];
  const roles = raw.split(',').map((role) => role.trim());
  const unknown = roles.filter((role) => !(ROLES as readonly string[]).includes(role));
  if (unknown.length > 0) throw new ConfigError('MFA_REQUIRED_ROLES', `unknown role "${unknown[0]}" (roles: ${ROLES.join(', ')}; or none)`);
  return [...new Set(roles as Role[])];
}

/** `AUDIT_ACCESS_RECORDS`: `on` (default) or `off`, never off in production (HIPAA §164.312(b)). */
function accessRecords(env: Env, environment: Environment): boolean {
  const value = oneOf(env, 'AUDIT_ACCESS_RECORDS', ['on', 'off'] as const, 'on');
  if (value === 'off' && environment === 'production') throw new ConfigError('AUDIT_ACCESS_RECORDS', 'cannot be off when NODE_ENV=production');
  return value === 'on';
}

/** Every variable production cannot run without: it never falls back to embedded parts. */
const REQUIRED_IN_PRODUCTION = ['DATABASE_URL', 'AWS_REGION', 'XRAY_BUCKET', 'AUDIT_BUCKET', 'JWT_KEYS'] as const;

/**
 * A CloudWatch namespace the API may publish to: 1 to 255 of the characters CloudWatch allows, and
 * not `AWS/` (reserved for AWS services). https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
 */
function metricsNamespace(env: Env): string | undefined {
  const value = present(env, 'METRICS_NAMESPACE');
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9._/#:-]{1,255}$/.test(value) || value.startsWith('AWS/')) {
    throw new ConfigError('METRICS_NAMESPACE', 'must be a CloudWatch namespace (letters, digits, . - _ / # :), not under AWS/');
  }
  return value;
}

function tracing(env: Env): Config['tracing'] {
  const endpoint = url(env, 'OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  if (endpoint === undefined) return undefined;
  const raw = present(env, 'OTEL_TRACES_SAMPLER_ARG');
  const sampleRatio = raw === undefined ? 1 : Number(raw);
  if (!(sampleRatio >= 0 && sampleRatio <= 1)) throw new ConfigError('OTEL_TRACES_SAMPLER_ARG', 'must be a share from 0 to 1');
  return { endpoint: endpoint.replace(/\/+$/, ''), sampleRatio };
}

/** What `AUDIT_HEAVY_USER_PATIENTS` may be; the stack config (`dms:service.auditHeavyUserPatients`) checks the same bounds before a deploy. */
export const HEAVY_USER_PATIENTS_RANGE = { min: 1, max: 1_000_000 } as const;

/** Who reads the configuration: the API signs tokens; the one-off commands (`api/cli.ts`) never do. */
export type ConfigReader = 'api' | 'cli';

/**
 * Reads and validates the process configuration once (CONTRACT §1). The one-off commands are not
 * given `JWT_KEYS` (each job's execution role injects only the secrets it uses), so for them the
 * keys are optional; a key that is given is still validated.
 */
export function loadConfig(env: Env = process.env, reader: ConfigReader = 'api'): Config {
  const environment = oneOf(env, 'NODE_ENV', ENVIRONMENTS, 'development');
  if (environment === 'production') {
    for (const name of REQUIRED_IN_PRODUCTION.filter((required) => reader === 'api' || required !== 'JWT_KEYS')) {
      if (present(env, name) === undefined) throw new ConfigError(name, 'is required when NODE_ENV=production');
    }
    // AWS S3 buckets refuse writes without the stack's key; an S3-compatible store (S3_ENDPOINT) has no KMS.
    if (present(env, 'S3_ENDPOINT') === undefined && present(env, 'S3_KMS_KEY_ARN') === undefined) {
      throw new ConfigError('S3_KMS_KEY_ARN', 'is required when NODE_ENV=production on AWS S3 (the buckets refuse writes without their KMS key)');
    }
  }
  const port = integer(env, 'PORT', 3000, 0, 65535);
  const host = present(env, 'HOST') ?? '0.0.0.0';
  return {
    env: environment,
    port,
    host,
    databaseUrl: url(env, 'DATABASE_URL', POSTGRES),
    replicaUrls: replicaUrls(env),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    s3: {
      endpoint: url(env, 'S3_ENDPOINT', ['http:', 'https:']),
      forcePathStyle: boolean(env, 'S3_FORCE_PATH_STYLE'),
      region: present(env, 'AWS_REGION'),
      xrayBucket: present(env, 'XRAY_BUCKET'),
      auditBucket: present(env, 'AUDIT_BUCKET'),
      kmsKeyArn: kmsKeyArn(env),
    },
    jwtKeys: jwtKeys(env),
    trustProxyHops: integer(env, 'TRUST_PROXY_HOPS', 0, 0, 10),
    rateLimits: {
      login: {
        max: integer(env, 'RATE_LIMIT_LOGIN_MAX', 50, 1, 1_000_000),
        windowS: integer(env, 'RATE_LIMIT_LOGIN_WINDOW_S', 900, 1, 86_400),
      },
      sensitive: {
        max: integer(env, 'RATE_LIMIT_SENSITIVE_MAX', 100, 1, 1_000_000),
        windowS: integer(env, 'RATE_LIMIT_SENSITIVE_WINDOW_S', 300, 1, 86_400),
      },
      user: {
        maxByRole: roleMax(env, 'RATE_LIMIT_ROLE_MAX'),
        windowS: integer(env, 'RATE_LIMIT_USER_WINDOW_S', 300, 1, 86_400),
      },
    },
    rateLimitKeyPrefix: keyPrefix(env, 'RATE_LIMIT_KEY_PREFIX'),
    presignTtlS: integer(env, 'PRESIGN_TTL_S', 90, 10, 3600),
    corsOrigins: corsOrigins(env),
    auditHotDays: integer(env, 'AUDIT_HOT_DAYS', 90, 30, 3650),
    accessRecords: accessRecords(env, environment),
    heavyUserPatients: integer(env, 'AUDIT_HEAVY_USER_PATIENTS', 500, HEAVY_USER_PATIENTS_RANGE.min, HEAVY_USER_PATIENTS_RANGE.max),
    bootstrapAdmin: bootstrapAdmin(env),
    mfaRequiredRoles: mfaRequiredRoles(env, environment),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    metricsNamespace: metricsNamespace(env),
    tracing: tracing(env),
  };
}
