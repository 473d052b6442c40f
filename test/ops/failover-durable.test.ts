// runbooks/database.md#failover-to-the-replica, end to end: `ops failover` on the stack's real
// outputs, then the `dms:database.failovers` change its report prints, planned; the plan must keep
// what the failover did, and `health-check --for database` (the runbook's end state) must pass on
// the new plan's outputs, and fail on the outputs the stack had before the change.
import assert from 'node:assert/strict';
import { GetQueryResultsCommand, StartQueryCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeServicesCommand, DescribeTaskDefinitionCommand, RegisterTaskDefinitionCommand, UpdateServiceCommand, type TaskDefinition } from '@aws-sdk/client-ecs';
import { DBInstanceNotFoundFault, DescribeDBInstancesCommand, PromoteReadReplicaCommand, type DBInstance } from '@aws-sdk/client-rds';
import { checkPolicies } from '../../infra/policy/harness.js';
import type { StackRun } from '../../infra/plan/run.js';
import { ofType, one, planned, plannedWith, section } from '../infra/fixture.js';
import { fakeClock, json, localServer, outputsFile, runCli, useAwsMocks, type AwsMocks } from './support.js';

const INSTANCE = 'aws:rds/instance:Instance';
const TASK_DEFINITION = 'aws:ecs/taskDefinition:TaskDefinition';

const hostOf = (url: string) => new URL(url.split(',')[0]!).hostname;
const environmentOf = (task: { inputs: Record<string, unknown> }) =>
  Object.fromEntries((JSON.parse(String(task.inputs['containerDefinitions'])) as { environment?: { name: string; value: string }[] }[]).flatMap((container) => container.environment ?? []).map((variable) => [variable.name, variable.value]));

describe('failover made durable: the program keeps the promoted primary, and the database runbook can end', () => {
  const aws = useAwsMocks();
  let beforeChange: StackRun;
  let afterChange: StackRun;
  let failoverReport: string;
  let api: Awaited<ReturnType<typeof localServer>>;
  const promotedAddress = () => String(one(beforeChange, INSTANCE, String(beforeChange.outputs['dbReplicaIdentifier'])).outputs['address']);

  /** RDS as it is once the replica is promoted and the old primary is lost. */
  function promotedRds(mocks: AwsMocks, extra: Record<string, DBInstance> = {}): void {
    const primary = String(beforeChange.outputs['dbInstanceIdentifier']);
    const replica = String(beforeChange.outputs['dbReplicaIdentifier']);
    mocks.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: primary }).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${primary} not found.`, $metadata: {} }));
    mocks.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: replica }).resolves({
      DBInstances: [{ DBInstanceIdentifier: replica, DBInstanceStatus: 'available', BackupRetentionPeriod: 35, Endpoint: { Address: promotedAddress(), Port: 5433 } }],
    });
    for (const [identifier, instance] of Object.entries(extra)) mocks.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: identifier }).resolves({ DBInstances: [instance] });
  }

  before(async () => {
    api = await localServer((request, response) =>
      json(response, 200, request.url === '/health' ? { status: 'ok' } : { status: 'ready', dependencies: { primary: 'up', 'primary-pool': 'up' } }),
    );
    beforeChange = await planned('production');
  });
  after(() => api.close());

  it('ops failover promotes the replica the stack names and prints the config change that makes it durable', async () => {
    const primary = String(beforeChange.outputs['dbInstanceIdentifier']);
    const replica = String(beforeChange.outputs['dbReplicaIdentifier']);
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: primary }).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${primary} not found.`, $metadata: {} }));
    aws.rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: replica })
      .resolvesOnce({ DBInstances: [{ DBInstanceIdentifier: replica, DBInstanceStatus: 'available', ReadReplicaSourceDBInstanceIdentifier: primary }] })
      .resolves({ DBInstances: [{ DBInstanceIdentifier: replica, DBInstanceStatus: 'available', BackupRetentionPeriod: 35, Endpoint: { Address: promotedAddress(), Port: 5433 } }] });
    aws.rds.on(PromoteReadReplicaCommand).resolves({});
    const apiTask = one(beforeChange, TASK_DEFINITION, String(beforeChange.outputs['taskDefinitionFamily']));
    const family = String(apiTask.inputs['family']);
    const running: TaskDefinition = {
      taskDefinitionArn: `arn:aws:ecs:us-east-2:123456789012:task-definition/${family}:7`,
      family,
      containerDefinitions: [{ name: 'api', environment: Object.entries(environmentOf(apiTask)).map(([name, value]) => ({ name, value })) }],
    };
    const service = (revision: number, rolloutState?: 'IN_PROGRESS' | 'COMPLETED') => ({
      services: [{ serviceName: String(beforeChange.outputs['serviceName']), taskDefinition: `arn:aws:ecs:us-east-2:123456789012:task-definition/${family}:${revision}`, desiredCount: 2, runningCount: 2, ...(rolloutState ? { deployments: [{ id: 'ecs-svc/1', status: 'PRIMARY', rolloutState, taskDefinition: `arn:aws:ecs:us-east-2:123456789012:task-definition/${family}:${revision}` }] } : {}) }],
    });
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service(7)).resolves(service(8, 'COMPLETED'));
    aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: running });
    aws.ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { ...running, taskDefinitionArn: `arn:aws:ecs:us-east-2:123456789012:task-definition/${family}:8` } });
    aws.ecs.on(UpdateServiceCommand).resolves({ service: service(8, 'IN_PROGRESS').services[0] });

    const run = await runCli(['failover', '--stack', 'production', '--outputs', outputsFile({ ...beforeChange.outputs, apiUrl: api.url })], { clock: fakeClock() });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(aws.rds.commandCalls(PromoteReadReplicaCommand)[0]?.args[0].input.DBInstanceIdentifier, replica);
    failoverReport = run.stdout;
    const change = /pulumi config set --path dms:database\.failovers (\d+) -s production/.exec(failoverReport);
    assert.ok(change, failoverReport);
    assert.equal(Number(change[1]), 1);
    assert.match(failoverReport, /pulumi up --refresh -s production/);
    afterChange = await plannedWith('production', (config) => {
      section(config, 'database')['failovers'] = Number(change[1]);
    });
  });

  it('declares the promoted instance as the primary, as it is: no replication source, backups and Multi-AZ on, nothing that forces a replacement', () => {
    const promoted = String(beforeChange.outputs['dbReplicaIdentifier']);
    assert.equal(afterChange.outputs['dbInstanceIdentifier'], promoted);
    const primary = one(afterChange, INSTANCE, promoted);
    assert.equal(primary.inputs['replicateSourceDb'], undefined);
    assert.equal(primary.inputs['backupRetentionPeriod'], 35);
    assert.equal(primary.inputs['multiAz'], true);
    assert.equal(primary.inputs['manageMasterUserPassword'], true);
    assert.equal(primary.inputs['finalSnapshotIdentifier'], `${promoted}-final`);
    // Inherited from its source, and forcing a replacement if declared differently.
    for (const inherited of ['dbName', 'username', 'engineVersion', 'availabilityZone']) assert.equal(primary.inputs[inherited], undefined, inherited);
    assert.equal(primary.inputs['kmsKeyId'], one(beforeChange, INSTANCE, String(beforeChange.outputs['dbInstanceIdentifier'])).inputs['kmsKeyId'], 'same key: kmsKeyId forces a replacement');
    assert.equal(afterChange.outputs['dbFailovers'], 1);
  });

  it('declares a new replica of it in the other zone, and forgets the old primary without deleting it', () => {
    const promoted = String(beforeChange.outputs['dbReplicaIdentifier']);
    const oldPrimary = String(beforeChange.outputs['dbInstanceIdentifier']);
    const replicaId = String(afterChange.outputs['dbReplicaIdentifier']);
    assert.ok(![promoted, oldPrimary].includes(replicaId), replicaId);
    const replica = one(afterChange, INSTANCE, replicaId);
    assert.equal(replica.inputs['replicateSourceDb'], one(afterChange, INSTANCE, promoted).outputs['identifier']);
    assert.notEqual(replica.inputs['availabilityZone'], one(beforeChange, INSTANCE, promoted).inputs['availabilityZone'], 'not in the zone the promoted instance was created in');
    assert.deepEqual(ofType(afterChange, INSTANCE).map((instance) => instance.name).sort(), [promoted, replicaId].sort());
    for (const instance of ofType(afterChange, INSTANCE)) assert.equal(instance.retainOnDelete, true, `${instance.name}: a production instance is forgotten, never deleted, when the program drops it`);
    assert.ok(ofType(afterChange, 'aws:cloudwatch/logGroup:LogGroup').some((group) => group.inputs['name'] === `/aws/rds/instance/${oldPrimary}/postgresql`), "the old primary's logs are kept");
  });

  it('points the API, the jobs and the alarms at the promoted primary and the new replica', () => {
    const primaryHost = String(one(afterChange, INSTANCE, String(afterChange.outputs['dbInstanceIdentifier'])).outputs['address']);
    const replicaHost = String(one(afterChange, INSTANCE, String(afterChange.outputs['dbReplicaIdentifier'])).outputs['address']);
    assert.equal(primaryHost, promotedAddress(), 'the endpoint ops failover moved the API to');
    const tasks = ofType(afterChange, TASK_DEFINITION).filter((task) => environmentOf(task)['DATABASE_URL'] !== undefined);
    assert.ok(tasks.length >= 3, 'the API, the audit export and purge jobs, the migration');
    for (const task of tasks) {
      const environment = environmentOf(task);
      if (task.name.includes('drill')) continue;
      assert.equal(hostOf(environment['DATABASE_URL']!), primaryHost, task.name);
      if (environment['DATABASE_REPLICA_URLS']) assert.equal(hostOf(environment['DATABASE_REPLICA_URLS']), replicaHost, task.name);
    }
    const instances = new Set([afterChange.outputs['dbInstanceIdentifier'], afterChange.outputs['dbReplicaIdentifier']]);
    const alarmed = ofType(afterChange, 'aws:cloudwatch/metricAlarm:MetricAlarm')
      .flatMap((alarm) => [alarm.inputs['dimensions'], ...((alarm.inputs['metricQueries'] ?? []) as { metric?: { dimensions?: unknown } }[]).map((query) => query.metric?.dimensions)])
      .map((dimensions) => (dimensions as Record<string, string> | undefined)?.['DBInstanceIdentifier'])
      .filter((identifier) => identifier !== undefined);
    assert.ok(alarmed.length > 0);
    for (const identifier of alarmed) assert.ok(instances.has(identifier), `an alarm watches ${identifier}`);
  });

  it('passes the policy pack', async () => {
    assert.deepEqual(await checkPolicies(afterChange.resources), []);
  });

  describe('health-check --for database: the runbook end state', () => {
    const healthy = (mocks: AwsMocks) => {
      mocks.ecs.on(DescribeServicesCommand).resolves({ services: [{ status: 'ACTIVE', desiredCount: 2, runningCount: 2, pendingCount: 0 }] });
      mocks.cloudwatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [], CompositeAlarms: [] });
      mocks.logs.on(StartQueryCommand).resolves({ queryId: 'q' });
      mocks.logs.on(GetQueryResultsCommand).resolves({ status: 'Complete', results: [[{ field: 'event', value: 'http_access' }, { field: 'lines', value: '900' }]] });
    };
    const check = (outputs: Record<string, unknown>) => runCli(['health-check', '--stack', 'production', '--for', 'database', '--outputs', outputsFile({ ...outputs, apiUrl: api.url })]);

    it('fails while the stack still names the old primary and the promoted instance as its replica', async () => {
      healthy(aws);
      promotedRds(aws);
      const result = await check(beforeChange.outputs);
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stdout, /FAIL\s+rds primary\s+.*DBInstanceNotFound/);
      assert.match(result.stdout, /FAIL\s+rds replica\s+.*available but standalone, not a replica of/);
    });

    it('passes once the program declares the promoted primary and its new replica is replicating', async () => {
      healthy(aws);
      const replicaId = String(afterChange.outputs['dbReplicaIdentifier']);
      promotedRds(aws, { [replicaId]: { DBInstanceIdentifier: replicaId, DBInstanceStatus: 'available', ReadReplicaSourceDBInstanceIdentifier: String(afterChange.outputs['dbInstanceIdentifier']) } });
      const result = await check(afterChange.outputs);
      assert.equal(result.code, 0, result.stdout);
      assert.match(result.stdout, /ok\s+rds primary\s+.*available/);
      assert.match(result.stdout, /ok\s+rds replica\s+.*replicating from/);
    });
  });
});
