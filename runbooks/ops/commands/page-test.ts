import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { HIGHEST_LEVEL, LEVELS, PAGE_TEST_SOURCE, type PageSeverity } from '../../../infra/monitoring/escalation/levels.js';
import { defineCommand, stackShortName } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import { loadOutputs, requireOutputs } from '../lib/outputs.js';
import { printSummary } from '../lib/report.js';

/** The severities a paging test may use: P3 (chat only, monthly) and P1 (the whole ladder, quarterly). */
const TEST_SEVERITIES = ['P3', 'P1'] as const satisfies readonly PageSeverity[];

/** The UTC minute as `yyyymmddThhmmZ`, for an execution name that says when the test ran. */
function compactMinute(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace(/[-:]/g, '')}Z`;
}

export const pageTest = defineCommand({
  name: 'page-test',
  summary: 'start a real escalation of the stack (P3: chat only; P1: chat, e-mail, SMS, call to the backup)',
  options: {
    severity: { type: 'string', valueName: 'P3|P1', required: true, description: 'how far the test climbs: P3 level 1, P1 levels 1-4' },
    'dry-run': { type: 'boolean', description: 'print the StartExecution call and send nothing (needs no credentials)' },
  },
  details: [
    'Starts one execution of the stack\'s escalation state machine (stack output escalationStateMachineArn) with',
    'an alarm event of the given severity, as EventBridge does for a real alarm, so the test exercises the same path:',
    'every level goes out at its configured minute until someone uses the acknowledge link in a message.',
    'A test climbs without an alarm to watch: acknowledge it to end it early. Messages say PAGING TEST.',
    'Example: npm run ops -- page-test --stack production --severity P3',
  ],
  async run({ options }, ctx) {
    const severity = TEST_SEVERITIES.find((candidate) => candidate === options.severity.toUpperCase());
    if (!severity) throw new UsageError(`--severity must be ${TEST_SEVERITIES.join(' or ')}, not "${options.severity}"`);
    const outputs = requireOutputs(await loadOutputs(options.stack, options.outputs, ctx), ['region', 'escalationStateMachineArn']);
    const startedAt = ctx.clock.now();
    const stack = stackShortName(options.stack);
    const who = ctx.env['USER'] ?? 'an operator';
    const input = {
      source: PAGE_TEST_SOURCE,
      'detail-type': 'DMS Paging Test',
      time: startedAt.toISOString(),
      resources: [],
      detail: {
        alarmName: `dms-${stack}-page-test`,
        state: { value: 'ALARM', reason: `Paging test started by ${who} with npm run ops -- page-test at ${startedAt.toISOString()}` },
        configuration: { description: `${severity}: Paging test (runbooks/operations.md, monthly paging test)` },
      },
    };
    const command = {
      stateMachineArn: outputs.escalationStateMachineArn,
      name: `page-test-${severity.toLowerCase()}-${compactMinute(startedAt)}`,
      input: JSON.stringify(input),
    };
    const levels = LEVELS.filter((level) => level.level <= HIGHEST_LEVEL[severity]).map((level) => `${level.level} ${level.channel} (${level.recipient})`).join(', ');
    if (options['dry-run']) {
      ctx.io.out(`dry run: would call StartExecution in ${outputs.region}:`);
      ctx.io.out(JSON.stringify({ ...command, input }, null, 2));
      ctx.io.out(`levels it would climb: ${levels}`);
      return 0;
    }
    const started = await ctx.aws(outputs.region).sfn().send(new StartExecutionCommand(command));
    printSummary(ctx, `page-test: ${options.stack}`, [
      ['severity', severity],
      ['execution', started.executionArn ?? command.name],
      ['levels', levels],
      ['expect', 'each message says PAGING TEST and carries an acknowledge link; acknowledge to stop the climb'],
      ['logs', `escalation_started, escalation_step, escalation_ended in /aws/lambda/dms-${stack}-escalation-step; escalation_acknowledged in /aws/lambda/dms-${stack}-escalation-ack`],
    ]);
    return 0;
  },
});
