// `npm run ops -- page-test`: the monthly paging test starts a real escalation of the stack's state
// machine with an alarm event of the chosen severity, the same path a real alarm takes.
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import assert from 'node:assert/strict';
import { escalationDefinition } from '../../infra/monitoring/escalation/definition.js';
import { createStepHandler, type AlarmEvent } from '../../infra/monitoring/escalation/handler.js';
import { DEFAULT_LEVEL_DELAYS } from '../../infra/monitoring/escalation/levels.js';
import { outputsFile, runCli, T0 } from './support.js';

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:dms-production-escalation';

describe('ops page-test: starts a real escalation for the monthly paging test', () => {
  const sfn = mockClient(SFNClient);
  const args = () => ['page-test', '--stack', 'production', '--outputs', outputsFile({ escalationStateMachineArn: STATE_MACHINE_ARN })];
  beforeEach(() => {
    sfn.reset();
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:page-test-p1`, startDate: T0 });
  });
  after(() => sfn.restore());

  const startedInput = () => {
    const [call] = sfn.commandCalls(StartExecutionCommand);
    assert.ok(call, 'StartExecution was called');
    return call.args[0].input;
  };

  it('P1: starts the stack’s state machine with a P1 alarm event marked as a test', async () => {
    const run = await runCli([...args(), '--severity', 'P1'], { env: { USER: 'oncall' } });
    assert.equal(run.code, 0, run.stderr);
    const input = startedInput();
    assert.equal(input.stateMachineArn, STATE_MACHINE_ARN);
    assert.equal(input.name, 'page-test-p1-20250310T0915Z');
    const event = JSON.parse(input.input!) as AlarmEvent;
    assert.equal(event.source, 'dms.page-test');
    assert.equal(event.detail?.alarmName, 'dms-production-page-test');
    assert.match(event.detail?.configuration?.description ?? '', /^P1: /);
    assert.match(run.stdout, /levels\s+1 chat \(channel\), 2 email \(primaryOnCall\), 3 sms \(primaryOnCall\), 4 voice \(backupOnCall\)/);
  });

  it('the event it sends is read by the real step function as a P1 test climbing to level 4', async () => {
    await runCli([...args(), '--severity', 'P1']);
    const event = JSON.parse(startedInput().input!) as AlarmEvent;
    const step = createStepHandler({ env: {}, now: () => T0, fetch, write: () => undefined });
    const page = await step({ action: 'classify', execution: 'arn:aws:states:eu-west-1:123456789012:execution:dms-production-escalation:x', event });
    assert.deepEqual(page && 'severity' in page ? [page.severity, page.highestLevel, page.test] : page, ['P1', 4, true]);
    // The definition the stack deploys accepts this input shape: Classify is its first state.
    assert.equal(escalationDefinition({ stepFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:f', delays: DEFAULT_LEVEL_DELAYS })['StartAt'], 'Classify');
  });

  it('P3: climbs to chat only', async () => {
    const run = await runCli([...args(), '--severity', 'p3']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(JSON.parse(startedInput().input!).detail.configuration.description, /^P3: /);
    assert.match(run.stdout, /levels\s+1 chat \(channel\)$/m);
  });

  it('--dry-run prints the StartExecution call and sends nothing', async () => {
    const run = await runCli([...args(), '--severity', 'P1', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(sfn.commandCalls(StartExecutionCommand).length, 0);
    assert.match(run.stdout, /would call StartExecution in eu-west-1/);
    assert.match(run.stdout, /"stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:dms-production-escalation"/);
  });

  it('refuses another severity (exit 2)', async () => {
    const run = await runCli([...args(), '--severity', 'P0']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--severity must be P3 or P1/);
    assert.equal(sfn.commandCalls(StartExecutionCommand).length, 0);
  });

  it('says which output is missing on a stack without the escalation engine', async () => {
    const run = await runCli(['page-test', '--stack', 'production', '--outputs', outputsFile({}), '--severity', 'P3']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /missing escalationStateMachineArn/);
  });
});
