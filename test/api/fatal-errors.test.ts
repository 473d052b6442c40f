import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';

/** A Node process with the API's logger and fatal-error hooks, which then runs `trigger`. */
function runWithHooks(trigger: string): Promise<{ code: number | null; stdout: string[]; stderr: string }> {
  const module = (path: string) => JSON.stringify(pathToFileURL(path).href);
  const script = `
    const { createLogger } = await import(${module('api/logger.ts')});
    const { exitOnFatalErrors } = await import(${module('api/fatal-errors.ts')});
    exitOnFatalErrors(createLogger({ level: 'info', env: 'test' }));
    ${trigger}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: stdout.split('\n').filter(Boolean), stderr })));
}

describe('an error outside any request ends the task with one JSON line an alarm counts', function () {
  this.timeout(30_000);

  for (const [origin, trigger] of [
    ['unhandledRejection', "setTimeout(() => Promise.reject(new Error('pool listener failed')), 10);"],
    ['uncaughtException', "setTimeout(() => { throw new Error('timer callback failed'); }, 10);"],
  ] as const) {
    it(`${origin}: logs process_fatal_error as JSON on stdout, nothing on stderr, and exits 1`, async () => {
      const { code, stdout, stderr } = await runWithHooks(trigger);
      assert.equal(code, 1);
      assert.equal(stderr, '', 'no bare stack trace');
      assert.equal(stdout.length, 1, stdout.join('\n'));
      const line = JSON.parse(stdout[0]!) as Record<string, unknown>;
      assert.equal(line.event, 'process_fatal_error');
      assert.equal(line.origin, origin);
      assert.equal(line.level, 'error');
      assert.match(String(line.errorMessage), /failed/);
    });
  }

  it('logs only the first of two errors while exiting', async () => {
    const { code, stdout } = await runWithHooks("Promise.reject(new Error('first failed')); Promise.reject(new Error('second failed'));");
    assert.equal(code, 1);
    assert.deepEqual(stdout.map((line) => (JSON.parse(line) as { errorMessage: string }).errorMessage), ['first failed']);
  });
});
