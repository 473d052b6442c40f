// A test run leaves no PostgreSQL behind: the run's cluster and the shared database's replica are
// stopped and deleted when mocha ends (test/support/global.ts). Every full run used to leave both
// running: the teardown, required as CommonJS, saw its own empty copy of the run's state, while the
// specs mocha loads with import() had started the servers through the ES-module copy.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MOCHA = createRequire(import.meta.url).resolve('mocha/bin/mocha.js');

describe('a test run stops and deletes its own PostgreSQL servers when it ends', () => {
  it('leaves neither the run cluster nor the replica of the shared database running or on disk', function () {
    this.timeout(120_000);
    const probe = join(mkdtempSync(join(tmpdir(), 'dms-teardown-')), 'servers.json');
    const run = spawnSync(process.execPath, [MOCHA, 'test/support/fixtures/shared-database.spec.ts'], {
      cwd: ROOT,
      env: { ...process.env, DMS_TEARDOWN_PROBE: probe },
      encoding: 'utf8',
      timeout: 110_000,
    });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const servers = JSON.parse(readFileSync(probe, 'utf8')) as { cluster: string; replica: string };
    for (const [what, dataDir] of Object.entries(servers)) {
      assert.ok(dataDir.startsWith(tmpdir()), `${what}: ${dataDir}`);
      assert.equal(existsSync(dataDir), false, `the ${what}'s data directory ${dataDir} is still there (and its server with it)`);
    }
  });
});
