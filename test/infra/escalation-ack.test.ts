// The acknowledge link (Lambda function URL): a click shows a confirmation page, the confirmation
// stops the escalation once; a forged, altered, reused or expired link is refused with the
// contract's error body, and nothing is recorded or stopped for it.
import { ConditionalCheckFailedException, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ExecutionDoesNotExist, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { ACK_LINK_TTL_SECONDS, signAckToken, verifyAckToken } from '../../infra/monitoring/escalation/ack-token.js';
import { createAckHandler, type FunctionUrlEvent } from '../../infra/monitoring/escalation/handler.js';

const KEY = randomBytes(32).toString('base64url');
const OTHER_KEY = randomBytes(32).toString('base64url');
const STATE_MACHINE_ARN = 'arn:aws:states:us-east-2:123456789012:stateMachine:dms-production-escalation';
const ENV = {
  STACK: 'production',
  CHAT_TOPIC_ARN: 'arn:aws:sns:us-east-2:123456789012:dms-production-chat',
  EMAIL_TOPIC_ARN: 'arn:aws:sns:us-east-2:123456789012:dms-production-page-email',
  ORIGINATION_IDENTITY: 'phone-0123456789abcdef0123456789abcdef',
  ACK_TABLE_NAME: 'dms-production-escalation-acks',
  ACK_KEY_SECRET_ARN: 'arn:aws:secretsmanager:us-east-2:123456789012:secret:dms-production/escalation-ack-key-AbCdEf',
  CONTACTS_SECRET_ARN: 'arn:aws:secretsmanager:us-east-2:123456789012:secret:dms-production/escalation-contacts-AbCdEf',
  STATE_MACHINE_ARN,
};
const NOW = new Date('2026-03-02T03:07:00Z');
const inOneHour = Math.floor(NOW.getTime() / 1000) + 3600;
const CLAIMS = { execution: 'exec-1', level: 2, recipient: 'primaryOnCall', expiresAt: inOneHour } as const;

const secrets = mockClient(SecretsManagerClient);
const dynamodb = mockClient(DynamoDBClient);
const sfn = mockClient(SFNClient);
let logs: Record<string, unknown>[];
let handler: ReturnType<typeof createAckHandler>;

beforeEach(() => {
  for (const mock of [secrets, dynamodb, sfn]) mock.reset();
  secrets.on(GetSecretValueCommand).resolves({ SecretString: KEY });
  const recorded = new Set<string>();
  dynamodb.on(PutItemCommand).callsFake((input: { Item: { execution: { S: string } } }) => {
    if (recorded.has(input.Item.execution.S)) throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    recorded.add(input.Item.execution.S);
    return {};
  });
  sfn.on(StopExecutionCommand).resolves({ stopDate: NOW });
  logs = [];
  handler = createAckHandler({ env: ENV, now: () => NOW, fetch, write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
});
after(() => {
  for (const mock of [secrets, dynamodb, sfn]) mock.restore();
});

const post = (token: string): FunctionUrlEvent => ({ requestContext: { http: { method: 'POST' }, requestId: 'req-1' }, body: `t=${encodeURIComponent(token)}` });
const get = (token: string): FunctionUrlEvent => ({ requestContext: { http: { method: 'GET' }, requestId: 'req-1' }, queryStringParameters: { t: token } });

function assertRefused(response: { statusCode: number; body: string }, status: number, code: string): void {
  assert.equal(response.statusCode, status, response.body);
  assert.deepEqual(JSON.parse(response.body), { error: code, message: (JSON.parse(response.body) as { message: string }).message, requestId: 'req-1' });
  assert.equal(dynamodb.commandCalls(PutItemCommand).length, 0, 'nothing is recorded for a refused link');
  assert.equal(sfn.commandCalls(StopExecutionCommand).length, 0, 'nothing is stopped for a refused link');
}

describe('escalation: the acknowledge link', () => {
  it('a click (GET) only shows a confirmation form: link scanners never acknowledge', async () => {
    const token = signAckToken(CLAIMS, KEY);
    const response = await handler(get(token));
    assert.equal(response.statusCode, 200);
    assert.match(response.body, /<form method="post">/);
    assert.ok(response.body.includes(`value="${token}"`));
    assert.equal(dynamodb.commandCalls(PutItemCommand).length, 0);
    assert.equal(sfn.commandCalls(StopExecutionCommand).length, 0);
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.equal(response.headers['referrer-policy'], 'no-referrer');
  });

  it('confirming (POST) records the acknowledgement once and stops that execution', async () => {
    const response = await handler(post(signAckToken(CLAIMS, KEY)));
    assert.equal(response.statusCode, 200, response.body);
    const [put] = dynamodb.commandCalls(PutItemCommand);
    assert.equal(put?.args[0].input.ConditionExpression, 'attribute_not_exists(execution)');
    assert.equal(put?.args[0].input.Item?.['execution']?.S, 'exec-1');
    const [stop] = sfn.commandCalls(StopExecutionCommand);
    assert.equal(stop?.args[0].input.executionArn, 'arn:aws:states:us-east-2:123456789012:execution:dms-production-escalation:exec-1');
    const ack = logs.find((line) => line['event'] === 'escalation_acknowledged');
    assert.deepEqual([ack?.['acknowledgedBy'], ack?.['level'], ack?.['execution']], ['primaryOnCall', 2, 'exec-1']);
    assert.ok(logs.some((line) => line['event'] === 'escalation_ended' && line['reason'] === 'acknowledged'));
  });

  it('refuses a reused link (409) and stops nothing a second time', async () => {
    const token = signAckToken(CLAIMS, KEY);
    assert.equal((await handler(post(token))).statusCode, 200);
    const again = await handler(post(token));
    assert.equal(again.statusCode, 409);
    assert.equal((JSON.parse(again.body) as { error: string }).error, 'already_acknowledged');
    assert.equal(sfn.commandCalls(StopExecutionCommand).length, 1);
  });

  it('refuses a second link of the same escalation once one was used (one acknowledgement per execution)', async () => {
    assert.equal((await handler(post(signAckToken(CLAIMS, KEY)))).statusCode, 200);
    const sms = await handler(post(signAckToken({ ...CLAIMS, level: 3 }, KEY)));
    assert.equal(sms.statusCode, 409);
  });

  it('refuses a forged link: signed with another key (400 invalid_signature)', async () => {
    assertRefused(await handler(post(signAckToken(CLAIMS, OTHER_KEY))), 400, 'invalid_signature');
    assertRefused(await handler(get(signAckToken(CLAIMS, OTHER_KEY))), 400, 'invalid_signature');
  });

  it('refuses an altered link: another execution in a genuine token’s payload (400)', async () => {
    const [, signature] = signAckToken(CLAIMS, KEY).split('.');
    const payload = Buffer.from(JSON.stringify({ e: 'someone-elses', l: 2, r: 'primaryOnCall', x: inOneHour })).toString('base64url');
    assertRefused(await handler(post(`${payload}.${signature}`)), 400, 'invalid_signature');
  });

  it('refuses an expired link (410), including one that expires this very second', async () => {
    const issued = Math.floor(NOW.getTime() / 1000) - ACK_LINK_TTL_SECONDS;
    assertRefused(await handler(post(signAckToken({ ...CLAIMS, expiresAt: issued }, KEY))), 410, 'token_expired');
    assertRefused(await handler(post(signAckToken({ ...CLAIMS, expiresAt: Math.floor(NOW.getTime() / 1000) }, KEY))), 410, 'token_expired');
  });

  it('refuses a missing or damaged token (400 malformed_token)', async () => {
    assertRefused(await handler(post('')), 400, 'malformed_token');
    assertRefused(await handler(post('not-a-token')), 400, 'malformed_token');
    assertRefused(await handler(post('a.b.c')), 400, 'malformed_token');
  });

  it('an execution that already ended still records the acknowledgement', async () => {
    sfn.on(StopExecutionCommand).rejects(new ExecutionDoesNotExist({ message: 'gone', $metadata: {} }));
    assert.equal((await handler(post(signAckToken(CLAIMS, KEY)))).statusCode, 200);
    assert.equal(dynamodb.commandCalls(PutItemCommand).length, 1);
    assert.equal(logs.find((line) => line['event'] === 'escalation_acknowledged')?.['stopped'], false);
  });

  it('never logs the token', async () => {
    const token = signAckToken(CLAIMS, KEY);
    await handler(post(token));
    await handler(post(token));
    await handler(post(signAckToken(CLAIMS, OTHER_KEY)));
    assert.ok(logs.length >= 4);
    assert.ok(!JSON.stringify(logs).includes(token.split('.')[1]!));
  });
});

describe('escalation: acknowledge tokens', () => {
  it('round-trip their claims', () => {
    assert.deepEqual(verifyAckToken(signAckToken(CLAIMS, KEY), KEY, NOW), CLAIMS);
  });

  it('refuse a key shorter than 32 bytes at signing', () => {
    assert.throws(() => signAckToken(CLAIMS, randomBytes(16).toString('base64url')), /at least 32 bytes/);
  });
});
