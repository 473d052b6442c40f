import assert from 'node:assert/strict';
import { allLogLines, TEST_JWT_KEY } from './support/api.js';
import { usedSecrets } from './support/auth.js';

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

  it('holds no JWT, Authorization or Cookie value, bearer credential or password hash of any test', () => {
    for (const line of scanned()) {
      assert.doesNotMatch(line, /eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*/, 'a JWT');
      assert.doesNotMatch(line, /Bearer\s+(?!\[redacted\])[\w.~+/-]{8,}/i, 'a bearer credential');
      assert.doesNotMatch(line, /\$argon2(id|i|d)\$/, 'a password hash');
      const record = JSON.parse(line) as Record<string, unknown>;
      for (const key of ['authorization', 'Authorization', 'cookie', 'Cookie', 'password', 'refreshToken', 'accessToken']) {
        assert.ok(record[key] === undefined || record[key] === '[redacted]', `field ${key} in ${String(record.event)}`);
      }
    }
  });
});
