import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { ConfigError, loadConfig } from '../../api/config.js';

const strongKey = JSON.stringify([{ kid: 'k1', alg: 'HS256', secret: 'x'.repeat(32) }]);
const production = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://dms_app@db.internal:5432/dms',
  AWS_REGION: 'eu-west-1',
  XRAY_BUCKET: 'x',
  AUDIT_BUCKET: 'a',
  S3_KMS_KEY_ARN: 'arn:aws:kms:eu-west-1:123456789012:key/0b7a2f4e-93d1-4c55-9a0e-6f2d8c1b7e40',
  JWT_KEYS: strongKey,
};

function rejects(env: Record<string, string>, variable: string): void {
  assert.throws(() => loadConfig(env), (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.variable, variable);
    assert.match(error.message, new RegExp(`^${variable}: `));
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

describe('configuration (CONTRACT §1)', () => {
  it('applies the contract defaults when nothing is set', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.trustProxyHops, 0);
    assert.deepEqual(config.rateLimits, {
      login: { max: 50, windowS: 900 },
      sensitive: { max: 100, windowS: 300 },
      // Not in the contract (an addition, README): signed-in requests per (user, prefix), by role.
      user: { maxByRole: { admin: 300, doctor: 600, staff: 600, auditor: 300 }, windowS: 300 },
    });
    assert.equal(config.presignTtlS, 90);
    assert.deepEqual(config.corsOrigins, [], 'no browser origin may call the API unless configured');
    assert.equal(config.logLevel, 'info');
    assert.deepEqual(config.replicaUrls, []);
    assert.equal(config.databaseUrl, undefined);
  });

  it('takes CORS_ORIGINS as exact browser origins, refusing what no Origin header could ever match', () => {
    assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://app.dms.example.com, http://localhost:5173,https://app.dms.example.com' }).corsOrigins, [
      'https://app.dms.example.com', 'http://localhost:5173',
    ]);
    for (const bad of ['*', 'app.dms.example.com', 'https://app.dms.example.com/', 'https://App.dms.example.com', 'https://app.dms.example.com:443', 'https://app.dms.example.com/path', 'ftp://files.example.com', 'https://a.example.com,,https://b.example.com']) {
      rejects({ CORS_ORIGINS: bad }, 'CORS_ORIGINS');
    }
  });

  it('names the variable of a malformed URL', () => {
    rejects({ DATABASE_URL: 'not-a-url' }, 'DATABASE_URL');
    rejects({ DATABASE_URL: 'mysql://db/x' }, 'DATABASE_URL');
    rejects({ DATABASE_REPLICA_URLS: 'postgres://r1/db,nope' }, 'DATABASE_REPLICA_URLS');
    rejects({ REDIS_URL: 'http://cache' }, 'REDIS_URL');
    rejects({ S3_ENDPOINT: 'ftp://s3' }, 'S3_ENDPOINT');
  });

  it('splits replica URLs', () => {
    const config = loadConfig({ DATABASE_REPLICA_URLS: 'postgres://a/db, postgres://b/db' });
    assert.deepEqual(config.replicaUrls, ['postgres://a/db', 'postgres://b/db']);
  });

  it('refuses unknown options and out-of-range numbers', () => {
    rejects({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
    rejects({ NODE_ENV: 'prod' }, 'NODE_ENV');
    rejects({ S3_FORCE_PATH_STYLE: 'yes' }, 'S3_FORCE_PATH_STYLE');
    rejects({ PORT: '70000' }, 'PORT');
    rejects({ PORT: '3e3' }, 'PORT');
    rejects({ RATE_LIMIT_LOGIN_MAX: '0' }, 'RATE_LIMIT_LOGIN_MAX');
    rejects({ PRESIGN_TTL_S: '-5' }, 'PRESIGN_TTL_S');
  });

  it('never falls back to embedded parts in production', () => {
    assert.equal(loadConfig(production).env, 'production');
    for (const variable of ['DATABASE_URL', 'AWS_REGION', 'XRAY_BUCKET', 'AUDIT_BUCKET', 'S3_KMS_KEY_ARN', 'JWT_KEYS']) {
      rejects({ ...production, [variable]: '' }, variable);
    }
  });

  it('the one-off commands run in production without JWT_KEYS (their task roles do not get it), the API does not', () => {
    const withoutKeys = { ...production, JWT_KEYS: '' };
    assert.equal(loadConfig(withoutKeys, 'cli').jwtKeys, undefined);
    rejects(withoutKeys, 'JWT_KEYS');
    assert.throws(() => loadConfig({ ...production, JWT_KEYS: '[]' }, 'cli'), ConfigError, 'a key that is given is still checked');
  });

  it("writes to AWS S3 name the stack's KMS key by ARN; an S3-compatible store needs none", () => {
    assert.equal(loadConfig(production).s3.kmsKeyArn, production.S3_KMS_KEY_ARN);
    rejects({ ...production, S3_KMS_KEY_ARN: 'alias/dms-production-s3' }, 'S3_KMS_KEY_ARN');
    rejects({ ...production, S3_KMS_KEY_ARN: '0b7a2f4e-93d1-4c55-9a0e-6f2d8c1b7e40' }, 'S3_KMS_KEY_ARN');
    assert.equal(loadConfig({ ...production, S3_KMS_KEY_ARN: '', S3_ENDPOINT: 'http://127.0.0.1:4568' }).s3.kmsKeyArn, undefined);
  });

  it('refuses weak, malformed or unsigned JWT keys', () => {
    rejects({ JWT_KEYS: '[{"kid":"k1","alg":"HS256","secret":"short"}]' }, 'JWT_KEYS');
    rejects({ JWT_KEYS: '[{"kid":"k1","alg":"none"}]' }, 'JWT_KEYS');
    rejects({ JWT_KEYS: '{' }, 'JWT_KEYS');
    rejects({ JWT_KEYS: '[]' }, 'JWT_KEYS');
    rejects({ JWT_KEYS: JSON.stringify([{ kid: 'a', alg: 'HS256', secret: 'y'.repeat(32) }, { kid: 'a', alg: 'HS256', secret: 'z'.repeat(32) }]) }, 'JWT_KEYS');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    // A retired key may keep only its public half, but the signing (first) key needs its private half.
    rejects({ JWT_KEYS: JSON.stringify([{ kid: 'e1', alg: 'ES256', publicKey: pem }]) }, 'JWT_KEYS');
    const keys = loadConfig({ JWT_KEYS: JSON.stringify([{ kid: 'h1', alg: 'HS256', secret: 'y'.repeat(32) }, { kid: 'e1', alg: 'ES256', publicKey: pem }]) }).jwtKeys;
    assert.deepEqual(keys?.map((k) => k.kid), ['h1', 'e1']);
    // An RSA key offered as ES256 is algorithm confusion waiting to happen.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    rejects({ JWT_KEYS: JSON.stringify([{ kid: 'h1', alg: 'HS256', secret: 'y'.repeat(32) }, { kid: 'r1', alg: 'ES256', publicKey: rsa }]) }, 'JWT_KEYS');
  });

  it('needs both halves of the bootstrap admin', () => {
    rejects({ BOOTSTRAP_ADMIN_EMAIL: 'a@b.example' }, 'BOOTSTRAP_ADMIN_PASSWORD');
    rejects({ BOOTSTRAP_ADMIN_PASSWORD: 'x'.repeat(20) }, 'BOOTSTRAP_ADMIN_EMAIL');
  });
});
