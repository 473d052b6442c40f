// A drill interrupted the ways an operator's session really ends, as a real process receiving real
// signals (test/ops/fixtures/drill-process.ts: the CLI's session and SDK clients, AWS mocked inside
// it): Ctrl-C on `… 2>&1 | tee file` (tee dies too, so every later write fails with EPIPE), the
// terminal closed (SIGHUP), `kill` or a CI runner (SIGTERM). Each must stop the verify task and
// delete the restored copy of patient data exactly once.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { DRILL_ID, EXPECTED_DELETE, TASK_ARN } from './drill-fixture.js';
import { FIXTURE } from './support.js';

const DRILL_PROCESS = fileURLToPath(new URL('./fixtures/drill-process.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DRILL_ARGS = ['dr-drill', '--stack', 'production', '--outputs', FIXTURE];
/** Starting node with the TypeScript loader takes a few seconds on a shared machine. */
const PROCESS_TIMEOUT_MS = 60_000;

interface Call {
  operation: string;
  input: Record<string, unknown>;
}

interface Message {
  holding?: string;
  deleting?: boolean;
  exit?: number;
  calls?: Call[];
}

/** The fd-3 channel of a drill process: each message as it arrives, and the last one (exit). */
class TestChannel {
  private readonly messages: Message[] = [];
  private readonly waiters: { match: (message: Message) => boolean; resolve: (message: Message) => void }[] = [];
  /** Resolves once every process holding fd 3 has exited. */
  readonly closed: Promise<unknown>;

  constructor(private readonly stream: Readable & Partial<Writable>) {
    this.closed = once(stream, 'close');
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const message = JSON.parse(buffered.slice(0, newline)) as Message;
        buffered = buffered.slice(newline + 1);
        this.messages.push(message);
        for (const waiter of this.waiters.filter((candidate) => candidate.match(message))) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(message);
        }
      }
    });
  }

  next(match: (message: Message) => boolean): Promise<Message> {
    const seen = this.messages.find(match);
    return seen ? Promise.resolve(seen) : new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** What the process said on exit: its exit code and every AWS call; a process killed by a signal says nothing. */
  async exitReport(): Promise<{ exit: number | undefined; calls: Call[] }> {
    await this.closed;
    const last = this.messages.find((message) => message.exit !== undefined);
    assert.ok(last, 'the drill process died without exiting (killed by a signal or EPIPE)');
    return { exit: last.exit, calls: last.calls ?? [] };
  }

  send(line: string): void {
    this.stream.write?.(`${line}\n`);
  }
}

interface DrillProcess {
  child: ChildProcess;
  channel: TestChannel;
  stdout: () => string;
  stderr: () => string;
}

/** The drill process; stdout/stderr go where `stdio` says ('pipe': collected here). */
function startDrill(holdAt: 'restore' | 'task', stdio: ['ignore', 'pipe' | Writable, 'pipe' | Writable], env: Record<string, string> = {}): DrillProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', DRILL_PROCESS, ...DRILL_ARGS], {
    cwd: REPO,
    env: { ...process.env, HOLD_AT: holdAt, ...env },
    stdio: [...stdio, 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, channel: new TestChannel(child.stdio[3] as Readable & Writable), stdout: () => stdout, stderr: () => stderr };
}

async function outcome(drill: DrillProcess): Promise<{ exit: number | undefined; calls: Call[] }> {
  const report = await drill.channel.exitReport();
  if (drill.child.exitCode === null && drill.child.signalCode === null) await once(drill.child, 'exit');
  return report;
}

function callsOf(calls: readonly Call[], operation: string): Record<string, unknown>[] {
  return calls.filter((call) => call.operation === operation).map((call) => call.input);
}

const EXPECTED_STOP = { cluster: 'dms-production', task: TASK_ARN, reason: `dr-drill clean-up of ${DRILL_ID}` };

function assertCleanedUpOnce(calls: readonly Call[], { taskStarted }: { taskStarted: boolean }): void {
  assert.deepEqual(callsOf(calls, 'DeleteDBInstance'), [EXPECTED_DELETE]);
  assert.deepEqual(callsOf(calls, 'StopTask'), taskStarted ? [EXPECTED_STOP] : []);
  if (taskStarted) {
    const operations = calls.map((call) => call.operation);
    assert.ok(operations.indexOf('StopTask') < operations.indexOf('DeleteDBInstance'), 'the task stops before its database goes');
  }
}

describe('ops dr-drill interrupted: a real drill process cleans up exactly once, however the session ends', function () {
  this.timeout(PROCESS_TIMEOUT_MS);

  it('Ctrl-C on `dr-drill 2>&1 | tee`: tee is gone (EPIPE on every write), the drill still stops its task and deletes once', async () => {
    // The reader stands in for tee: it reads until Ctrl-C kills it, before node handles its own SIGINT.
    const tee = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const drill = startDrill('task', ['ignore', tee.stdin, tee.stdin]);
    await drill.channel.next((message) => message.holding === 'task');
    tee.kill('SIGINT');
    await once(tee, 'exit');
    drill.child.kill('SIGINT');
    const { exit, calls } = await outcome(drill);
    assertCleanedUpOnce(calls, { taskStarted: true });
    assert.equal(exit, 1, 'an interrupted drill is not a passed drill');
    assert.equal(drill.child.signalCode, null, 'node exited by itself, not killed by EPIPE or the signal');
  });

  it('Ctrl-C on the real pipeline `… 2>&1 | tee` in its own process group: every process gets SIGINT', async () => {
    const pipeline = `"${process.execPath}" --import tsx "${DRILL_PROCESS}" ${DRILL_ARGS.map((arg) => `'${arg}'`).join(' ')} 2>&1 | tee /dev/null 3>&-`;
    const shell = spawn('sh', ['-c', pipeline], { cwd: REPO, env: { ...process.env, HOLD_AT: 'task' }, stdio: ['ignore', 'ignore', 'ignore', 'pipe'], detached: true });
    const channel = new TestChannel(shell.stdio[3] as Readable & Writable);
    await channel.next((message) => message.holding === 'task');
    process.kill(-(shell.pid ?? 0), 'SIGINT');
    const { exit, calls } = await channel.exitReport();
    assertCleanedUpOnce(calls, { taskStarted: true });
    assert.equal(exit, 1);
  });

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} while the verify task runs: one stop-task, one delete, a FAIL report and no stack trace`, async () => {
      const drill = startDrill('task', ['ignore', 'pipe', 'pipe']);
      await drill.channel.next((message) => message.holding === 'task');
      drill.child.kill(signal);
      const { exit, calls } = await outcome(drill);
      assertCleanedUpOnce(calls, { taskStarted: true });
      assert.equal(exit, 1);
      assert.match(drill.stderr(), new RegExp(`interrupted \\(${signal}\\): cleaning up before exit`));
      assert.match(drill.stdout(), new RegExp(`result\\s+FAIL: verify from inside the VPC: interrupted by ${signal}`));
      assert.match(drill.stdout(), /verify task clean-up\s+verify task 0a1b2c3d4e5f stopped/);
      assert.doesNotMatch(drill.stderr(), /^\s+at /m, 'no stack trace');
    });
  }

  it('SIGINT while the restore is still creating: deletes it once, and there is no task to stop', async () => {
    const drill = startDrill('restore', ['ignore', 'pipe', 'pipe']);
    await drill.channel.next((message) => message.holding === 'restore');
    drill.child.kill('SIGINT');
    const { exit, calls } = await outcome(drill);
    assertCleanedUpOnce(calls, { taskStarted: false });
    assert.equal(exit, 1);
    assert.match(drill.stdout(), /result\s+FAIL: wait for the restore: interrupted by SIGINT/);
  });

  it('a second SIGINT during the clean-up (npm and tsx relay Ctrl-C) neither exits nor cleans up twice', async () => {
    const drill = startDrill('task', ['ignore', 'pipe', 'pipe'], { HOLD_DELETE: '1' });
    await drill.channel.next((message) => message.holding === 'task');
    drill.child.kill('SIGINT');
    await drill.channel.next((message) => message.deleting === true);
    drill.child.kill('SIGINT');
    while (!/SIGINT: still cleaning up/.test(drill.stderr())) await once(drill.child.stderr!, 'data');
    drill.channel.send('go on');
    const { exit, calls } = await outcome(drill);
    assertCleanedUpOnce(calls, { taskStarted: true });
    assert.equal(exit, 1);
    assert.match(drill.stdout(), /clean-up\s+dms-drill-production-202503100915 deletion requested/);
  });
});
