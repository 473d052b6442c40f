// Automatic rotation of the secrets the program owns: the four steps Secrets Manager drives, what
// each strategy does to the resource (a PostgreSQL that checks passwords, the JWT key list, the Valkey
// token with its overlap), and the redeploy that hands the new value to running tasks.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeServicesCommand, ECSClient, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { DescribeReplicationGroupsCommand, ElastiCacheClient, ModifyReplicationGroupCommand } from '@aws-sdk/client-elasticache';
import { PutSecretValueCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import pg from 'pg';
import { loadConfig } from '../../api/config.js';
import { scramVerifier } from '../../api/db/app-role.js';
import { databaseLoginRotation, type Queryable } from '../../infra/rotation/db-login.js';
import { handler } from '../../infra/rotation/handler.js';
import { jwtKeysRotation, nextKeyList, parseKeyList, stagedKey, STAGED_KEY_MIN_AGE_MS, type JwtKeyEntry } from '../../infra/rotation/jwt-keys.js';
import { rotate, RotationError, type RotationEvent, type RotationStrategy } from '../../infra/rotation/protocol.js';
import { redisAuthRotation } from '../../infra/rotation/redis-auth.js';
import type { StackRun } from '../../infra/plan/run.js';
import { pgUrl, sql, startOwnServer, type OwnServer } from '../support/postgres.js';
import { FakeSecret } from '../support/secrets-manager.js';
import { one, planned, statement, statements } from './fixture.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2026-03-01T07:30:00Z');
const silent = () => {};

/** A strategy that records what the protocol asks of it. */
function recording(): RotationStrategy & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    create: (current) => {
      calls.push(`create(${current.value})`);
      return `${current.value}+1`;
    },
    set: async (pending, current) => void calls.push(`set(${pending}, ${current})`),
    test: async (pending) => void calls.push(`test(${pending})`),
    finish: async (current) => void calls.push(`finish(${current})`),
  };
}

describe('secret rotation: the four steps Secrets Manager drives', () => {
  let secret: FakeSecret;
  beforeEach(() => (secret = new FakeSecret('dms-production/example', 'v1', new Date(NOW.getTime() - 30 * DAY))));
  afterEach(() => secret.restore());

  it('creates the pending value, sets and tests it, then makes it current and finishes with it', async () => {
    const strategy = recording();
    await secret.rotateWith((event) => rotate(secret.client, event, strategy, silent));
    assert.deepEqual(strategy.calls, ['create(v1)', 'set(v1+1, v1)', 'test(v1+1)', 'finish(v1+1)']);
    assert.equal(secret.valueWith('AWSCURRENT'), 'v1+1');
    assert.equal(secret.valueWith('AWSPREVIOUS'), 'v1');
    const put = secret.mock.commandCalls(PutSecretValueCommand)[0]?.args[0].input;
    assert.deepEqual(put?.VersionStages, ['AWSPENDING']);
  });

  it('a retried createSecret keeps the pending value it already wrote', async () => {
    const strategy = recording();
    const token = secret.startRotation();
    const event: RotationEvent = { SecretId: secret.arn, ClientRequestToken: token, Step: 'createSecret' };
    await rotate(secret.client, event, strategy, silent);
    await rotate(secret.client, event, strategy, silent);
    assert.deepEqual(strategy.calls, ['create(v1)']);
    assert.equal(secret.mock.commandCalls(PutSecretValueCommand).length, 1);
  });

  it('refuses a secret whose rotation is off, and a version that is not pending', async () => {
    const strategy = recording();
    const token = secret.startRotation();
    secret.rotationEnabled = false;
    await assert.rejects(rotate(secret.client, { SecretId: secret.arn, ClientRequestToken: token, Step: 'createSecret' }, strategy, silent), /rotation is not enabled/);
    secret.rotationEnabled = true;
    await assert.rejects(rotate(secret.client, { SecretId: secret.arn, ClientRequestToken: 'no-such-version', Step: 'setSecret' }, strategy, silent), RotationError);
    assert.deepEqual(strategy.calls, []);
  });

  it('a retried finishSecret on a version already current finishes again, without moving a label', async () => {
    const strategy = recording();
    const token = await secret.rotateWith((event) => rotate(secret.client, event, strategy, silent));
    const moves = secret.mock.commandCalls(UpdateSecretVersionStageCommand).length;
    await rotate(secret.client, { SecretId: secret.arn, ClientRequestToken: token, Step: 'finishSecret' }, strategy, silent);
    assert.equal(secret.mock.commandCalls(UpdateSecretVersionStageCommand).length, moves);
    assert.deepEqual(strategy.calls.slice(-2), ['finish(v1+1)', 'finish(v1+1)']);
  });

  it('a failing test step leaves the current value current', async () => {
    const strategy = { ...recording(), test: async () => Promise.reject(new RotationError('refused')) };
    await assert.rejects(secret.rotateWith((event) => rotate(secret.client, event, strategy, silent)), /refused/);
    assert.equal(secret.valueWith('AWSCURRENT'), 'v1');
  });
});

describe('secret rotation: a database login password, on a PostgreSQL that checks passwords', function () {
  this.timeout(60_000);
  const ROLE = 'dms_app';
  const FIRST_PASSWORD = 'first-app-password-Xk29fLq8Rz';
  const MASTER = { username: 'rotation_master', password: 'master-password-Jd7sW3mXe9Qa' };
  let server: OwnServer;
  let secret: FakeSecret;
  let redeploys: number;

  const connect = async (user: string, password: string): Promise<Queryable> => {
    const client = new pg.Client({ host: '127.0.0.1', port: server.port, database: 'postgres', user, password });
    await client.connect();
    return client;
  };
  const canSignIn = (password: string) => connect(ROLE, password).then((client) => client.end().then(() => true), () => false);
  const strategy = () => databaseLoginRotation({ role: ROLE, master: async () => MASTER, connect, redeploy: async () => void redeploys++ });

  before(async () => {
    server = await startOwnServer();
    // Passwords are checked for every role but the superuser that sets the test up; DDL is logged, as RDS's parameter group does.
    writeFileSync(join(server.dataDir, 'pg_hba.conf'), 'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n');
    const admin = pgUrl('postgres', { port: server.port });
    await sql(admin, "alter system set log_statement = 'ddl'");
    await sql(admin, 'select pg_reload_conf()');
    await sql(admin, `create role ${ROLE} login password '${scramVerifier(FIRST_PASSWORD)}'`);
    await sql(admin, `create role ${MASTER.username} login createrole password '${scramVerifier(MASTER.password)}'`);
  });
  after(() => server?.destroy());
  beforeEach(async () => {
    redeploys = 0;
    await sql(pgUrl('postgres', { port: server.port }), `alter role ${ROLE} password '${scramVerifier(FIRST_PASSWORD)}'`);
    secret = new FakeSecret('dms-production/db-app-password', FIRST_PASSWORD, new Date(NOW.getTime() - 30 * DAY));
  });
  afterEach(() => secret.restore());

  it('sets a new password on the role, proves it signs in, makes it current and redeploys the API', async () => {
    const rotation = strategy();
    await secret.rotateWith((event) => rotate(secret.client, event, rotation, silent));
    const current = secret.valueWith('AWSCURRENT');
    assert.ok(current && current !== FIRST_PASSWORD);
    assert.match(current, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await canSignIn(current), true, 'the new password signs in');
    assert.equal(await canSignIn(FIRST_PASSWORD), false, 'the old one no longer does');
    assert.equal(redeploys, 1);
  });

  it('sends the server a SCRAM verifier, never the password: the DDL log holds no trace of it', async () => {
    await secret.rotateWith((event) => rotate(secret.client, event, strategy(), silent));
    const log = readFileSync(join(server.dataDir, 'server.log'), 'utf8');
    assert.match(log, /alter role dms_app with password 'SCRAM-SHA-256\$4096:/);
    assert.ok(!log.includes(secret.valueWith('AWSCURRENT')!), 'password in the server log');
  });

  it('testSecret fails, and nothing becomes current, when the role did not take the pending password', async () => {
    const rotation = { ...strategy(), set: async () => {} };
    await assert.rejects(secret.rotateWith((event) => rotate(secret.client, event, rotation, silent)), /password authentication failed/);
    assert.equal(secret.valueWith('AWSCURRENT'), FIRST_PASSWORD);
    assert.equal(await canSignIn(FIRST_PASSWORD), true);
    assert.equal(redeploys, 0, 'no redeploy before the value is current');
  });

  it('finishSecret sets the password again: a deployment between test and finish put the old one back', async () => {
    const rotation = strategy();
    const token = secret.startRotation();
    const step = (Step: RotationEvent['Step']) => rotate(secret.client, { SecretId: secret.arn, ClientRequestToken: token, Step }, rotation, silent);
    await step('createSecret');
    await step('setSecret');
    await step('testSecret');
    // What the migration task does on every deployment: the role gets the secret's AWSCURRENT value.
    await sql(pgUrl('postgres', { port: server.port }), `alter role ${ROLE} password '${scramVerifier(FIRST_PASSWORD)}'`);
    await step('finishSecret');
    assert.equal(await canSignIn(secret.valueWith('AWSCURRENT')!), true);
  });

  it('refuses a pending value PostgreSQL would not take as given (not printable ASCII, too short)', async () => {
    const token = secret.startRotation();
    await secret.client.send(new PutSecretValueCommand({ SecretId: secret.arn, ClientRequestToken: token, SecretString: 'short', VersionStages: ['AWSPENDING'] }));
    await assert.rejects(rotate(secret.client, { SecretId: secret.arn, ClientRequestToken: token, Step: 'setSecret' }, strategy(), silent), /must be at least 16 characters/);
  });
});

describe('secret rotation: JWT keys, one phase per rotation, one redeploy each', () => {
  const key = (kid: string, createdAt: Date): JwtKeyEntry => ({ kid, alg: 'HS256', secret: 'x'.repeat(43), createdAt: createdAt.toISOString() });
  const A = key('k-20260101-aaaaaaaa', new Date('2026-01-01T07:00:00Z'));
  const B = key('k-20260201-bbbbbbbb', new Date('2026-02-01T07:00:00Z'));
  const C = key('k-20260215-cccccccc', new Date('2026-02-15T07:00:00Z'));

  it('first stages a key next to the signing one: the signing key does not change yet', () => {
    const next = nextKeyList([A], new Date(NOW.getTime() - 30 * DAY), NOW);
    assert.deepEqual(next.slice(0, 1), [A]);
    assert.equal(next.length, 2);
    assert.equal(stagedKey(next)?.kid, next[1]?.kid, 'the ops command sees the new key as staged');
  });

  it('then promotes the staged key, keeps the one that signed until now, and stages the next', () => {
    const next = nextKeyList([A, B], new Date(NOW.getTime() - 30 * DAY), NOW);
    assert.deepEqual(next.slice(0, 2).map((entry) => entry.kid), [B.kid, A.kid]);
    assert.equal(next.length, 3);
    assert.equal(stagedKey(next)?.kid, next[2]?.kid);
  });

  it('drops a key that has signed nothing for a day, and only then', () => {
    const settled = nextKeyList([B, A, C], new Date(NOW.getTime() - 2 * DAY), NOW);
    assert.deepEqual(settled.slice(0, 2).map((entry) => entry.kid), [C.kid, B.kid]);
    assert.equal(settled.length, 3);
    const recent = nextKeyList([B, A, C], new Date(NOW.getTime() - 2 * HOUR), NOW);
    assert.deepEqual(recent.slice(0, 3).map((entry) => entry.kid), [C.kid, B.kid, A.kid], 'a list changed within the day keeps every key');
  });

  it('refuses to promote a key staged so recently that a task may not know it yet', () => {
    assert.throws(() => nextKeyList([A, B], new Date(NOW.getTime() - STAGED_KEY_MIN_AGE_MS / 2), NOW), /may sign only once every task has restarted with it/);
  });

  it('writes a list the API starts with, redeploys once, and never logs key material', async () => {
    const secret = new FakeSecret('dms-production/jwt-keys', JSON.stringify([A, B]), new Date(NOW.getTime() - 30 * DAY));
    const lines: string[] = [];
    let redeploys = 0;
    try {
      const rotation = jwtKeysRotation({ now: () => NOW, redeploy: async () => void redeploys++ });
      await secret.rotateWith((event) => rotate(secret.client, event, rotation, (fields) => lines.push(JSON.stringify(fields))));
      const current = secret.valueWith('AWSCURRENT')!;
      const keys = loadConfig({ NODE_ENV: 'test', JWT_KEYS: current }).jwtKeys;
      assert.deepEqual(keys?.map((entry) => entry.kid).slice(0, 2), [B.kid, A.kid]);
      assert.equal(redeploys, 1);
      for (const entry of parseKeyList(current)) assert.ok(!lines.join('\n').includes(String(entry['secret'])), 'key material in a log line');
    } finally {
      secret.restore();
    }
  });
});

describe('secret rotation: the Valkey AUTH token, both tokens valid while the API redeploys', () => {
  const OLD = 'a'.repeat(64);
  const URL_NOW = `rediss://:${OLD}@master.dms-production-cache.abc123.use2.cache.amazonaws.com:6379`;

  it('adds the new token (ROTATE) before any task uses it, and retires the old one (SET) only after the redeploy settled', async () => {
    const secret = new FakeSecret('dms-production/redis-url', URL_NOW, new Date(NOW.getTime() - 30 * DAY));
    const calls: string[] = [];
    try {
      const rotation = redisAuthRotation({
        modifyAuthToken: async (token, strategy) => void calls.push(`${strategy} ${token === OLD ? 'old' : 'new'}`),
        waitAvailable: async () => void calls.push('wait available'),
        ping: async (url) => void calls.push(`ping ${new URL(url).password === OLD ? 'old' : 'new'}`),
        redeployAndSettle: async () => void calls.push('redeploy and settle'),
      });
      await secret.rotateWith((event) => rotate(secret.client, event, rotation, silent));
      assert.deepEqual(calls, ['wait available', 'ROTATE new', 'wait available', 'ping new', 'redeploy and settle', 'SET new']);
      const current = new URL(secret.valueWith('AWSCURRENT')!);
      assert.equal(current.host, 'master.dms-production-cache.abc123.use2.cache.amazonaws.com:6379');
      assert.match(current.password, /^[0-9a-f]{64}$/);
      assert.equal(loadConfig({ NODE_ENV: 'test', REDIS_URL: current.toString() }).redisUrl?.toString(), current.toString(), 'the API takes the new URL');
    } finally {
      secret.restore();
    }
  });

  it('refuses a URL without TLS or without a token', async () => {
    for (const value of [`redis://:${OLD}@cache:6379`, 'rediss://cache:6379']) {
      const secret = new FakeSecret('dms-production/redis-url', value, new Date(NOW.getTime() - DAY));
      try {
        const rotation = redisAuthRotation({ modifyAuthToken: async () => {}, waitAvailable: async () => {}, ping: async () => {}, redeployAndSettle: async () => {} });
        await assert.rejects(secret.rotateWith((event) => rotate(secret.client, event, rotation, silent)), RotationError);
        assert.equal(secret.valueWith('AWSCURRENT'), value);
      } finally {
        secret.restore();
      }
    }
  });
});

describe('secret rotation: the Lambda handler drives AWS as each strategy says', () => {
  const ecs = mockClient(ECSClient);
  const elasticache = mockClient(ElastiCacheClient);
  const saved = { ...process.env };
  const context = { getRemainingTimeInMillis: () => 120_000 };
  beforeEach(() => {
    ecs.reset();
    elasticache.reset();
    ecs.on(UpdateServiceCommand).resolves({});
    ecs.on(DescribeServicesCommand).resolves({ services: [{ serviceName: 'dms-production-api', desiredCount: 2, runningCount: 2, deployments: [{ status: 'PRIMARY', rolloutState: 'COMPLETED' }] }] });
    elasticache.on(ModifyReplicationGroupCommand).resolves({});
    elasticache.on(DescribeReplicationGroupsCommand).resolves({ ReplicationGroups: [{ ReplicationGroupId: 'dms-production-cache', Status: 'available' }] });
    Object.assign(process.env, { CLUSTER: 'dms-production', SERVICE: 'dms-production-api', REPLICATION_GROUP_ID: 'dms-production-cache' });
  });
  afterEach(() => {
    process.env = { ...saved };
    ecs.restore();
    elasticache.restore();
  });
  after(() => {
    ecs.restore();
    elasticache.restore();
  });

  it('jwt-keys: finishSecret forces a new deployment of the API', async () => {
    process.env['ROTATION_KIND'] = 'jwt-keys';
    const secret = new FakeSecret('dms-production/jwt-keys', JSON.stringify([{ kid: 'production-20260101', alg: 'HS256', secret: 'y'.repeat(64) }]), new Date(NOW.getTime() - 30 * DAY));
    try {
      await secret.rotateWith((event) => handler(event, context));
      assert.deepEqual(ecs.commandCalls(UpdateServiceCommand).map((call) => call.args[0].input), [{ cluster: 'dms-production', service: 'dms-production-api', forceNewDeployment: true }]);
      assert.equal(parseKeyList(secret.valueWith('AWSCURRENT')!).length, 2);
    } finally {
      secret.restore();
    }
  });

  it('redis-auth: ROTATE then, after the service is stable, SET; a token the cache refuses fails testSecret', async () => {
    process.env['ROTATION_KIND'] = 'redis-auth';
    // Nothing listens on port 1: the real client's PING fails as a cache refusing the token would.
    const secret = new FakeSecret('dms-production/redis-url', `rediss://:${'b'.repeat(64)}@127.0.0.1:1`, new Date(NOW.getTime() - 30 * DAY));
    try {
      const token = secret.startRotation();
      await handler({ SecretId: secret.arn, ClientRequestToken: token, Step: 'createSecret' }, context);
      await handler({ SecretId: secret.arn, ClientRequestToken: token, Step: 'setSecret' }, context);
      const rotateCall = elasticache.commandCalls(ModifyReplicationGroupCommand)[0]?.args[0].input;
      assert.equal(rotateCall?.AuthTokenUpdateStrategy, 'ROTATE');
      assert.equal(rotateCall?.ApplyImmediately, true);
      assert.equal(rotateCall?.AuthToken, new URL(secret.valueWith('AWSPENDING')!).password);
      await assert.rejects(handler({ SecretId: secret.arn, ClientRequestToken: token, Step: 'testSecret' }, context));
      assert.equal(ecs.commandCalls(UpdateServiceCommand).length, 0, 'nothing redeployed for a token that does not work');
      await handler({ SecretId: secret.arn, ClientRequestToken: token, Step: 'finishSecret' }, context);
      assert.deepEqual(
        elasticache.commandCalls(ModifyReplicationGroupCommand).map((call) => call.args[0].input.AuthTokenUpdateStrategy),
        ['ROTATE', 'SET'],
      );
      assert.equal(ecs.commandCalls(UpdateServiceCommand).length, 1);
      assert.ok(ecs.commandCalls(DescribeServicesCommand).length >= 1, 'waited for the service to settle before SET');
    } finally {
      secret.restore();
    }
  });

  it('refuses an unknown ROTATION_KIND', async () => {
    process.env['ROTATION_KIND'] = 'ftp-password';
    await assert.rejects(handler({ SecretId: 'x', ClientRequestToken: 'y', Step: 'createSecret' }, context), /ROTATION_KIND ftp-password/);
  });
});

describe('secret rotation: the planned stack rotates every secret its tasks are given', function () {
  this.timeout(120_000);
  const ROTATED = ['jwt-keys', 'db-app-password', 'db-exporter-password', 'redis-url'];
  let run: StackRun;
  before(async () => (run = await planned('production')));
  const fn = (slug: string) => one(run, 'aws:lambda/function:Function', `dms-production-rotate-${slug}`);
  const secretArn = (slug: string) => one(run, 'aws:secretsmanager/secret:Secret', `dms-production-${slug}`).outputs['arn'];
  const roleStatements = (slug: string) => statements(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-production-rotate-${slug}`).inputs['policy']);

  it('schedules each rotation monthly through its own function, not at once on the first deployment', () => {
    for (const slug of ROTATED) {
      const rotation = one(run, 'aws:secretsmanager/secretRotation:SecretRotation', `dms-production-rotate-${slug}`);
      assert.equal(rotation.inputs['secretId'], secretArn(slug), slug);
      assert.equal(rotation.inputs['rotationLambdaArn'], fn(slug).outputs['arn'], slug);
      assert.match(String((rotation.inputs['rotationRules'] as { scheduleExpression: string }).scheduleExpression), /^cron\(0 7 \d \* \? \*\)$/, slug);
      assert.equal(rotation.inputs['rotateImmediately'], false, slug);
      const permission = one(run, 'aws:lambda/permission:Permission', `dms-production-rotate-${slug}`);
      assert.deepEqual([permission.inputs['principal'], permission.inputs['sourceArn'], permission.inputs['sourceAccount']], ['secretsmanager.amazonaws.com', secretArn(slug), '123456789012']);
    }
  });

  it('runs the functions that reach the database or the cache in the private subnets with the tasks’ security group, and the JWT one outside the VPC', () => {
    const taskNetwork = { subnetIds: run.outputs['privateSubnetIds'], securityGroupIds: [run.outputs['serviceSecurityGroupId']] };
    for (const slug of ['db-app-password', 'db-exporter-password', 'redis-url']) assert.deepEqual(fn(slug).inputs['vpcConfig'], taskNetwork, slug);
    assert.equal(fn('jwt-keys').inputs['vpcConfig'], undefined);
    assert.ok(!roleStatements('jwt-keys').some((statement) => statement.Sid === 'AttachToTheVpc'));
    assert.equal((fn('db-app-password').inputs['environment'] as { variables: Record<string, string> }).variables['DB_PORT'], '5433');
  });

  it('gives each function only its own secret, and the master password, the API service and the cache only to those that need them', () => {
    const serviceArn = `arn:aws:ecs:us-east-2:123456789012:service/dms-production/dms-production-api`;
    for (const slug of ROTATED) {
      const rotate = statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-production-rotate-${slug}`).inputs['policy'], 'RotateThisSecret');
      assert.equal(rotate.Resource, secretArn(slug), slug);
    }
    const sids = (slug: string) => roleStatements(slug).map((entry) => entry.Sid).sort();
    assert.deepEqual(sids('jwt-keys'), ['RedeployTheApi', 'RotateThisSecret', 'UseTheSecretsKey', 'WriteOwnLogs']);
    assert.deepEqual(sids('db-app-password'), ['AttachToTheVpc', 'ReadTheMasterPassword', 'RedeployTheApi', 'RotateThisSecret', 'UseTheSecretsKey', 'WriteOwnLogs']);
    assert.deepEqual(sids('db-exporter-password'), ['AttachToTheVpc', 'ReadTheMasterPassword', 'RotateThisSecret', 'UseTheSecretsKey', 'WriteOwnLogs']);
    assert.deepEqual(sids('redis-url'), ['AttachToTheVpc', 'ChangeTheAuthToken', 'RedeployTheApi', 'RotateThisSecret', 'UseTheSecretsKey', 'WriteOwnLogs']);
    assert.equal(statement(one(run, 'aws:iam/rolePolicy:RolePolicy', 'dms-production-rotate-jwt-keys').inputs['policy'], 'RedeployTheApi').Resource, serviceArn);
    assert.equal(
      statement(one(run, 'aws:iam/rolePolicy:RolePolicy', 'dms-production-rotate-redis-url').inputs['policy'], 'ChangeTheAuthToken').Resource,
      one(run, 'aws:elasticache/replicationGroup:ReplicationGroup', 'dms-production-cache').outputs['arn'],
    );
  });

  it('raises a P2 alarm, to the alarm topic, when any rotation step fails', () => {
    const alarm = one(run, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'dms-production-secret-rotation-failed');
    assert.match(String(alarm.inputs['alarmDescription']), /^P2: .*Runbook: .*\/runbooks\/secret-rotation\.md#rotation-failed$/);
    assert.deepEqual(alarm.inputs['tags'], { Severity: 'P2' });
    assert.deepEqual(alarm.inputs['alarmActions'], [run.outputs['alarmTopicArn']]);
    const watched = (alarm.inputs['metricQueries'] as { metric?: { metricName: string; dimensions: { FunctionName: string } } }[]).flatMap((query) => (query.metric ? [query.metric] : []));
    assert.deepEqual(watched.map((metric) => metric.metricName), ROTATED.map(() => 'Errors'));
    assert.deepEqual(watched.map((metric) => metric.dimensions.FunctionName), ROTATED.map((slug) => `dms-production-rotate-${slug}`));
  });
});
