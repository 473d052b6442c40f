import assert from 'node:assert/strict';
import { allLogLines, TEST_JWT_KEY } from './support/api.js';
import { usedSecrets } from './support/auth.js';

/** Field names that hold a credential, whatever their case or separator (this list is the scan's own, not the logger's). */
const CREDENTIAL_NAMES = new Set(['authorization', 'proxyauthorization', 'cookie', 'setcookie', 'xapikey', 'apikey', 'password', 'newpassword', 'currentpassword', 'refreshtoken', 'accesstoken', 'mfatoken', 'secret', 'clientsecret']);

/** Every field of a record at any depth (arrays included) whose name is a credential's, with its path. */
function credentialFields(value: unknown, path = ''): [string, unknown][] {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    const at = path ? `${path}.${key}` : key;
    const here: [string, unknown][] = CREDENTIAL_NAMES.has(key.toLowerCase().replace(/[-_]/g, '')) ? [[at, inner]] : [];
    return [...here, ...credentialFields(inner, at)];
  });
}

/**
 * Runs last (mocha loads spec files in name order, and `zz-` sorts after every folder of test/):
 * every line any test API logged in this run, read for every credential the suite used.
 */
describe('no log line carries a credential (whole run)', () => {
  /**
   * `dev_admin_created` is the one sanctioned exception: under `npm start` on embedded defaults
   * (development only, never production) it prints the generated admin password once, so a
   * newcomer can sign in. It is left out of the scan for that reason, and only that line.
   */
  const SANCTIONED = new Set(['dev_admin_created']);
  const scanned = () => allLogLines.filter((line) => !SANCTIONED.has((JSON.parse(line) as { event?: string }).event ?? ''));

  before(function () {
    if (allLogLines.length === 0) this.skip();
  });

  it('holds none of the passwords, tokens and signing keys the tests used', () => {
    const secrets = [...usedSecrets, TEST_JWT_KEY.secret].filter((secret) => secret.length >= 12);
    const lines = scanned();
    for (const secret of secrets) {
      const leak = lines.find((line) => line.includes(secret));
      assert.equal(leak, undefined, `a secret of ${secret.length} characters appears in: ${leak?.slice(0, 200)}`);
    }
  });

  it('holds no JWT, Authorization, Cookie or API key value, bearer or basic credential or password hash of any test, at any depth', () => {
    for (const line of scanned()) {
      assert.doesNotMatch(line, /eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*/, 'a JWT');
      assert.doesNotMatch(line, /Bearer\s+(?!\[redacted\])[\w.~+/-]{8,}/i, 'a bearer credential');
      assert.doesNotMatch(line, /Basic\s+(?!\[redacted\])[A-Za-z0-9+/=]{8,}/i, 'a basic credential');
      assert.doesNotMatch(line, /\$argon2(id|i|d)\$/, 'a password hash');
      const record = JSON.parse(line) as Record<string, unknown>;
      for (const [path, value] of credentialFields(record)) {
        assert.equal(value, '[redacted]', `field ${path} in ${String(record.event)}`);
      }
    }
  });
});
