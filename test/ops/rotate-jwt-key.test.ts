import assert from 'node:assert/strict';
import { DescribeServicesCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { GetSecretValueCommand, PutSecretValueCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { fakeClock, fixtureOutputs, operationsInOrder, runCli, STACK_ARGS, totalCalls, useAwsMocks, type AwsMocks } from './support.js';

const SECRET_ARN = fixtureOutputs.jwtKeysSecretArn as string;
const OLD_SECRET = 'old-hmac-secret-0123456789-abcdefghijklmnop';
const OLDER_SECRET = 'older-hmac-secret-0123456789-abcdefghijklmn';

interface Key {
  kid: string;
  alg: string;
  secret?: string;
  createdAt?: string;
}

function secretHolding(keys: Key[]) {
  return { ARN: SECRET_ARN, VersionId: 'v-1', SecretString: JSON.stringify(keys) };
}

/** Writes that Secrets Manager accepts: each PutSecretValue a new version id, each label move allowed. */
function secretWritesSucceed(aws: AwsMocks): void {
  let version = 1;
  aws.secrets.on(PutSecretValueCommand).callsFake(() => ({ ARN: SECRET_ARN, VersionId: `v-${++version}` }));
  aws.secrets.on(UpdateSecretVersionStageCommand).resolves({ ARN: SECRET_ARN });
}

/**
 * Secrets Manager's versions and its AWSCURRENT label as the API reference describes them: a
 * PutSecretValue with other labels leaves AWSCURRENT alone; UpdateSecretVersionStage refuses to
 * move AWSCURRENT unless RemoveFromVersionId names the version that holds it.
 */
function secretsManager(aws: AwsMocks, keys: Key[]) {
  const versions = new Map([['v-1', JSON.stringify(keys)]]);
  let current = 'v-1';
  aws.secrets.on(GetSecretValueCommand).callsFake(() => ({ ARN: SECRET_ARN, VersionId: current, SecretString: versions.get(current) }));
  aws.secrets.on(PutSecretValueCommand).callsFake((input: { SecretString: string; VersionStages?: string[] }) => {
    const id = `v-${versions.size + 1}`;
    versions.set(id, input.SecretString);
    if (!input.VersionStages || input.VersionStages.includes('AWSCURRENT')) current = id;
    return { ARN: SECRET_ARN, VersionId: id };
  });
  aws.secrets.on(UpdateSecretVersionStageCommand).callsFake((input: { VersionStage: string; MoveToVersionId: string; RemoveFromVersionId?: string }) => {
    if (input.VersionStage === 'AWSCURRENT') {
      if (input.RemoveFromVersionId !== current) {
        throw Object.assign(new Error("The parameter RemoveFromVersionId doesn't match the version the staging label is attached to."), { name: 'InvalidParameterException', $metadata: {} });
      }
      current = input.MoveToVersionId;
    }
    return { ARN: SECRET_ARN };
  });
  return {
    currentKeys: (): Key[] => JSON.parse(versions.get(current) ?? '[]') as Key[],
    /** Someone else's write (another rotation, a hand edit): a new current version at once. */
    writeElsewhere(next: Key[]): void {
      const id = `v-${versions.size + 1}`;
      versions.set(id, JSON.stringify(next));
      current = id;
    },
  };
}

/** A service whose forced deployments all complete at once. */
function deploymentsComplete(aws: AwsMocks): void {
  const settled = { id: 'ecs-svc/222', status: 'PRIMARY', rolloutState: 'COMPLETED' as const, desiredCount: 2, runningCount: 2 };
  aws.ecs.on(UpdateServiceCommand).resolves({ service: { deployments: [settled] } });
  aws.ecs.on(DescribeServicesCommand).resolves({ services: [{ status: 'ACTIVE', deployments: [settled] }] });
}

function writtenKeys(aws: AwsMocks): Key[][] {
  return aws.secrets.commandCalls(PutSecretValueCommand).map((call) => {
    assert.equal(call.args[0].input.SecretId, SECRET_ARN);
    return JSON.parse(call.args[0].input.SecretString ?? '') as Key[];
  });
}

describe('ops rotate-jwt-key: phase 1, a new signing key', () => {
  const aws = useAwsMocks();
  beforeEach(() => secretWritesSucceed(aws));
  const current: Key = { kid: 'k-20250101-0a0b0c0d', alg: 'HS256', secret: OLD_SECRET, createdAt: '2025-01-01T10:00:00.000Z' };

  it('stages the new key as verify-only, redeploys, then makes it the signing key and redeploys again', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([current]));
    deploymentsComplete(aws);
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.secrets.commandCalls(GetSecretValueCommand)[0]?.args[0].input, { SecretId: SECRET_ARN });
    const [staged, promoted] = writtenKeys(aws);
    const fresh = staged?.at(-1);
    assert.deepEqual(staged, [current, fresh]);
    assert.deepEqual(promoted, [fresh, current]);
    assert.deepEqual(
      operationsInOrder(aws).filter((operation) => operation !== 'DescribeServices'),
      ['GetSecretValue', 'PutSecretValue', 'UpdateSecretVersionStage', 'UpdateService', 'PutSecretValue', 'UpdateSecretVersionStage', 'UpdateService'],
      'each secret version is made current and deployed before the next is written',
    );
    for (const call of aws.ecs.commandCalls(UpdateServiceCommand)) {
      assert.deepEqual(call.args[0].input, { cluster: 'dms-production', service: 'dms-api-production', forceNewDeployment: true });
    }
  });

  it('generates an HS256 key of 32 random bytes, base64url, kid k-<yyyymmdd>-<random>, with createdAt', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([current]));
    deploymentsComplete(aws);
    await runCli(['rotate-jwt-key', ...STACK_ARGS], { clock: fakeClock(new Date('2025-03-10T09:15:00Z')) });
    const fresh = writtenKeys(aws)[1]?.[0];
    assert.match(fresh?.kid ?? '', /^k-20250310-[0-9a-f]{8}$/);
    assert.equal(fresh?.alg, 'HS256');
    assert.match(fresh?.secret ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(fresh?.secret ?? '', 'base64url').length, 32);
    assert.equal(fresh?.createdAt, '2025-03-10T09:15:00.000Z');
  });

  it('never prints key material', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([current, { kid: 'k-20241001-99999999', alg: 'HS256', secret: OLDER_SECRET }]));
    deploymentsComplete(aws);
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    const fresh = writtenKeys(aws)[1]?.[0];
    for (const secret of [OLD_SECRET, OLDER_SECRET, fresh?.secret ?? 'missing']) {
      assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), 'a secret reached the output');
    }
    assert.match(run.stdout, new RegExp(`keys now\\s+${fresh?.kid} \\(HS256, signs, added .*\\); k-20250101-0a0b0c0d \\(HS256, verifies`));
  });

  it('resumes an interrupted rotation by promoting the staged key instead of adding another', async () => {
    const staged: Key = { kid: 'k-20250309-11112222', alg: 'HS256', secret: 'staged-secret-0123456789-abcdefghijklmnopq', createdAt: '2025-03-09T08:00:00.000Z' };
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([current, staged]));
    deploymentsComplete(aws);
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(writtenKeys(aws), [[staged, current]]);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 1);
  });

  it('stops with exit 1 when a deployment fails, leaving the staged key verify-only', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([current]));
    aws.ecs.on(UpdateServiceCommand).resolves({ service: { deployments: [{ id: 'ecs-svc/333', status: 'PRIMARY', rolloutState: 'IN_PROGRESS' }] } });
    aws.ecs.on(DescribeServicesCommand).resolves({
      services: [{ status: 'ACTIVE', deployments: [{ id: 'ecs-svc/333', status: 'PRIMARY', rolloutState: 'FAILED', rolloutStateReason: 'tasks failed to start' }] }],
    });
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.equal(writtenKeys(aws).length, 1, 'not promoted');
    assert.match(run.stderr, /FAILED: tasks failed to start/);
  });

  it('writes each key list as a new version and makes it current only if the version it read still is (compare-and-set)', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([current]));
    deploymentsComplete(aws);
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    for (const call of aws.secrets.commandCalls(PutSecretValueCommand)) assert.deepEqual(call.args[0].input.VersionStages, ['DMS_JWT_ROTATION']);
    assert.deepEqual(aws.secrets.commandCalls(UpdateSecretVersionStageCommand).map((call) => call.args[0].input), [
      { SecretId: SECRET_ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: 'v-2', RemoveFromVersionId: 'v-1' },
      { SecretId: SECRET_ARN, VersionStage: 'AWSCURRENT', MoveToVersionId: 'v-3', RemoveFromVersionId: 'v-2' },
    ]);
  });

  it('fails loudly, dropping no key, when another rotation changes the secret while this one deploys', async () => {
    const store = secretsManager(aws, [current]);
    const settled = { id: 'ecs-svc/222', status: 'PRIMARY', rolloutState: 'COMPLETED' as const, desiredCount: 2, runningCount: 2 };
    let deployments = 0;
    aws.ecs.on(UpdateServiceCommand).callsFake(() => {
      // While the staged key deploys, a second rotation stages its own key.
      if (++deployments === 1) store.writeElsewhere([...store.currentKeys(), { kid: 'k-20250310-0c0c0c0c', alg: 'HS256', secret: 'other-run-secret-0123456789-abcdefghijkl', createdAt: '2025-03-10T09:16:00.000Z' }]);
      return { service: { deployments: [settled] } };
    });
    aws.ecs.on(DescribeServicesCommand).resolves({ services: [{ status: 'ACTIVE', deployments: [settled] }] });
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS]);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /changed while this rotation ran \(AWSCURRENT is no longer version v-2\): another rotation or a hand edit/);
    assert.ok(store.currentKeys().some((key) => key.kid === 'k-20250310-0c0c0c0c'), "the other rotation's key is still current");
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 1, 'nothing deployed after the failed compare-and-set');
  });

  it('--dry-run reads the keys, prints the writes and deployments without key material, and sends none', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([current]));
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.secrets.commandCalls(PutSecretValueCommand).length, 0);
    assert.equal(aws.secrets.commandCalls(UpdateSecretVersionStageCommand).length, 0);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
    const printed = [...run.stdout.matchAll(/^dry run, not sent: (\w+ \w+)/gm)].map((match) => match[1]);
    assert.deepEqual(printed, ['secretsmanager PutSecretValue', 'secretsmanager UpdateSecretVersionStage', 'ecs UpdateService', 'secretsmanager PutSecretValue', 'secretsmanager UpdateSecretVersionStage', 'ecs UpdateService']);
    assert.match(run.stdout, /key material not shown/);
    assert.ok(!run.stdout.includes(OLD_SECRET) && !/"secret"/.test(run.stdout), 'no key material in a dry run');
  });

  it('refuses a secret that is not a JSON array of keys, without quoting it', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves({ SecretString: `{"secret":"${OLD_SECRET}"}` });
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /is not a JSON array of \{"kid","alg",…\} keys/);
    assert.ok(!run.stderr.includes(OLD_SECRET));
    assert.equal(aws.secrets.commandCalls(PutSecretValueCommand).length, 0);
  });
});

describe('ops rotate-jwt-key --retire-previous: phase 2, old keys out', () => {
  const aws = useAwsMocks();
  beforeEach(() => secretWritesSucceed(aws));
  const signing: Key = { kid: 'k-20250309-aaaabbbb', alg: 'HS256', secret: 'new-hmac-secret-0123456789-abcdefghijklmnop', createdAt: '2025-03-09T08:00:00.000Z' };
  const previous: Key = { kid: 'k-20250101-0a0b0c0d', alg: 'HS256', secret: OLD_SECRET, createdAt: '2025-01-01T10:00:00.000Z' };

  it('keeps only the signing key and redeploys once it is older than --min-age', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([signing, previous]));
    deploymentsComplete(aws);
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(writtenKeys(aws), [[signing]]);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input.forceNewDeployment, true);
    assert.match(run.stdout, /retired\s+k-20250101-0a0b0c0d/);
  });

  it('refuses with exit 1 while the signing key is younger than --min-age', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([signing, previous]));
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous', '--min-age', '2d']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /k-20250309-aaaabbbb has signed for 1d01h15m, less than --min-age 2d: .*retire after 2025-03-11T08:00:00Z/);
    assert.equal(aws.secrets.commandCalls(PutSecretValueCommand).length, 0);
  });

  it('dates a key without createdAt from its kid, as the end of that day', async () => {
    const { createdAt: _omitted, ...undated } = signing;
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([{ ...undated, kid: 'k-20250309-ccccdddd' }, previous]));
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous']);
    assert.equal(run.code, 1, 'added 2025-03-09 counts as 2025-03-10T00:00Z: 9h15m old at 09:15');
    assert.match(run.stderr, /has signed for 9h15m, less than --min-age 1d:/);
  });

  it('refuses a key of unknown age unless --min-age 0', async () => {
    const initial: Key = { kid: 'initial', alg: 'HS256', secret: OLD_SECRET };
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([initial, { kid: 'legacy', alg: 'HS256', secret: OLDER_SECRET }]));
    deploymentsComplete(aws);
    const refused = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot tell when initial was added .*pass --min-age 0/);
    assert.equal(aws.secrets.commandCalls(PutSecretValueCommand).length, 0);

    const forced = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous', '--min-age', '0']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(writtenKeys(aws), [[initial]]);
  });

  it('refuses while a staged key has not been promoted', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([previous, signing]));
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /k-20250309-aaaabbbb is staged but not signing yet/);
  });

  it('changes nothing when only one key is left', async () => {
    aws.secrets.on(GetSecretValueCommand).resolves(secretHolding([signing]));
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous']);
    assert.equal(run.code, 0);
    assert.equal(totalCalls(aws), 1);
    assert.match(run.stdout, /only k-20250309-aaaabbbb is left; nothing to retire/);
  });

  it('refuses a malformed --min-age with exit 2', async () => {
    const run = await runCli(['rotate-jwt-key', ...STACK_ARGS, '--retire-previous', '--min-age', 'a day']);
    assert.equal(run.code, 2);
    assert.equal(totalCalls(aws), 0);
  });
});
