import assert from 'node:assert/strict';
import { DescribeServicesCommand, DescribeTaskDefinitionCommand, RegisterTaskDefinitionCommand, UpdateServiceCommand, type Service, type TaskDefinition } from '@aws-sdk/client-ecs';
import { DBInstanceNotFoundFault, DescribeDBInstancesCommand, PromoteReadReplicaCommand, type DBInstance } from '@aws-sdk/client-rds';
import { PROMOTION_POLL_MS } from '../../runbooks/ops/commands/failover.js';
import { fakeClock, json, localServer, operationsInOrder, outputsFile, runCli, totalCalls, useAwsMocks, type AwsMocks } from './support.js';

const PRIMARY = 'dms-production';
const REPLICA = 'dms-production-replica-1';
const OLD_HOST = 'dms-production.c9akciq32.eu-west-1.rds.amazonaws.com';
const NEW_HOST = 'dms-production-replica-1.c9akciq32.eu-west-1.rds.amazonaws.com';
const FAMILY_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task-definition/dms-api-production';
const APP_URL = (host: string) => `postgres://dms_app@${host}:5433/dms?sslmode=verify-full`;

function instance(id: string, fields: Partial<DBInstance>): { DBInstances: DBInstance[] } {
  return { DBInstances: [{ DBInstanceIdentifier: id, DBInstanceStatus: 'available', BackupRetentionPeriod: 35, ...fields }] };
}
const replicating = (status = 'available') => instance(REPLICA, { DBInstanceStatus: status, BackupRetentionPeriod: 0, ReadReplicaSourceDBInstanceIdentifier: PRIMARY, Endpoint: { Address: NEW_HOST, Port: 5433 } });
const standalone = (status = 'available') => instance(REPLICA, { DBInstanceStatus: status, BackupRetentionPeriod: 35, Endpoint: { Address: NEW_HOST, Port: 5433 } });
const notFound = () => new DBInstanceNotFoundFault({ message: `DBInstance ${PRIMARY} not found.`, $metadata: {} });

function taskDefinition(revision: number, databaseHost: string, replicaUrls: string): TaskDefinition {
  return {
    taskDefinitionArn: `${FAMILY_ARN}:${revision}`,
    family: 'dms-api-production',
    revision,
    taskRoleArn: 'arn:aws:iam::123456789012:role/dms-production-api-task',
    executionRoleArn: 'arn:aws:iam::123456789012:role/dms-production-task-execution',
    networkMode: 'awsvpc',
    requiresCompatibilities: ['FARGATE'],
    cpu: '512',
    memory: '1024',
    runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: 'X86_64' },
    volumes: [{ name: 'tmp' }],
    status: 'ACTIVE',
    containerDefinitions: [
      {
        name: 'api',
        image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dms-production:abc',
        environment: [
          { name: 'NODE_ENV', value: 'production' },
          { name: 'DATABASE_URL', value: APP_URL(databaseHost) },
          { name: 'DATABASE_REPLICA_URLS', value: replicaUrls },
        ],
        secrets: [{ name: 'PGPASSWORD', valueFrom: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-production/db-app-password-AbCdEf' }],
      },
    ],
  };
}

function service(revision: number, deployment?: { state: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED'; reason?: string }): { services: Service[] } {
  return {
    services: [
      {
        serviceName: 'dms-api-production',
        status: 'ACTIVE',
        taskDefinition: `${FAMILY_ARN}:${revision}`,
        desiredCount: 2,
        runningCount: 2,
        ...(deployment
          ? { deployments: [{ id: 'ecs-svc/222', status: 'PRIMARY', taskDefinition: `${FAMILY_ARN}:${revision}`, rolloutState: deployment.state, rolloutStateReason: deployment.reason, desiredCount: 2, runningCount: deployment.state === 'COMPLETED' ? 2 : 1 }] }
          : {}),
      },
    ],
  };
}

/** A primary that is gone, a replica that promotes over two polls, and a service that redeploys. */
function brokenPrimaryStack(aws: AwsMocks): void {
  aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: PRIMARY }).rejects(notFound());
  aws.rds
    .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: REPLICA })
    .resolvesOnce(replicating())
    .resolvesOnce(replicating('modifying'))
    .resolvesOnce(standalone('rebooting'))
    .resolves(standalone());
  aws.rds.on(PromoteReadReplicaCommand).resolves({ DBInstance: replicating('modifying').DBInstances[0] });
  aws.ecs.on(DescribeServicesCommand).resolvesOnce(service(42)).resolvesOnce(service(43, { state: 'IN_PROGRESS' })).resolves(service(43, { state: 'COMPLETED' }));
  aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: taskDefinition(42, OLD_HOST, APP_URL(NEW_HOST)), tags: [{ key: 'Stack', value: 'production' }] });
  aws.ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: taskDefinition(43, NEW_HOST, '') });
  aws.ecs.on(UpdateServiceCommand).resolves({ service: service(43, { state: 'IN_PROGRESS' }).services[0] });
}

describe('ops failover: promote the replica, point the API at it, prove it serves and accepts writes', () => {
  const aws = useAwsMocks();
  let api: Awaited<ReturnType<typeof localServer>>;
  let ready: { status: number; body: unknown };
  let outputs: string;
  before(async () => {
    api = await localServer((_request, response) => json(response, ready.status, ready.body));
    outputs = outputsFile({ apiUrl: api.url });
  });
  after(() => api.close());
  beforeEach(() => {
    ready = { status: 200, body: { status: 'ready', dependencies: { primary: 'up', 'primary-pool': 'up' } } };
  });
  const args = (...more: string[]) => ['failover', '--stack', 'production', '--outputs', outputs, ...more];

  it('promotes, waits until the instance is standalone and available, registers a revision on its endpoint, deploys it and checks readiness', async () => {
    brokenPrimaryStack(aws);
    const clock = fakeClock();
    const run = await runCli(args(), { clock });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(operationsInOrder(aws), [
      'DescribeDBInstances', 'DescribeDBInstances',
      'PromoteReadReplica',
      'DescribeDBInstances', 'DescribeDBInstances', 'DescribeDBInstances',
      'DescribeServices', 'DescribeTaskDefinition', 'RegisterTaskDefinition', 'UpdateService', 'DescribeServices', 'DescribeServices',
    ]);
    assert.deepEqual(aws.rds.commandCalls(PromoteReadReplicaCommand)[0]?.args[0].input, { DBInstanceIdentifier: REPLICA, BackupRetentionPeriod: 7 }, 'primary unreadable: 7 days, never RDS\'s 1');
    assert.deepEqual(clock.slept.slice(0, 3), [60_000, PROMOTION_POLL_MS, PROMOTION_POLL_MS], 'settles, then polls every 30 s');

    const registered = aws.ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    const environment = registered?.containerDefinitions?.[0]?.environment;
    assert.deepEqual(environment, [
      { name: 'NODE_ENV', value: 'production' },
      { name: 'DATABASE_URL', value: APP_URL(NEW_HOST) },
      { name: 'DATABASE_REPLICA_URLS', value: '' },
    ]);
    const { containerDefinitions: _containers, ...rest } = registered!;
    const { containerDefinitions: _running, taskDefinitionArn: _arn, revision: _revision, status: _status, ...unchanged } = taskDefinition(42, OLD_HOST, '');
    assert.deepEqual(rest, { ...unchanged, tags: [{ key: 'Stack', value: 'production' }] }, 'roles, sizes, volumes and tags are registered as they were');
    assert.deepEqual(registered?.containerDefinitions?.[0]?.secrets, taskDefinition(42, OLD_HOST, '').containerDefinitions?.[0]?.secrets);
    assert.deepEqual(aws.ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input, { cluster: 'dms-production', service: 'dms-api-production', taskDefinition: `${FAMILY_ARN}:43` });

    assert.match(run.stdout, /promote\s+done: PromoteReadReplica dms-production-replica-1/);
    assert.match(run.stdout, /repoint the service\s+done: dms-api-production:42 -> dms-api-production:43, deployment ecs-svc\/222 COMPLETED/);
    assert.match(run.stdout, /verify\s+done: .*\/health\/ready HTTP 200 ready \(primary up, primary-pool up\)/);
    assert.match(run.stdout, /result\s+the API serves from dms-production-replica-1 and it accepts writes/);
    assert.match(run.stdout, /next 1\s+no `pulumi up` or `pulumi refresh` of production/);
    assert.match(run.stdout, /next 2\s+make it durable.*npm run plan -- --stack production/);
  });

  it('--dry-run reads, then prints PromoteReadReplica, RegisterTaskDefinition and UpdateService and sends none', async () => {
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: PRIMARY }).resolves(instance(PRIMARY, { DBInstanceStatus: 'failed' }));
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: REPLICA }).resolves(replicating());
    aws.ecs.on(DescribeServicesCommand).resolves(service(42));
    aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: taskDefinition(42, OLD_HOST, APP_URL(NEW_HOST)) });
    const run = await runCli(args('--dry-run'));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(operationsInOrder(aws), ['DescribeDBInstances', 'DescribeDBInstances', 'DescribeServices', 'DescribeTaskDefinition']);
    assert.match(run.stdout, /dry run, not sent: rds PromoteReadReplica[^\n]*\n\s+\{"DBInstanceIdentifier":"dms-production-replica-1","BackupRetentionPeriod":35\}/);
    assert.match(run.stdout, /dry run, not sent: ecs RegisterTaskDefinition/);
    assert.ok(run.stdout.includes(`"value": "${APP_URL(NEW_HOST)}"`), 'the new DATABASE_URL is printed');
    assert.match(run.stdout, /dry run, not sent: ecs UpdateService/);
    assert.match(run.stdout, /result\s+dry run: nothing changed/);
  });

  it('refuses while the primary is available, unless --force', async () => {
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: PRIMARY }).resolves(instance(PRIMARY, {}));
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: REPLICA }).resolves(replicating());
    const refused = await runCli(args());
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /check\s+FAILED: primary dms-production is available: a failover would lose/);
    assert.match(refused.stdout, /promote\s+not started/);
    assert.equal(aws.rds.commandCalls(PromoteReadReplicaCommand).length, 0);

    aws.ecs.on(DescribeServicesCommand).resolves(service(42));
    aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: taskDefinition(42, OLD_HOST, APP_URL(NEW_HOST)) });
    const forced = await runCli(args('--force', '--dry-run'));
    assert.equal(forced.code, 0, forced.stdout + forced.stderr);
    assert.match(forced.stdout, /rds PromoteReadReplica/);
  });

  it('refuses a stack without a replica, and a replica that is missing or not available', async () => {
    const none = await runCli(['failover', '--stack', 'production', '--outputs', outputsFile({ apiUrl: api.url, dbReplicaIdentifier: undefined })]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no read replica \(no dbReplicaIdentifier output\): nothing to fail over to/);
    assert.equal(totalCalls(aws), 0);

    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: PRIMARY }).rejects(notFound());
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: REPLICA }).rejectsOnce(new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} })).resolves(replicating('storage-full'));
    const gone = await runCli(args());
    assert.equal(gone.code, 1);
    assert.match(gone.stdout, /check\s+FAILED: replica dms-production-replica-1 does not exist/);
    const unavailable = await runCli(args());
    assert.equal(unavailable.code, 1);
    assert.match(unavailable.stdout, /check\s+FAILED: replica dms-production-replica-1 is storage-full, not available/);
    assert.equal(aws.rds.commandCalls(PromoteReadReplicaCommand).length, 0);
  });

  it('a failing step ends in a report of what was done and what was not, exit 1; the re-run resumes', async () => {
    brokenPrimaryStack(aws);
    aws.ecs.on(RegisterTaskDefinitionCommand).rejectsOnce(Object.assign(new Error('User is not authorized to perform: iam:PassRole'), { name: 'AccessDeniedException', $metadata: {} }));
    const failed = await runCli(args());
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /promote\s+done/);
    assert.match(failed.stdout, /wait for the promoted instance\s+done: dms-production-replica-1 available at dms-production-replica-1\.c9akciq32\.eu-west-1\.rds\.amazonaws\.com:5433/);
    assert.match(failed.stdout, /repoint the service\s+FAILED: AccessDeniedException: User is not authorized to perform: iam:PassRole/);
    assert.match(failed.stdout, /verify\s+not started/);
    assert.match(failed.stdout, /result\s+FAILED at "repoint the service"/);
    assert.match(failed.stderr, /^error: failover stopped at "repoint the service"/m);

    // The re-run finds the instance promoted: no second PromoteReadReplica, no settle wait.
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: REPLICA }).resolves(standalone());
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service(42)).resolves(service(43, { state: 'COMPLETED' }));
    aws.ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: taskDefinition(43, NEW_HOST, '') });
    const clock = fakeClock();
    const resumed = await runCli(args(), { clock });
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.equal(aws.rds.commandCalls(PromoteReadReplicaCommand).length, 1);
    assert.match(resumed.stdout, /promote\s+skipped: dms-production-replica-1 is already a standalone instance/);
    assert.ok(!clock.slept.includes(60_000));
  });

  it('changes nothing on a service already on the promoted endpoint, and fails verify when readiness does not show the primary up', async () => {
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: PRIMARY }).rejects(notFound());
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: REPLICA }).resolves(standalone());
    aws.ecs.on(DescribeServicesCommand).resolves(service(43));
    aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: taskDefinition(43, NEW_HOST, '') });
    ready = { status: 503, body: { error: 'unavailable', dependencies: { primary: 'down', 'primary-pool': 'up' } } };
    const run = await runCli(args());
    assert.equal(run.code, 1);
    assert.equal(aws.ecs.commandCalls(RegisterTaskDefinitionCommand).length + aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
    assert.match(run.stdout, /repoint the service\s+skipped: dms-api-production:43 already uses/);
    assert.match(run.stdout, /verify\s+FAILED: .*HTTP 503 \(primary down, primary-pool up\)/);
  });
});
