import { blockIp } from './commands/block-ip.js';
import { drDrill } from './commands/dr-drill.js';
import { drillSweep } from './commands/drill-sweep.js';
import { failover } from './commands/failover.js';
import { healthCheck } from './commands/health-check.js';
import { pageTest } from './commands/page-test.js';
import { preflight } from './commands/preflight.js';
import { preserveEvidence } from './commands/preserve-evidence.js';
import { revokeSessions } from './commands/revoke-sessions.js';
import { rollback } from './commands/rollback.js';
import { rotateJwtKey } from './commands/rotate-jwt-key.js';
import { scale } from './commands/scale.js';
import { topOffenders } from './commands/top-offenders.js';
import { unblockIp } from './commands/unblock-ip.js';
import type { OpsCommand } from './lib/command.js';
import type { OpsContext } from './lib/context.js';
import { describeError, exitCodeOf, UsageError } from './lib/errors.js';

/** Every command `npm run ops -- <name>` runs, with the flags it accepts (the runbook checks read this). */
export const opsCommands: readonly OpsCommand[] = [
  drDrill,
  drillSweep,
  blockIp,
  unblockIp,
  rollback,
  scale,
  healthCheck,
  revokeSessions,
  rotateJwtKey,
  topOffenders,
  pageTest,
  preflight,
  failover,
  preserveEvidence,
];

function overview(): string {
  const width = Math.max(...opsCommands.map((command) => command.name.length));
  return [
    'usage: npm run ops -- <command> --stack <name> [--outputs <file.json>] [options]',
    '',
    ...opsCommands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    'npm run ops -- <command> --help shows a command\'s options. Exit status: 0 done, 1 failed, 2 bad usage.',
  ].join('\n');
}

/** Runs one command line; never throws: errors become one line on stderr and the exit status. */
export async function runOps(argv: readonly string[], ctx: OpsContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ctx.io.out(overview());
    return name === undefined ? 2 : 0;
  }
  const command = opsCommands.find((candidate) => candidate.name === name);
  try {
    if (!command) throw new UsageError(`unknown command "${name}"; commands: ${opsCommands.map((c) => c.name).join(', ')}`);
    return await command.execute(rest, ctx);
  } catch (error) {
    const hint = error instanceof UsageError && command ? ` (see npm run ops -- ${command.name} --help)` : '';
    ctx.io.err(`error: ${describeError(error)}${hint}`);
    return exitCodeOf(error);
  }
}
