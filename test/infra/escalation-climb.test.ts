// The escalation climb, run: the state machine definition the stack deploys, executed by a local
// Amazon States Language interpreter (aws-local-stepfunctions), with the real Lambda handler code
// behind every task and the real acknowledge handler behind the link; only AWS's control plane is
// mocked (aws-sdk-client-mock). Time is virtual: each Wait state is run as a task that moves a clock
// forward by its `Seconds`, so "e-mail at 5 min" is read off the definition, never assumed. The
// expectations are the issue's words: level 1 chat at once, e-mail after 5 min, SMS after 10, a
// call to the backup after 15; P0/P1 the full path, P2 levels 1-2, P3 level 1; an acknowledgement
// at minute 7 means no SMS; OK at minute 3 means no e-mail.
import { CloudWatchClient, DescribeAlarmsCommand, ListTagsForResourceCommand } from '@aws-sdk/client-cloudwatch';
import { ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { PinpointSMSVoiceV2Client, SendTextMessageCommand, SendVoiceMessageCommand } from '@aws-sdk/client-pinpoint-sms-voice-v2';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import aslValidator from 'asl-validator';
import { mockClient } from 'aws-sdk-client-mock';
import { StateMachine } from 'aws-local-stepfunctions';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { escalationDefinition } from '../../infra/monitoring/escalation/definition.js';
import { createAckHandler, createResolvedHandler, createStepHandler, type AlarmEvent } from '../../infra/monitoring/escalation/handler.js';
import { DEFAULT_LEVEL_DELAYS, type LevelDelays } from '../../infra/monitoring/escalation/levels.js';

// ---------------------------------------------------------------------------------------------
// The issue, verbatim as data

/** Minute each channel goes out, and to whom. */
const LADDER = [
  { minute: 0, channel: 'chat', to: 'chat topic' },
  { minute: 5, channel: 'email', to: 'e-mail topic' },
  { minute: 10, channel: 'sms', to: 'primary phone' },
  { minute: 15, channel: 'voice', to: 'backup phone' },
] as const;
const CLIMBS_TO = { P0: 4, P1: 4, P2: 2, P3: 1 } as const;
type Severity = keyof typeof CLIMBS_TO;

const REGION = 'us-east-2';
const ACCOUNT = '123456789012';
const STEP_FUNCTION_ARN = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:dms-production-escalation-step`;
const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:dms-production-escalation`;
const CHAT_TOPIC_ARN = `arn:aws:sns:${REGION}:${ACCOUNT}:dms-production-chat`;
const EMAIL_TOPIC_ARN = `arn:aws:sns:${REGION}:${ACCOUNT}:dms-production-page-email`;
const CONTACTS_SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dms-production/escalation-contacts-AbCdEf`;
const ACK_KEY_SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dms-production/escalation-ack-key-AbCdEf`;
const PRIMARY_PHONE = '+15550100001';
const BACKUP_PHONE = '+15550100002';
const ACK_URL = 'https://ack-id.lambda-url.us-east-2.on.aws/';
const ENV = {
  STACK: 'production',
  CHAT_TOPIC_ARN,
  EMAIL_TOPIC_ARN,
  ORIGINATION_IDENTITY: `arn:aws:sms-voice:${REGION}:${ACCOUNT}:phone-number/phone-0123456789abcdef0123456789abcdef`,
  ACK_TABLE_NAME: 'dms-production-escalation-acks',
  ACK_KEY_SECRET_ARN,
  CONTACTS_SECRET_ARN,
  ACK_URL,
  STATE_MACHINE_ARN,
};

function alarmEvent(severity: Severity, description = `${severity}: 5xx rate above 5%. Runbook: https://example.test/runbooks/errors-and-rollback.md#5xx-error-rate`): AlarmEvent {
  return {
    source: 'aws.cloudwatch',
    resources: [`arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:dms-production-alb-5xx-rate`],
    detail: {
      alarmName: 'dms-production-alb-5xx-rate',
      state: { value: 'ALARM', reason: 'Threshold Crossed: 5 datapoints were greater than the threshold (5.0).' },
      configuration: { description },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A virtual world: a clock, the alarm's state, the acknowledgement table, what was sent

interface Sent {
  minute: number;
  channel: string;
  to: string;
  text: string;
}

interface Scenario {
  severity: Severity;
  /** Minute the alarm returns to OK. */
  okAt?: number;
  /** The OK state-change event never reaches the engine (only the checks before each level see OK). */
  okEventLost?: boolean;
  /** Minute someone acknowledges, with the link of the last message sent before then. */
  ackAt?: number;
  /** Whether StopExecution works (false: it fails, and the acknowledgement record alone must stop the climb). */
  stopWorks?: boolean;
  delays?: LevelDelays;
  /** The alarm's description, when it is not the usual `P<n>: …`. */
  description?: string;
  /** The alarm's tags cannot be read (ListTagsForResource fails). */
  tagsFail?: boolean;
  /** The alarm's `Severity` tag. */
  tagSeverity?: Severity;
  /** This channel's sends fail every time. */
  failing?: 'email';
}

interface Outcome {
  sent: Sent[];
  logs: Record<string, unknown>[];
  /** How the execution ended: its last state, or `stopped` by StopExecution. */
  ended: string;
}

const START = Date.parse('2026-03-02T03:00:00Z');

async function climb(scenario: Scenario): Promise<Outcome> {
  const delays = scenario.delays ?? DEFAULT_LEVEL_DELAYS;
  const definition = escalationDefinition({ stepFunctionArn: STEP_FUNCTION_ARN, delays });
  let minute = 0;
  const now = () => new Date(START + minute * 60_000);
  const sent: Sent[] = [];
  const logs: Record<string, unknown>[] = [];
  const acks = new Map<string, Record<string, AttributeValue>>();
  const key = randomBytes(32).toString('base64url');
  const deps = { env: ENV, now, fetch: (async () => new Response('{}', { status: 202 })) as typeof fetch, write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) };

  const sns = mockClient(SNSClient);
  const smsVoice = mockClient(PinpointSMSVoiceV2Client);
  const cloudwatch = mockClient(CloudWatchClient);
  const dynamodb = mockClient(DynamoDBClient);
  const secrets = mockClient(SecretsManagerClient);
  const sfn = mockClient(SFNClient);
  try {
    sns.on(PublishCommand).callsFake((input: { TopicArn: string; Message: string }) => {
      const chat = input.TopicArn === CHAT_TOPIC_ARN;
      if (!chat && scenario.failing === 'email') throw new Error('KMS.KMSAccessDeniedException');
      sent.push({ minute, channel: chat ? 'chat' : 'email', to: chat ? 'chat topic' : 'e-mail topic', text: input.Message });
      return { MessageId: `m-${sent.length}` };
    });
    smsVoice.on(SendTextMessageCommand).callsFake((input: { DestinationPhoneNumber: string; MessageBody: string }) => {
      sent.push({ minute, channel: 'sms', to: input.DestinationPhoneNumber === PRIMARY_PHONE ? 'primary phone' : 'backup phone', text: input.MessageBody });
      return { MessageId: `s-${sent.length}` };
    });
    smsVoice.on(SendVoiceMessageCommand).callsFake((input: { DestinationPhoneNumber: string; MessageBody: string }) => {
      sent.push({ minute, channel: 'voice', to: input.DestinationPhoneNumber === BACKUP_PHONE ? 'backup phone' : 'primary phone', text: input.MessageBody });
      return { MessageId: `v-${sent.length}` };
    });
    cloudwatch.on(DescribeAlarmsCommand).callsFake(() => ({
      MetricAlarms: [{ AlarmName: 'dms-production-alb-5xx-rate', StateValue: scenario.okAt !== undefined && minute >= scenario.okAt ? 'OK' : 'ALARM' }],
    }));
    if (scenario.tagsFail) cloudwatch.on(ListTagsForResourceCommand).rejects(new Error('AccessDenied'));
    else cloudwatch.on(ListTagsForResourceCommand).resolves({ Tags: scenario.tagSeverity ? [{ Key: 'Severity', Value: scenario.tagSeverity }] : [] });
    dynamodb.on(GetItemCommand).callsFake((input: { Key: { execution: { S: string } } }) => ({ Item: acks.get(input.Key.execution.S) }));
    dynamodb.on(PutItemCommand).callsFake((input: { Item: Record<string, AttributeValue> & { execution: { S: string } } }) => {
      if (acks.has(input.Item.execution.S)) throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
      acks.set(input.Item.execution.S, input.Item);
      return {};
    });
    secrets.on(GetSecretValueCommand, { SecretId: CONTACTS_SECRET_ARN }).resolves({
      SecretString: JSON.stringify({
        primaryOnCall: { name: 'Primary Placeholder', phone: PRIMARY_PHONE },
        backupOnCall: { name: 'Backup Placeholder', phone: BACKUP_PHONE },
      }),
    });
    secrets.on(GetSecretValueCommand, { SecretId: ACK_KEY_SECRET_ARN }).resolves({ SecretString: key });

    const step = createStepHandler(deps);
    const acknowledge = createAckHandler(deps);
    const resolved = createResolvedHandler(deps);
    const executionArn = `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:exec-1`;
    const event = alarmEvent(scenario.severity, scenario.description);
    sfn.on(ListExecutionsCommand).callsFake(() => ({ executions: stopped ? [] : [{ executionArn, stateMachineArn: STATE_MACHINE_ARN, name: 'exec-1' }] }));
    sfn.on(DescribeExecutionCommand, { executionArn }).resolves({ executionArn, input: JSON.stringify(event) });
    let stopped = false;
    let abort: () => void = () => undefined;
    sfn.on(StopExecutionCommand).callsFake(() => {
      if (scenario.stopWorks === false) throw new Error('throttled');
      stopped = true;
      abort();
      return {};
    });

    /** Things that happen at a minute: the OK state change (also read by DescribeAlarms); the ack is a click. */
    const happenings = [
      ...(scenario.okAt !== undefined && !scenario.okEventLost
        ? [{
            at: scenario.okAt,
            run: async () => {
              await resolved({ ...event, detail: { ...event.detail, state: { value: 'OK', reason: 'Threshold Crossed: back below' } } });
            },
          }]
        : []),
      ...(scenario.ackAt !== undefined
        ? [{
            at: scenario.ackAt,
            run: async () => {
              const link = [...sent].reverse().map((message) => /Ack(?:nowledge)?[^:]*: (https:\S+)/.exec(message.text)?.[1]).find(Boolean);
              assert.ok(link, 'a message with an acknowledge link went out before the acknowledgement');
              const token = new URL(link).searchParams.get('t');
              const response = await acknowledge({ requestContext: { http: { method: 'POST' }, requestId: 'r1' }, body: `t=${token}` });
              assert.equal(response.statusCode, 200, response.body);
            },
          }]
        : []),
    ];
    const advance = async (seconds: number) => {
      const target = minute + seconds / 60;
      for (const happening of happenings.filter((candidate) => candidate.at > minute && candidate.at <= target)) {
        minute = happening.at;
        await happening.run();
        if (stopped) return;
      }
      minute = target;
    };

    // Each Wait state becomes a task that advances the virtual clock by its Seconds, input unchanged.
    const states = definition['States'] as Record<string, Record<string, unknown>>;
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    const noRetryPause: Record<string, number> = {};
    for (const [name, state] of Object.entries(states)) {
      if (state['Type'] === 'Wait') {
        const seconds = state['Seconds'] as number;
        states[name] = { Type: 'Task', Resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:virtual-clock`, Next: state['Next'] };
        handlers[name] = async (input) => {
          await advance(seconds);
          return input;
        };
      } else if (state['Type'] === 'Task') {
        handlers[name] = (input) => step(input as Parameters<typeof step>[0]) as Promise<unknown>;
        noRetryPause[name] = 0;
      }
    }
    const machine = new StateMachine(definition as unknown as ConstructorParameters<typeof StateMachine>[0]);
    const execution = machine.run(event as never, {
      overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides: noRetryPause },
      noThrowOnAbort: true,
      context: { Execution: { Id: executionArn, Name: 'exec-1' } },
    });
    abort = () => execution.abort();
    const visited: string[] = [];
    const collecting = (async () => {
      for await (const event of execution.eventLogs) if (event.type === 'StateEntered') visited.push((event as unknown as { state: { name: string } }).state.name);
    })();
    await execution.result;
    await collecting;
    return { sent, logs, ended: stopped ? 'stopped' : (visited.at(-1) ?? 'nothing') };
  } finally {
    for (const mock of [sns, smsVoice, cloudwatch, dynamodb, secrets, sfn]) mock.restore();
  }
}

const channelsAt = (outcome: Outcome) => outcome.sent.map(({ minute, channel, to }) => ({ minute, channel, to }));
/** The ladder up to `levels`; the call to the backup comes with an SMS carrying the acknowledge link. */
const expectedLadder = (levels: number): { minute: number; channel: string; to: string }[] =>
  LADDER.slice(0, levels).flatMap(({ minute, channel, to }): { minute: number; channel: string; to: string }[] =>
    channel === 'voice' ? [{ minute, channel, to }, { minute, channel: 'sms', to: 'backup phone' }] : [{ minute, channel, to }],
  );

describe('escalation: the state machine definition is valid Amazon States Language', () => {
  it('passes asl-validator with JSONPath and ARN checks on', () => {
    const definition = escalationDefinition({ stepFunctionArn: STEP_FUNCTION_ARN, delays: DEFAULT_LEVEL_DELAYS });
    const result = aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });
    assert.ok(result.isValid, result.errorsText('\n'));
  });

  it('the validator refuses a definition with a transition to a missing state (the check can fail)', () => {
    const definition = escalationDefinition({ stepFunctionArn: STEP_FUNCTION_ARN, delays: DEFAULT_LEVEL_DELAYS });
    const states = definition['States'] as Record<string, Record<string, unknown>>;
    states['WaitForLevel3']!['Next'] = 'NoSuchState';
    assert.equal(aslValidator(structuredClone(definition)).isValid, false);
  });
});

describe('escalation: an alarm climbs as far as its severity allows', function () {
  this.timeout(20_000);

  for (const severity of ['P0', 'P1', 'P2', 'P3'] as const) {
    it(`${severity}: ${LADDER.slice(0, CLIMBS_TO[severity]).map((step) => `${step.channel} at ${step.minute}`).join(', ')}, then ends`, async () => {
      const outcome = await climb({ severity });
      assert.deepEqual(channelsAt(outcome), expectedLadder(CLIMBS_TO[severity]));
      assert.equal(outcome.ended, 'End_top_level_reached');
      const ended = outcome.logs.filter((line) => line['event'] === 'escalation_ended');
      assert.deepEqual(ended.map((line) => [line['reason'], line['severity'], line['alarm']]), [['top_level_reached', severity, 'dms-production-alb-5xx-rate']]);
    });
  }

  it('each step is logged as JSON with the alarm, severity and level', async () => {
    const outcome = await climb({ severity: 'P1' });
    const steps = outcome.logs.filter((line) => line['event'] === 'escalation_step');
    assert.deepEqual(steps.map((line) => [line['level'], line['channel'], line['alarm'], line['severity']]), [
      [1, 'chat', 'dms-production-alb-5xx-rate', 'P1'],
      [2, 'email', 'dms-production-alb-5xx-rate', 'P1'],
      [3, 'sms', 'dms-production-alb-5xx-rate', 'P1'],
      [4, 'voice', 'dms-production-alb-5xx-rate', 'P1'],
    ]);
    const text = JSON.stringify(outcome.logs);
    for (const secret of [PRIMARY_PHONE, BACKUP_PHONE, 'Placeholder', '?t=']) assert.ok(!text.includes(secret), `a log line holds ${secret}`);
  });

  it('the delays are the stack config’s: 2/4/6 minutes move every level', async () => {
    const outcome = await climb({ severity: 'P1', delays: { email: 2, sms: 4, voice: 6 } });
    assert.deepEqual(outcome.sent.map(({ minute, channel }) => [minute, channel]), [[0, 'chat'], [2, 'email'], [4, 'sms'], [6, 'voice'], [6, 'sms']]);
  });
});

describe('escalation: a failure never silences the climb', function () {
  this.timeout(20_000);

  it('an e-mail level that keeps failing is logged and the SMS still goes out at 10, the call at 15', async () => {
    const outcome = await climb({ severity: 'P1', failing: 'email' });
    assert.deepEqual(channelsAt(outcome), expectedLadder(4).filter((step) => step.channel !== 'email'));
    const failures = outcome.logs.filter((line) => line['event'] === 'escalation_step_failed');
    assert.ok(failures.length >= 1 && failures.every((line) => line['level'] === 2 && line['channel'] === 'email'));
    assert.equal(outcome.ended, 'End_top_level_reached');
  });

  it('an alarm whose severity cannot be read (no P<n> in the description, tags unreadable) climbs the whole way', async () => {
    const outcome = await climb({ severity: 'P3', description: 'Something nobody classified', tagsFail: true });
    assert.deepEqual(channelsAt(outcome), expectedLadder(4));
  });

  it('an alarm without P<n> in its description climbs as its Severity tag says', async () => {
    const outcome = await climb({ severity: 'P3', description: 'Something nobody classified', tagSeverity: 'P2' });
    assert.deepEqual(channelsAt(outcome), expectedLadder(2));
    assert.equal(outcome.logs.find((line) => line['event'] === 'escalation_started')?.['severitySource'], 'tag');
  });

  it('an alarm with neither climbs the whole way', async () => {
    const outcome = await climb({ severity: 'P3', description: 'Something nobody classified' });
    assert.deepEqual(channelsAt(outcome), expectedLadder(4));
    assert.equal(outcome.logs.find((line) => line['event'] === 'escalation_started')?.['severitySource'], 'unknown');
  });
});

describe('escalation: acknowledging stops the climb', function () {
  this.timeout(20_000);

  it('P1 acknowledged at minute 7 (from the e-mail’s link): chat and e-mail only, no SMS, no call; the execution is stopped', async () => {
    const outcome = await climb({ severity: 'P1', ackAt: 7 });
    assert.deepEqual(channelsAt(outcome), expectedLadder(2));
    assert.equal(outcome.ended, 'stopped');
    const ack = outcome.logs.find((line) => line['event'] === 'escalation_acknowledged');
    assert.deepEqual([ack?.['level'], ack?.['acknowledgedBy'], ack?.['execution']], [2, 'primaryOnCall', 'exec-1']);
    assert.ok(outcome.logs.some((line) => line['event'] === 'escalation_ended' && line['reason'] === 'acknowledged'));
  });

  it('if StopExecution fails, the recorded acknowledgement still ends the climb at the next level, sending nothing', async () => {
    const outcome = await climb({ severity: 'P1', ackAt: 7, stopWorks: false });
    assert.deepEqual(channelsAt(outcome), expectedLadder(2));
    assert.equal(outcome.ended, 'End_acknowledged');
  });
});

describe('escalation: the alarm returning to OK ends it', function () {
  this.timeout(20_000);

  it('P1 back to OK at minute 3: chat only, no e-mail; its escalation is stopped at minute 3', async () => {
    const outcome = await climb({ severity: 'P1', okAt: 3 });
    assert.deepEqual(channelsAt(outcome), expectedLadder(1));
    assert.equal(outcome.ended, 'stopped');
    const ended = outcome.logs.find((line) => line['event'] === 'escalation_ended');
    assert.deepEqual([ended?.['reason'], ended?.['alarm'], ended?.['execution']], ['alarm_ok', 'dms-production-alb-5xx-rate', 'exec-1']);
  });

  it('P1 back to OK at minute 12: chat, e-mail and SMS, no call', async () => {
    const outcome = await climb({ severity: 'P1', okAt: 12 });
    assert.deepEqual(channelsAt(outcome), expectedLadder(3));
    assert.equal(outcome.ended, 'stopped');
  });

  it('if the OK event is lost, the check before the next level ends it there, sending nothing (OK at 3: no e-mail)', async () => {
    const outcome = await climb({ severity: 'P1', okAt: 3, okEventLost: true });
    assert.deepEqual(channelsAt(outcome), expectedLadder(1));
    assert.equal(outcome.ended, 'End_alarm_ok');
    assert.ok(outcome.logs.some((line) => line['event'] === 'escalation_ended' && line['reason'] === 'alarm_ok'));
  });
});
