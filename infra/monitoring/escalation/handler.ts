/**
 * The escalation engine's two Lambda functions, bundled from this file (see `bundle.ts`):
 *
 * - `step`: the state machine's task. `classify` reads the alarm's severity (description, else its
 *   `Severity` tag, else the full climb); `notify` checks the climb should go on (not acknowledged,
 *   alarm still in ALARM) and sends one level; `end` logs how it ended.
 * - `acknowledge`: the function URL behind every message's link. GET shows a confirmation page
 *   (link scanners and chat unfurlers fetch URLs, and must not acknowledge); POST verifies the
 *   signed token, records the acknowledgement once per execution (a conditional write: a reused
 *   link is refused) and stops the execution.
 *
 * Every decision is one JSON line on stdout (`event`: see ESCALATION_LOG_EVENTS). Phone numbers,
 * names, tokens and the webhook's URL and key never reach a line.
 */
import { CloudWatchClient, DescribeAlarmsCommand, ListTagsForResourceCommand } from '@aws-sdk/client-cloudwatch';
import { ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { PinpointSMSVoiceV2Client, SendTextMessageCommand, SendVoiceMessageCommand } from '@aws-sdk/client-pinpoint-sms-voice-v2';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ExecutionDoesNotExist, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { ACK_LINK_TTL_SECONDS, AckTokenError, signAckToken, verifyAckToken } from './ack-token.js';
import type { StepOutcome } from './definition.js';
import {
  ESCALATION_LOG_EVENTS,
  HIGHEST_LEVEL,
  LEVELS,
  PAGE_SEVERITIES,
  PAGE_TEST_SOURCE,
  UNKNOWN_SEVERITY_CLIMBS_AS,
  severityOfDescription,
  type EndReason,
  type Level,
  type PageSeverity,
  type Recipient,
} from './levels.js';

/** Environment the stack gives the functions. */
export interface EscalationEnv {
  STACK: string;
  CHAT_TOPIC_ARN: string;
  EMAIL_TOPIC_ARN: string;
  ORIGINATION_IDENTITY: string;
  ACK_TABLE_NAME: string;
  ACK_KEY_SECRET_ARN: string;
  CONTACTS_SECRET_ARN: string;
  /** The acknowledge function's URL (step function only). */
  ACK_URL?: string;
  /** The state machine the acknowledge function stops executions of. */
  STATE_MACHINE_ARN?: string;
}

/** What the handlers reach outside their code; tests replace the clock, fetch and the output. */
export interface EscalationDeps {
  env: Readonly<Record<string, string | undefined>>;
  now(): Date;
  fetch: typeof fetch;
  /** Writes one log line. */
  write(line: string): void;
}

/** The contacts secret (`dms-<stack>/escalation-contacts`), written by the stack from its config. */
export interface EscalationContacts {
  primaryOnCall: { name: string; phone: string };
  backupOnCall: { name: string; phone: string };
  /** PagerDuty Events API v2 (or a service accepting its shape), sent at level 1. */
  webhook?: { url: string; routingKey: string };
}

/** What `classify` derives from the alarm event; every later task gets it as `page`. */
export interface Page {
  alarmName: string;
  alarmArn?: string;
  severity: PageSeverity;
  /** Where the severity came from. */
  severitySource: 'description' | 'tag' | 'unknown';
  highestLevel: Level;
  /** CloudWatch's reason for the state change (no PHI: metric values and thresholds). */
  reason: string;
  runbookUrl?: string;
  /** Started by `npm run ops -- page-test`: climbs without an alarm to watch. */
  test: boolean;
}

export type StepInput =
  | { action: 'classify'; execution: string; event: AlarmEvent }
  | { action: 'notify'; execution: string; level: Level; page: Page }
  | { action: 'end'; execution: string; reason: EndReason; page: Page; step?: { level?: number; outcome?: string } };

export interface StepResult {
  outcome: StepOutcome;
  level: Level;
  channels?: string[];
}

/** The `CloudWatch Alarm State Change` event EventBridge delivers, or the page test's imitation of it. */
export interface AlarmEvent {
  source?: string;
  resources?: string[];
  detail?: {
    alarmName?: string;
    state?: { value?: string; reason?: string };
    configuration?: { description?: string };
  };
}

const REQUIRED_ENV = ['STACK', 'CHAT_TOPIC_ARN', 'EMAIL_TOPIC_ARN', 'ORIGINATION_IDENTITY', 'ACK_TABLE_NAME', 'ACK_KEY_SECRET_ARN', 'CONTACTS_SECRET_ARN'] as const;

function readEnv(env: EscalationDeps['env'], extra: readonly (keyof EscalationEnv)[]): EscalationEnv {
  const missing = [...REQUIRED_ENV, ...extra].filter((name) => !env[name]);
  if (missing.length > 0) throw new Error(`escalation function misconfigured: ${missing.join(', ')} not set`);
  return env as unknown as EscalationEnv;
}

// One client each per container; aws-sdk-client-mock replaces `send` on the class for the tests.
const sns = new SNSClient({});
const smsVoice = new PinpointSMSVoiceV2Client({});
const cloudwatch = new CloudWatchClient({});
const dynamodb = new DynamoDBClient({});
const secrets = new SecretsManagerClient({});
const sfn = new SFNClient({});

/** Secrets are cached for a few minutes: a config change reaches warm containers soon after `pulumi up`. */
const SECRET_CACHE_MS = 5 * 60_000;

function secretReader<T>(deps: EscalationDeps, arn: () => string, parse: (text: string) => T): () => Promise<T> {
  let cached: { value: T; at: number } | undefined;
  return async () => {
    const now = deps.now().getTime();
    if (cached && now - cached.at < SECRET_CACHE_MS) return cached.value;
    const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: arn() }));
    if (!SecretString) throw new Error('escalation secret has no value');
    cached = { value: parse(SecretString), at: now };
    return cached.value;
  };
}

function logger(deps: EscalationDeps, env: () => Partial<EscalationEnv>) {
  return (event: string, fields: Record<string, unknown>) =>
    deps.write(JSON.stringify({ timestamp: deps.now().toISOString(), event, stack: env().STACK, ...fields }));
}

const executionName = (executionArn: string) => executionArn.split(':').at(-1) ?? executionArn;

function pageFields(page: Page, execution: string): Record<string, unknown> {
  return { alarm: page.alarmName, severity: page.severity, test: page.test, execution: executionName(execution) };
}

const RUNBOOK_LINK = /Runbook: (https:\/\/\S+)/;

/** The `step` function: classify, notify one level, end. */
export function createStepHandler(deps: EscalationDeps): (input: StepInput) => Promise<Page | StepResult | null> {
  let env: EscalationEnv | undefined;
  const config = () => (env ??= readEnv(deps.env, ['ACK_URL']));
  const log = logger(deps, () => deps.env as Partial<EscalationEnv>);
  const contacts = secretReader(deps, () => config().CONTACTS_SECRET_ARN, (text) => JSON.parse(text) as EscalationContacts);
  const ackKey = secretReader(deps, () => config().ACK_KEY_SECRET_ARN, (text) => text.trim());

  async function classify(event: AlarmEvent, execution: string): Promise<Page> {
    const detail = event.detail ?? {};
    const alarmName = detail.alarmName ?? 'unknown-alarm';
    const alarmArn = event.resources?.[0];
    const description = detail.configuration?.description;
    let severity = severityOfDescription(description);
    let severitySource: Page['severitySource'] = 'description';
    if (!severity && alarmArn) {
      const { Tags = [] } = await cloudwatch.send(new ListTagsForResourceCommand({ ResourceARN: alarmArn }));
      const tagged = Tags.find((tag) => tag.Key === 'Severity')?.Value;
      severity = PAGE_SEVERITIES.find((candidate) => candidate === tagged);
      severitySource = 'tag';
    }
    if (!severity) {
      severity = UNKNOWN_SEVERITY_CLIMBS_AS;
      severitySource = 'unknown';
    }
    const runbookUrl = RUNBOOK_LINK.exec(description ?? '')?.[1];
    const page: Page = {
      alarmName,
      ...(alarmArn ? { alarmArn } : {}),
      severity,
      severitySource,
      highestLevel: HIGHEST_LEVEL[severity],
      reason: (detail.state?.reason ?? '').slice(0, 300),
      ...(runbookUrl ? { runbookUrl } : {}),
      test: event.source === PAGE_TEST_SOURCE,
    };
    log(ESCALATION_LOG_EVENTS.started, { ...pageFields(page, execution), severitySource, highestLevel: page.highestLevel });
    return page;
  }

  async function acknowledgement(execution: string): Promise<string | undefined> {
    const { Item } = await dynamodb.send(
      new GetItemCommand({ TableName: config().ACK_TABLE_NAME, Key: { execution: { S: executionName(execution) } }, ConsistentRead: true }),
    );
    return Item ? (Item['acknowledgedBy']?.S ?? 'unknown') : undefined;
  }

  async function alarmStillFiring(alarmName: string): Promise<boolean> {
    const { MetricAlarms = [], CompositeAlarms = [] } = await cloudwatch.send(
      new DescribeAlarmsCommand({ AlarmNames: [alarmName], AlarmTypes: ['MetricAlarm', 'CompositeAlarm'] }),
    );
    return [...MetricAlarms, ...CompositeAlarms].some((alarm) => alarm.StateValue === 'ALARM');
  }

  async function link(execution: string, level: Level, recipient: Recipient): Promise<string> {
    const expiresAt = Math.floor(deps.now().getTime() / 1000) + ACK_LINK_TTL_SECONDS;
    const token = signAckToken({ execution: executionName(execution), level, recipient, expiresAt }, await ackKey());
    return `${config().ACK_URL!.replace(/\/+$/, '')}/?t=${token}`;
  }

  const title = (page: Page) => `[DMS ${config().STACK}] ${page.test ? 'PAGING TEST ' : ''}${page.severity} ${page.alarmName} is in ALARM`;

  async function sendChat(page: Page, ackLink: string): Promise<void> {
    const lines = [page.reason, page.runbookUrl ? `Runbook: ${page.runbookUrl}` : undefined, `Acknowledge (stops the escalation): ${ackLink}`].filter(Boolean);
    // Amazon Q Developer in chat applications renders this shape as a custom notification:
    // https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html
    const chat = {
      version: '1.0',
      source: 'custom',
      content: { textType: 'client-markdown', title: title(page), description: lines.join('\n') },
    };
    await sns.send(
      new PublishCommand({
        TopicArn: config().CHAT_TOPIC_ARN,
        MessageStructure: 'json',
        // Without Slack the chat topic e-mails `alarmEmail`: plain text there.
        Message: JSON.stringify({ default: JSON.stringify(chat), email: `${title(page)}\n\n${lines.join('\n')}\n` }),
        Subject: title(page).slice(0, 100),
      }),
    );
  }

  async function sendWebhook(page: Page, webhook: NonNullable<EscalationContacts['webhook']>, execution: string): Promise<void> {
    // PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/);
    // the alarm name is the dedup key, so a re-fired alarm joins its open incident.
    const response = await deps.fetch(webhook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        routing_key: webhook.routingKey,
        event_action: 'trigger',
        dedup_key: page.alarmName,
        payload: {
          summary: title(page),
          source: `dms-${config().STACK}`,
          severity: page.severity === 'P0' ? 'critical' : page.severity === 'P1' ? 'error' : page.severity === 'P2' ? 'warning' : 'info',
          custom_details: { reason: page.reason, runbook: page.runbookUrl, execution: executionName(execution) },
        },
      }),
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) throw new Error(`webhook answered ${response.status}`);
  }

  async function sendText(phone: string, body: string): Promise<void> {
    await smsVoice.send(
      new SendTextMessageCommand({
        DestinationPhoneNumber: phone,
        OriginationIdentity: config().ORIGINATION_IDENTITY,
        MessageBody: body,
        MessageType: 'TRANSACTIONAL',
      }),
    );
  }

  async function notify(level: Level, page: Page, execution: string): Promise<StepResult> {
    const fields = { ...pageFields(page, execution), level };
    const acknowledgedBy = await acknowledgement(execution);
    if (acknowledgedBy) return { outcome: 'acknowledged', level };
    if (level > 1 && !page.test && !(await alarmStillFiring(page.alarmName))) return { outcome: 'alarm_ok', level };

    const { channel, recipient } = LEVELS[level - 1]!;
    const people = await contacts();
    const ackLink = await link(execution, level, recipient);
    const sent: string[] = [];
    switch (channel) {
      case 'chat': {
        await sendChat(page, ackLink);
        sent.push('chat');
        if (people.webhook) {
          try {
            await sendWebhook(page, people.webhook, execution);
            sent.push('webhook');
          } catch (error) {
            // The chat went out; the paging service is a copy, so its failure is logged, not retried.
            log(ESCALATION_LOG_EVENTS.stepFailed, { ...fields, channel: 'webhook', error: error instanceof Error ? error.message : String(error) });
          }
        }
        break;
      }
      case 'email':
        await sns.send(
          new PublishCommand({
            TopicArn: config().EMAIL_TOPIC_ARN,
            Subject: title(page).slice(0, 100),
            Message: [
              `${title(page)}: nobody acknowledged it in chat (level 2 of ${page.highestLevel}).`,
              '',
              page.reason,
              page.runbookUrl ? `Runbook: ${page.runbookUrl}` : '',
              '',
              `Acknowledge to stop the escalation: ${ackLink}`,
            ].join('\n'),
          }),
        );
        sent.push('email');
        break;
      case 'sms':
        await sendText(people.primaryOnCall.phone, `${title(page)}. Unacknowledged: level 3 of ${page.highestLevel}. Ack: ${ackLink}`);
        sent.push('sms');
        break;
      case 'voice': {
        const spoken = `This is the D M S paging system for ${config().STACK}. ${page.test ? 'This is a paging test. ' : ''}` +
          `A ${page.severity.split('').join(' ')} alarm, ${page.alarmName.replaceAll('-', ' ')}, has not been acknowledged. ` +
          'You are the backup engineer. The acknowledge link is in the text message sent to you now.';
        await smsVoice.send(
          new SendVoiceMessageCommand({
            DestinationPhoneNumber: people.backupOnCall.phone,
            OriginationIdentity: config().ORIGINATION_IDENTITY,
            MessageBody: `${spoken} ${spoken}`,
            MessageBodyTextType: 'TEXT',
          }),
        );
        sent.push('voice');
        await sendText(people.backupOnCall.phone, `${title(page)}. You are the backup: nobody acknowledged. Ack: ${ackLink}`);
        sent.push('sms');
        break;
      }
    }
    log(ESCALATION_LOG_EVENTS.step, { ...fields, channel, recipient, sent });
    return { outcome: 'sent', level, channels: sent };
  }

  return async (input) => {
    switch (input.action) {
      case 'classify':
        return classify(input.event, input.execution);
      case 'notify':
        try {
          return await notify(input.level, input.page, input.execution);
        } catch (error) {
          log(ESCALATION_LOG_EVENTS.stepFailed, {
            ...pageFields(input.page, input.execution),
            level: input.level,
            channel: LEVELS[input.level - 1]?.channel,
            error: error instanceof Error ? error.name : 'Error',
          });
          throw error;
        }
      case 'end':
        log(ESCALATION_LOG_EVENTS.ended, { ...pageFields(input.page, input.execution), reason: input.reason, lastLevel: input.step?.level ?? 1 });
        return null;
    }
  };
}

/** Lambda function URL request (payload format 2.0), the parts read here. */
export interface FunctionUrlEvent {
  requestContext?: { http?: { method?: string }; requestId?: string };
  queryStringParameters?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
}

export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
};

const ERROR_STATUS = { malformed_token: 400, invalid_signature: 400, token_expired: 410, already_acknowledged: 409, method_not_allowed: 405, unavailable: 503 } as const;

/** The `acknowledge` function behind the function URL. */
export function createAckHandler(deps: EscalationDeps): (event: FunctionUrlEvent) => Promise<FunctionUrlResult> {
  let env: EscalationEnv | undefined;
  const config = () => (env ??= readEnv(deps.env, ['STATE_MACHINE_ARN']));
  const log = logger(deps, () => deps.env as Partial<EscalationEnv>);
  const ackKey = secretReader(deps, () => config().ACK_KEY_SECRET_ARN, (text) => text.trim());

  const error = (code: keyof typeof ERROR_STATUS, message: string, requestId: string): FunctionUrlResult => ({
    statusCode: ERROR_STATUS[code],
    headers: { ...SECURITY_HEADERS, 'content-type': 'application/json' },
    body: JSON.stringify({ error: code, message, requestId }),
  });
  const page = (heading: string, body: string): FunctionUrlResult => ({
    statusCode: 200,
    headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' },
    body: `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${heading}</title></head><body style="font-family:sans-serif;max-width:32em;margin:2em auto"><h1>${heading}</h1>${body}</body></html>`,
  });

  return async (event) => {
    const requestId = event.requestContext?.requestId ?? 'unknown';
    const method = event.requestContext?.http?.method ?? 'GET';
    try {
      if (method !== 'GET' && method !== 'POST') return error('method_not_allowed', 'use the link as sent', requestId);
      const token = method === 'GET'
        ? event.queryStringParameters?.['t']
        : new URLSearchParams(event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '')).get('t') ?? undefined;
      const claims = verifyAckToken(token ?? '', await ackKey(), deps.now());
      const who = LEVELS[claims.level - 1]!.recipient;
      if (method === 'GET') {
        // Token characters are base64url only (checked above), so it is safe inside the attribute.
        return page(
          'Acknowledge this page?',
          `<p>Acknowledging stops the escalation for this alarm (level ${claims.level}, sent to ${who}). Then work the runbook.</p>` +
            `<form method="post"><input type="hidden" name="t" value="${token}"><button type="submit" style="font-size:1.5em">Acknowledge</button></form>`,
        );
      }
      try {
        await dynamodb.send(
          new PutItemCommand({
            TableName: config().ACK_TABLE_NAME,
            Item: {
              execution: { S: claims.execution },
              acknowledgedBy: { S: claims.recipient },
              level: { N: String(claims.level) },
              acknowledgedAt: { S: deps.now().toISOString() },
              // DynamoDB's TTL removes the record a day after the link stopped working.
              expiresAt: { N: String(claims.expiresAt + 86_400) },
            },
            ConditionExpression: 'attribute_not_exists(execution)',
          }),
        );
      } catch (failure) {
        if (failure instanceof ConditionalCheckFailedException) {
          log(ESCALATION_LOG_EVENTS.ackRefused, { reason: 'already_acknowledged', execution: claims.execution, level: claims.level });
          return error('already_acknowledged', 'this escalation was already acknowledged; nothing more will be sent for it', requestId);
        }
        throw failure;
      }
      const executionArn = `${config().STATE_MACHINE_ARN!.replace(':stateMachine:', ':execution:')}:${claims.execution}`;
      let stopped = true;
      try {
        await sfn.send(new StopExecutionCommand({ executionArn, error: 'Acknowledged', cause: `acknowledged by ${claims.recipient} at level ${claims.level}` }));
      } catch (failure) {
        // Already finished (top level reached, alarm OK): the acknowledgement still counts. Any
        // other failure leaves the record, which the next level reads before sending anything.
        if (!(failure instanceof ExecutionDoesNotExist)) log(ESCALATION_LOG_EVENTS.stepFailed, { execution: claims.execution, channel: 'stop-execution', error: failure instanceof Error ? failure.name : 'Error' });
        stopped = false;
      }
      log(ESCALATION_LOG_EVENTS.acknowledged, { execution: claims.execution, level: claims.level, acknowledgedBy: claims.recipient, stopped });
      if (stopped) log(ESCALATION_LOG_EVENTS.ended, { execution: claims.execution, reason: 'acknowledged' satisfies EndReason, lastLevel: claims.level });
      return page('Acknowledged', '<p>The escalation is stopped: nobody else will be paged for this alarm. Work the runbook linked in the message.</p>');
    } catch (failure) {
      if (failure instanceof AckTokenError) {
        log(ESCALATION_LOG_EVENTS.ackRefused, { reason: failure.code });
        return error(failure.code, failure.message, requestId);
      }
      log(ESCALATION_LOG_EVENTS.ackRefused, { reason: 'unavailable', error: failure instanceof Error ? failure.name : 'Error' });
      return error('unavailable', 'the acknowledgement could not be recorded; acknowledge in the chat channel and tell the backup engineer', requestId);
    }
  };
}

const lambdaDeps: EscalationDeps = {
  env: process.env,
  now: () => new Date(),
  fetch: (...args) => fetch(...args),
  write: (line) => process.stdout.write(`${line}\n`),
};

/** Lambda entry points (`index.step`, `index.acknowledge` in the bundle). */
export const step = createStepHandler(lambdaDeps);
export const acknowledge = createAckHandler(lambdaDeps);
