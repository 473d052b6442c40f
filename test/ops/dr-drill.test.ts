import assert from 'node:assert/strict';
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeTaskDefinitionCommand, DescribeTasksCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import {
  DBInstanceAlreadyExistsFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  InvalidDBInstanceStateFault,
  ModifyDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
} from '@aws-sdk/client-rds';
import { GetRoleCommand, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { DATABASE_PORT } from '../../infra/database.js';
import {
  FIXTURE,
  fakeClock,
  fixtureOutputs,
  operationsInOrder,
  outputsFile,
  runCli,
  STACK_ARGS,
  T0,
  totalCalls,
  useAwsMocks,
  type AwsMocks,
} from './support.js';
import {
  deleteCalls,
  DRILL_ID,
  drillInstance,
  EXPECTED_DELETE,
  healthyDrill,
  KMS_KEY,
  MASTER_PASSWORD,
  MASTER_SECRET,
  OPERATOR_ROLE,
  operatorMay,
  APP_PASSWORD,
  APP_PASSWORD_SECRET,
  primary,
  snapshot,
  SNAPSHOT_TIME,
  TASK_ARN,
} from './drill-fixture.js';

describe('ops dr-drill: a drill from the newest automated snapshot to the report', () => {
  const aws = useAwsMocks();

  it('restores the newest available snapshot into the stack network, private, tagged, without deletion protection', async () => {
    healthyDrill(aws);
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    assert.deepEqual(aws.rds.commandCalls(DescribeDBSnapshotsCommand).map((call) => call.args[0].input), [
      { DBInstanceIdentifier: 'dms-production', SnapshotType: 'automated', Marker: undefined },
      { DBInstanceIdentifier: 'dms-production', SnapshotType: 'automated', Marker: 'page-2' },
    ]);
    assert.deepEqual(aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0]?.args[0].input, {
      DBInstanceIdentifier: DRILL_ID,
      DBSnapshotIdentifier: 'rds:dms-production-2025-03-10-03-10',
      DBSubnetGroupName: 'dms-production-db',
      VpcSecurityGroupIds: ['sg-0db0000000000aaaa'],
      DBParameterGroupName: 'dms-production-pg16',
      DBInstanceClass: 'db.t4g.medium',
      PubliclyAccessible: false,
      DeletionProtection: false,
      MultiAZ: false,
      BackupRetentionPeriod: 0,
      Tags: [
        { Key: 'dms:drill', Value: 'true' },
        { Key: 'dms:drill-started', Value: '2025-03-10T09:15:00Z' },
      ],
    });
  });

  it("aligns the master password with the primary's current secret, without printing it", async () => {
    healthyDrill(aws);
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.secrets.commandCalls(GetSecretValueCommand)[0]?.args[0].input, { SecretId: MASTER_SECRET });
    assert.deepEqual(aws.rds.commandCalls(ModifyDBInstanceCommand)[0]?.args[0].input, {
      DBInstanceIdentifier: DRILL_ID,
      MasterUserPassword: MASTER_PASSWORD,
      ApplyImmediately: true,
    });
    assert.ok(!run.stdout.includes(MASTER_PASSWORD) && !run.stderr.includes(MASTER_PASSWORD));
    const runTaskIndex = operationsInOrder(aws).indexOf('RunTask');
    const lastDescribe = operationsInOrder(aws).lastIndexOf('DescribeDBInstances');
    assert.ok(lastDescribe < runTaskIndex, 'the verify task starts only once the password change is applied');
  });

  it('verifies from inside the VPC with the verify task, pointed at the drill endpoint as dms_admin', async () => {
    healthyDrill(aws);
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.ecs.commandCalls(RunTaskCommand)[0]?.args[0].input, {
      cluster: 'dms-production',
      taskDefinition: fixtureOutputs.drillVerifyTaskDefinitionArn,
      launchType: 'FARGATE',
      count: 1,
      startedBy: 'dms-ops-dr-drill',
      networkConfiguration: {
        awsvpcConfiguration: { subnets: fixtureOutputs.privateSubnetIds, securityGroups: ['sg-0svc000000000bbbb'], assignPublicIp: 'DISABLED' },
      },
      overrides: {
        containerOverrides: [
          {
            name: 'verify',
            command: ['node', 'dist/api/cli.js', 'drill:verify'],
            environment: [
              { name: 'DATABASE_URL', value: `postgres://dms_admin@${DRILL_ID}.abcdefgh.eu-west-1.rds.amazonaws.com:5433/dms?sslmode=verify-full` },
              { name: 'DATABASE_REPLICA_URLS', value: '' },
            ],
          },
        ],
      },
      tags: [
        { key: 'dms:drill', value: 'true' },
        { key: 'dms:drill-instance', value: DRILL_ID },
      ],
    });
    assert.deepEqual(aws.ecs.commandCalls(DescribeTasksCommand)[0]?.args[0].input, { cluster: 'dms-production', tasks: [TASK_ARN] });
    assert.deepEqual(aws.logs.commandCalls(GetLogEventsCommand)[0]?.args[0].input, {
      logGroupName: '/dms/production/api',
      logStreamName: 'drill-verify/verify/0a1b2c3d4e5f',
      startFromHead: true,
    });
  });

  it('reports RTO, RPO and the row counts, then deletes the drill instance without a final snapshot', async () => {
    healthyDrill(aws);
    const clock = fakeClock();
    const run = await runCli(['dr-drill', ...STACK_ARGS], { clock });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
    // On the fake clock: two 30 s polls until available, 15 s delay + one 15 s poll for the password, one 15 s task poll.
    assert.equal(clock.slept.reduce((sum, ms) => sum + ms, 0), 105_000);
    assert.match(run.stdout, /RTO\s+1m45s \(restore request to verified\)/);
    assert.match(run.stdout, /RPO\s+6h05m \(drill start 2025-03-10T09:15:00Z vs data as of 2025-03-10T03:10:00Z\)/);
    assert.match(run.stdout, /row counts\s+patients=1200, visits=5400, audit_logs=88000/);
    assert.match(run.stdout, /source\s+snapshot rds:dms-production-2025-03-10-03-10 \(automated, taken 2025-03-10T03:10:00Z, data as of 2025-03-10T03:10:00Z\)/);
    assert.match(run.stdout, /clean-up\s+dms-drill-production-202503100915 deletion requested/);
    assert.match(run.stdout, /result\s+PASS/);
    assert.match(run.stderr, /waiting for dms-drill-production-202503100915 to be available: creating/, 'progress goes to stderr');
  });

  it('measures RTO from the restore request to the verified task on the clock', async () => {
    healthyDrill(aws);
    const clock = fakeClock();
    const run = await runCli(['dr-drill', ...STACK_ARGS], { clock });
    assert.equal(run.code, 0, run.stderr);
    const verified = /verified\s+(\S+)/.exec(run.stdout)?.[1];
    const requested = /restore requested\s+(\S+)/.exec(run.stdout)?.[1];
    assert.equal(requested, '2025-03-10T09:15:00Z');
    assert.equal(verified, clock.now().toISOString().replace(/\.\d{3}Z$/, 'Z'));
  });

  it("verifies as the app role after a password rotation: the copy's master user gets today's app password, and drill:verify resets dms_app through it", async () => {
    healthyDrill(aws, 'dms_app');
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.secrets.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input), [{ SecretId: APP_PASSWORD_SECRET }]);
    assert.deepEqual(aws.rds.commandCalls(ModifyDBInstanceCommand)[0]?.args[0].input, { DBInstanceIdentifier: DRILL_ID, MasterUserPassword: APP_PASSWORD, ApplyImmediately: true });
    const environment = aws.ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.overrides?.containerOverrides?.[0]?.environment;
    assert.deepEqual(environment, [
      { name: 'DATABASE_URL', value: `postgres://dms_app@${DRILL_ID}.abcdefgh.eu-west-1.rds.amazonaws.com:5433/dms?sslmode=verify-full` },
      { name: 'DATABASE_REPLICA_URLS', value: '' },
      { name: 'DRILL_APP_ROLE_RESET_BY', value: 'dms_admin' },
    ]);
    const operations = operationsInOrder(aws);
    assert.ok(operations.lastIndexOf('DescribeDBInstances') < operations.indexOf('RunTask'), 'verify starts once the password is applied');
    assert.match(run.stdout, /master password\s+set to the verify task's dms_app password \(value not shown\); drill:verify resets dms_app to it as dms_admin/);
    assert.ok(!run.stdout.includes(APP_PASSWORD) && !run.stderr.includes(APP_PASSWORD), 'the password is never printed');
  });

  it("gives a kept copy the primary's master password back after verify, so it can be promoted", async () => {
    healthyDrill(aws, 'dms_app');
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--keep']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      aws.rds.commandCalls(ModifyDBInstanceCommand).map((call) => call.args[0].input.MasterUserPassword),
      [APP_PASSWORD, MASTER_PASSWORD],
    );
    const operations = operationsInOrder(aws);
    assert.ok(operations.lastIndexOf('ModifyDBInstance') > operations.indexOf('DescribeTasks'), 'after verify');
    assert.match(run.stdout, /kept master password\s+being set from arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1111-AbCdEf/);
  });

  it('logs in as dms_admin to database dms when the verify task definition sets no DATABASE_URL', async () => {
    healthyDrill(aws, undefined);
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    const environment = aws.ecs.commandCalls(RunTaskCommand)[0]?.args[0].input.overrides?.containerOverrides?.[0]?.environment;
    assert.equal(environment?.[0]?.value, `postgres://dms_admin@${DRILL_ID}.abcdefgh.eu-west-1.rds.amazonaws.com:5433/dms?sslmode=verify-full`);
    assert.equal(aws.rds.commandCalls(ModifyDBInstanceCommand).length, 1);
  });

  it('restores a point in time of the primary with RestoreDBInstanceToPointInTime, RPO from that time', async () => {
    healthyDrill(aws);
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--point-in-time', '2025-03-10T09:00:00Z']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.rds.commandCalls(DescribeDBSnapshotsCommand).length, 0);
    assert.equal(aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);
    const input = aws.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0]?.args[0].input;
    assert.equal(input?.SourceDBInstanceIdentifier, 'dms-production');
    assert.equal(input?.TargetDBInstanceIdentifier, DRILL_ID);
    assert.deepEqual(input?.RestoreTime, new Date('2025-03-10T09:00:00Z'));
    assert.equal(input?.DBSubnetGroupName, 'dms-production-db');
    assert.equal(input?.PubliclyAccessible, false);
    assert.match(run.stdout, /RPO\s+15m \(drill start/);
  });

  it('measures RPO from the data in the snapshot (SnapshotDatabaseTime), not from when a copy of it was made', async () => {
    healthyDrill(aws);
    aws.rds.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'evidence-copy' }).resolves({
      DBSnapshots: [
        {
          ...snapshot('evidence-copy', new Date('2025-03-10T08:00:00Z')),
          SnapshotType: 'manual',
          OriginalSnapshotCreateTime: new Date('2025-03-09T03:10:00Z'),
          SnapshotDatabaseTime: new Date('2025-03-09T03:09:30Z'),
        },
      ],
    });
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--snapshot', 'evidence-copy']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /RPO\s+1d06h05m \(drill start 2025-03-10T09:15:00Z vs data as of 2025-03-09T03:09:30Z\)/);
  });

  it('restores the latest restorable time with --point-in-time latest, RPO from the primary\'s LatestRestorableTime', async () => {
    healthyDrill(aws);
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--point-in-time', 'latest']);
    assert.equal(run.code, 0, run.stderr);
    const input = aws.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0]?.args[0].input;
    assert.equal(input?.UseLatestRestorableTime, true);
    assert.equal(input?.RestoreTime, undefined);
    assert.match(run.stdout, /source\s+latest restorable time of dms-production \(2025-03-10T09:10:00Z when read\)/);
    assert.match(run.stdout, /RPO\s+5m \(drill start/);
  });

  it('restores a --keep copy with the primary\'s production settings, and adds its Performance Insights and monitoring once available', async () => {
    healthyDrill(aws);
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production' }).resolves({
      DBInstances: [
        {
          ...primary,
          MultiAZ: true,
          BackupRetentionPeriod: 35,
          PreferredBackupWindow: '03:00-03:30',
          IAMDatabaseAuthenticationEnabled: true,
          EnabledCloudwatchLogsExports: ['postgresql', 'upgrade'],
          CopyTagsToSnapshot: true,
          PerformanceInsightsEnabled: true,
          PerformanceInsightsKMSKeyId: KMS_KEY,
          PerformanceInsightsRetentionPeriod: 7,
          MonitoringInterval: 60,
          MonitoringRoleArn: 'arn:aws:iam::123456789012:role/dms-production-rds-monitoring',
        },
      ],
    });
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--point-in-time', '2025-03-10T09:00:00Z', '--keep']);
    assert.equal(run.code, 0, run.stderr);
    const input = aws.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0]?.args[0].input;
    assert.deepEqual(
      {
        MultiAZ: input?.MultiAZ,
        BackupRetentionPeriod: input?.BackupRetentionPeriod,
        PreferredBackupWindow: input?.PreferredBackupWindow,
        EnableIAMDatabaseAuthentication: input?.EnableIAMDatabaseAuthentication,
        EnableCloudwatchLogsExports: input?.EnableCloudwatchLogsExports,
        CopyTagsToSnapshot: input?.CopyTagsToSnapshot,
        PubliclyAccessible: input?.PubliclyAccessible,
      },
      {
        MultiAZ: true,
        BackupRetentionPeriod: 35,
        PreferredBackupWindow: '03:00-03:30',
        EnableIAMDatabaseAuthentication: true,
        EnableCloudwatchLogsExports: ['postgresql', 'upgrade'],
        CopyTagsToSnapshot: true,
        PubliclyAccessible: false,
      },
    );
    assert.deepEqual(aws.rds.commandCalls(ModifyDBInstanceCommand)[0]?.args[0].input, {
      DBInstanceIdentifier: DRILL_ID,
      MasterUserPassword: MASTER_PASSWORD,
      EnablePerformanceInsights: true,
      PerformanceInsightsKMSKeyId: KMS_KEY,
      PerformanceInsightsRetentionPeriod: 7,
      MonitoringInterval: 60,
      MonitoringRoleArn: 'arn:aws:iam::123456789012:role/dms-production-rds-monitoring',
      ApplyImmediately: true,
    });
    assert.match(run.stdout, /kept copy\s+restored with the primary's Multi-AZ, backups, log exports and IAM auth; EnablePerformanceInsights/);
  });

  it('restores a named snapshot after checking it', async () => {
    healthyDrill(aws);
    aws.rds.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: 'pre-migration-0007' }).resolves({
      DBSnapshots: [{ ...snapshot('pre-migration-0007', new Date('2025-03-01T00:00:00Z')), SnapshotType: 'manual' }],
    });
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--snapshot', 'pre-migration-0007']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0]?.args[0].input.DBSnapshotIdentifier, 'pre-migration-0007');
  });

  it('keeps a verified drill instance with --keep and says how to delete it', async () => {
    healthyDrill(aws);
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--keep']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(deleteCalls(aws), []);
    assert.match(run.stdout, /clean-up\s+KEPT \(--keep\): delete it when done: aws rds delete-db-instance --region eu-west-1 --db-instance-identifier dms-drill-production-202503100915/);
  });
});

describe('ops dr-drill: no drill instance is left behind when a step fails', () => {
  const aws = useAwsMocks();
  const failures: [string, (aws: AwsMocks) => void, RegExp][] = [
    [
      'the restore ends in a failure state',
      (mocks) => mocks.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID }).resolves({ DBInstances: [drillInstance('incompatible-parameters')] }),
      /wait for the restore: dms-drill-production-202503100915 went incompatible-parameters/,
    ],
    [
      'the status poll errors',
      (mocks) => mocks.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID }).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: {} })),
      /wait for the restore: ThrottlingException: Rate exceeded/,
    ],
    [
      'the master secret cannot be read',
      (mocks) => mocks.secrets.on(GetSecretValueCommand, { SecretId: MASTER_SECRET }).rejects(Object.assign(new Error('not authorized to perform secretsmanager:GetSecretValue'), { name: 'AccessDeniedException', $metadata: {} })),
      /align the master password: AccessDeniedException/,
    ],
    [
      'the password change is rejected',
      (mocks) => mocks.rds.on(ModifyDBInstanceCommand).rejects(new InvalidDBInstanceStateFault({ message: 'Instance is not available', $metadata: {} })),
      /align the master password: .*Instance is not available/,
    ],
    [
      'RunTask starts no task',
      (mocks) => mocks.ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ arn: 'arn:subnet', reason: 'RESOURCE:ENI' }] }),
      /verify from inside the VPC: RunTask started no task: arn:subnet RESOURCE:ENI/,
    ],
    [
      'the task cannot be followed',
      (mocks) => mocks.ecs.on(DescribeTasksCommand).rejects(Object.assign(new Error('boom'), { name: 'ServerException', $metadata: {} })),
      /verify from inside the VPC: ServerException: boom/,
    ],
    [
      'drill:verify exits non-zero',
      (mocks) =>
        mocks.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ lastStatus: 'STOPPED', stoppedReason: 'Essential container in task exited', containers: [{ name: 'verify', exitCode: 3 }] }] }),
      /verify from inside the VPC: drill:verify exited 3: Essential container in task exited/,
    ],
    [
      'the verify task never starts',
      (mocks) => mocks.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ lastStatus: 'STOPPED', stopCode: 'TaskFailedToStart', stoppedReason: 'CannotPullContainerError', containers: [{ name: 'verify' }] }] }),
      /verify from inside the VPC: drill:verify exited without an exit code: CannotPullContainerError/,
    ],
    [
      'the restore never becomes available in time',
      (mocks) => mocks.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID }).resolves({ DBInstances: [drillInstance('creating')] }),
      /wait for the restore: gave up after 2h waiting for dms-drill-production-202503100915 to be available \(last status: creating\)/,
    ],
  ];
  for (const [what, breakStep, message] of failures) {
    it(`deletes the drill instance when ${what}, reports FAIL and exits 1`, async () => {
      healthyDrill(aws);
      breakStep(aws);
      const run = await runCli(['dr-drill', ...STACK_ARGS]);
      assert.equal(run.code, 1, run.stdout);
      assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
      assert.match(run.stdout, new RegExp(`result\\s+FAIL: ${message.source}`));
    });
  }

  it('stops the verify task and deletes the instance when the task does not stop in time', async () => {
    healthyDrill(aws);
    aws.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ taskArn: TASK_ARN, lastStatus: 'RUNNING' }] });
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.deepEqual(aws.ecs.commandCalls(StopTaskCommand).map((call) => call.args[0].input), [
      { cluster: 'dms-production', task: TASK_ARN, reason: `dr-drill clean-up of ${DRILL_ID}` },
    ]);
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
    const operations = operationsInOrder(aws);
    assert.ok(operations.indexOf('StopTask') < operations.indexOf('DeleteDBInstance'), 'the task that reads the instance stops first');
    assert.match(run.stdout, /verify task clean-up\s+verify task 0a1b2c3d4e5f stopped/);
    assert.match(run.stdout, /result\s+FAIL: verify from inside the VPC: gave up after 30m waiting for verify task/);
  });

  it('stops the verify task when it cannot be followed, and not when it stopped by itself', async () => {
    healthyDrill(aws);
    aws.ecs.on(DescribeTasksCommand).rejects(Object.assign(new Error('boom'), { name: 'ServerException', $metadata: {} }));
    await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(aws.ecs.commandCalls(StopTaskCommand).length, 1);

    healthyDrill(aws);
    aws.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ lastStatus: 'STOPPED', containers: [{ name: 'verify', exitCode: 1 }] }] });
    aws.ecs.resetHistory();
    await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(aws.ecs.commandCalls(StopTaskCommand).length, 0);
  });

  it('prints the stop-task command and fails the drill when the verify task cannot be stopped', async () => {
    healthyDrill(aws);
    aws.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ taskArn: TASK_ARN, lastStatus: 'RUNNING' }] });
    aws.ecs.on(StopTaskCommand).rejects(Object.assign(new Error('not authorized to perform ecs:StopTask'), { name: 'AccessDeniedException', $metadata: {} }));
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, new RegExp(`verify task clean-up\\s+FAILED to stop verify task 0a1b2c3d4e5f .*aws ecs stop-task --region eu-west-1 --cluster dms-production --task ${TASK_ARN}`));
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
  });

  it('keeps a --keep restore when verification fails: the report says it is not verified, exit 1', async () => {
    healthyDrill(aws);
    aws.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ lastStatus: 'STOPPED', containers: [{ name: 'verify', exitCode: 1 }] }] });
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--point-in-time', '2025-03-10T09:00:00Z', '--keep']);
    assert.equal(run.code, 1);
    assert.deepEqual(deleteCalls(aws), []);
    assert.match(run.stdout, /clean-up\s+KEPT \(--keep, NOT verified\): delete it when done: aws rds delete-db-instance/);
    assert.match(run.stdout, /result\s+FAIL: verify from inside the VPC: drill:verify exited 1/);
  });

  it('keeps a --keep restore when verify cannot even start, but deletes one that never became available', async () => {
    healthyDrill(aws);
    aws.ecs.on(RunTaskCommand).rejects(Object.assign(new Error('not authorized to perform ecs:TagResource'), { name: 'AccessDeniedException', $metadata: {} }));
    const kept = await runCli(['dr-drill', ...STACK_ARGS, '--keep']);
    assert.equal(kept.code, 1);
    assert.deepEqual(deleteCalls(aws), []);

    healthyDrill(aws);
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID }).resolves({ DBInstances: [drillInstance('incompatible-parameters')] });
    const failed = await runCli(['dr-drill', ...STACK_ARGS, '--keep']);
    assert.equal(failed.code, 1);
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
  });

  it('tags a --keep restore so drill-sweep leaves it alone', async () => {
    healthyDrill(aws);
    await runCli(['dr-drill', ...STACK_ARGS, '--keep']);
    const tags = aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0]?.args[0].input.Tags;
    assert.deepEqual(tags?.at(-1), { Key: 'dms:drill-keep', Value: 'true' });
  });

  it('deletes it when the operator interrupts the wait (Ctrl-C)', async () => {
    healthyDrill(aws);
    const interrupt = new AbortController();
    const clock = fakeClock();
    const sleep = clock.sleep;
    clock.sleep = async (ms, signal) => {
      if (clock.slept.length === 1) interrupt.abort(new Error('interrupted by the operator'));
      return sleep(ms, signal);
    };
    const run = await runCli(['dr-drill', ...STACK_ARGS], { clock, signal: interrupt.signal });
    assert.equal(run.code, 1);
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
    assert.match(run.stdout, /FAIL: wait for the restore: interrupted by the operator/);
  });

  it('deletes it when the restore call timed out but the instance was created anyway', async () => {
    healthyDrill(aws);
    aws.rds.on(RestoreDBInstanceFromDBSnapshotCommand).rejects(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }));
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
    assert.match(run.stdout, /FAIL: restore: TimeoutError: socket hang up/);
  });

  it('deletes nothing when RDS refuses the restore (nothing was created, the name may be someone else\'s)', async () => {
    healthyDrill(aws);
    aws.rds.on(RestoreDBInstanceFromDBSnapshotCommand).rejects(new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', $metadata: { httpStatusCode: 400 } }));
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.deepEqual(deleteCalls(aws), []);
    assert.match(run.stderr, /^error: DBInstanceAlreadyExists/m);
  });

  it('waits out a state RDS cannot delete from, then deletes', async () => {
    healthyDrill(aws);
    aws.ecs.on(RunTaskCommand).rejects(Object.assign(new Error('Access denied'), { name: 'AccessDeniedException', $metadata: {} }));
    aws.rds
      .on(DeleteDBInstanceCommand)
      .rejectsOnce(new InvalidDBInstanceStateFault({ message: 'Instance is currently backing-up', $metadata: {} }))
      .resolves({});
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE, EXPECTED_DELETE]);
    assert.match(run.stdout, /clean-up\s+dms-drill-production-202503100915 deletion requested/);
  });

  it('prints the exact delete command when clean-up itself fails', async () => {
    healthyDrill(aws);
    aws.ecs.on(RunTaskCommand).rejects(Object.assign(new Error('Access denied'), { name: 'AccessDeniedException', $metadata: {} }));
    aws.rds.on(DeleteDBInstanceCommand).rejects(Object.assign(new Error('not authorized to perform rds:DeleteDBInstance'), { name: 'AccessDenied', $metadata: {} }));
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /clean-up\s+FAILED to delete dms-drill-production-202503100915 .*aws rds delete-db-instance --region eu-west-1 --db-instance-identifier dms-drill-production-202503100915 --skip-final-snapshot --delete-automated-backups/);
  });

  it('still passes when the verify output cannot be read: the exit code decides', async () => {
    healthyDrill(aws);
    aws.logs.on(GetLogEventsCommand).rejects(Object.assign(new Error('The specified log stream does not exist.'), { name: 'ResourceNotFoundException', $metadata: {} }));
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(aws.logs.commandCalls(GetLogEventsCommand).length, 3);
    assert.match(run.stdout, /verify output\s+not read \(ResourceNotFoundException: The specified log stream does not exist\.\)/);
    assert.deepEqual(deleteCalls(aws), [EXPECTED_DELETE]);
  });
});

describe('ops dr-drill: refusals before anything is created', () => {
  const aws = useAwsMocks();

  const usage: [string, string[], Record<string, unknown> | undefined, RegExp][] = [
    ['both --snapshot and --point-in-time', ['--snapshot', 'x', '--point-in-time', '2025-03-10T09:00:00Z'], undefined, /give --snapshot or --point-in-time, not both/],
    ['a point in time in the future', ['--point-in-time', '2025-03-10T10:00:00Z'], undefined, /--point-in-time 2025-03-10T10:00:00Z is in the future \(now 2025-03-10T09:15:00Z\)/],
    ['a point in time without a zone', ['--point-in-time', '2025-03-10 09:00'], undefined, /--point-in-time must be ISO 8601 with a zone/],
    ['a malformed snapshot id', ['--snapshot', 'bad snapshot!'], undefined, /--snapshot "bad snapshot!" is not a DB snapshot identifier or ARN/],
    ['a drill id that is the primary', [], { dbInstanceIdentifier: DRILL_ID }, /drill instance id dms-drill-production-202503100915 is the stack's own database/],
    ['a drill id that is the replica', [], { dbReplicaIdentifier: DRILL_ID }, /is the stack's own database/],
    ['a bad --timeout', ['--timeout', 'forever'], undefined, /--timeout must be a duration/],
  ];
  for (const [what, args, outputs, message] of usage) {
    it(`refuses ${what} with exit 2 and makes no AWS call`, async () => {
      const run = await runCli(['dr-drill', '--stack', 'production', '--outputs', outputs ? outputsFile(outputs) : FIXTURE, ...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(totalCalls(aws), 0);
    });
  }

  it('refuses a stack name that cannot form an RDS identifier', async () => {
    const run = await runCli(['dr-drill', '--stack', 'prod_eu', '--outputs', FIXTURE]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /drill instance id dms-drill-prod_eu-202503100915 may hold only lower-case letters/);
  });

  it('names every output the drill needs that the stack lacks', async () => {
    const run = await runCli(['dr-drill', '--stack', 'production', '--outputs', outputsFile({ drillVerifyTaskDefinitionArn: undefined, dbKmsKeyArn: 'not-an-arn', privateSubnetIds: [] })]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /missing drillVerifyTaskDefinitionArn; malformed dbKmsKeyArn \(expected an ARN\), privateSubnetIds \(expected a non-empty list of strings\)/);
    assert.equal(totalCalls(aws), 0);
  });

  const preflight: [string, (aws: AwsMocks) => void, RegExp][] = [
    ['the primary has no snapshot', (mocks) => mocks.rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [] }), /dms-production has no available automated snapshot/],
    [
      'the snapshot is not encrypted with the stack key',
      (mocks) => mocks.rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ ...snapshot('rds:x', SNAPSHOT_TIME), KmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/other' }] }),
      /snapshot rds:x is encrypted with arn:aws:kms:eu-west-1:123456789012:key\/other, not the stack's dbKmsKeyArn/,
    ],
    [
      'the snapshot is not encrypted at all',
      (mocks) => mocks.rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ ...snapshot('rds:x', SNAPSHOT_TIME), Encrypted: false }] }),
      /snapshot rds:x is not encrypted; refusing to restore PHI from it/,
    ],
    [
      'the verify task definition does not run drill:verify',
      (mocks) => mocks.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: { containerDefinitions: [{ name: 'api', command: ['migrate'] }, { name: 'xray-daemon' }] } }),
      /has no container that runs drill:verify/,
    ],
  ];
  for (const [what, breakStep, message] of preflight) {
    it(`stops with exit 1 and restores nothing when ${what}`, async () => {
      healthyDrill(aws);
      breakStep(aws);
      const run = await runCli(['dr-drill', ...STACK_ARGS]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, message);
      assert.equal(aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);
      assert.deepEqual(deleteCalls(aws), []);
    });
  }

  it("stops before any restore when the operator's role lacks a permission a later step needs (ecs:TagResource)", async () => {
    healthyDrill(aws);
    operatorMay(aws, ['ecs:TagResource']);
    const run = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`error: ${OPERATOR_ROLE} may not make every call of the drill, which would fail after the restore: ecs:TagResource on arn:aws:ecs:eu-west-1:123456789012:task/dms-production/\\* \\(implicitDeny\\)`));
    assert.equal(aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);
    assert.deepEqual(deleteCalls(aws), []);
  });

  it('simulates every later call on its resource, as the role behind the SSO session (path included)', async () => {
    healthyDrill(aws, 'dms_app');
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--keep']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.iam.commandCalls(GetRoleCommand)[0]?.args[0].input, { RoleName: 'AWSReservedSSO_DMSOperator_0a1b2c3d' });
    const simulated = aws.iam.commandCalls(SimulatePrincipalPolicyCommand).map((call) => call.args[0].input);
    assert.ok(simulated.every((input) => input.PolicySourceArn === OPERATOR_ROLE));
    const pairs = simulated.flatMap((input) => (input.ActionNames ?? []).map((action) => `${action} ${input.ResourceArns?.[0]}`));
    for (const expected of [
      `rds:RestoreDBInstanceFromDBSnapshot arn:aws:rds:eu-west-1:123456789012:db:${DRILL_ID}`,
      `rds:DeleteDBInstance arn:aws:rds:eu-west-1:123456789012:db:${DRILL_ID}`,
      `secretsmanager:GetSecretValue ${APP_PASSWORD_SECRET}`,
      `secretsmanager:GetSecretValue ${MASTER_SECRET}`,
      `ecs:RunTask ${fixtureOutputs.drillVerifyTaskDefinitionArn}`,
      'ecs:TagResource arn:aws:ecs:eu-west-1:123456789012:task/dms-production/*',
      'ecs:StopTask arn:aws:ecs:eu-west-1:123456789012:task/dms-production/*',
      'iam:PassRole arn:aws:iam::123456789012:role/dms-production-drill-verify-execution',
      `kms:CreateGrant ${KMS_KEY}`,
      'logs:GetLogEvents arn:aws:logs:eu-west-1:123456789012:log-group:/dms/production/api:log-stream:drill-verify/verify/*',
    ]) {
      assert.ok(pairs.includes(expected), `simulated ${expected}`);
    }
    const passRole = simulated.find((input) => input.ActionNames?.includes('iam:PassRole'));
    assert.deepEqual(passRole?.ContextEntries, [{ ContextKeyName: 'iam:PassedToService', ContextKeyValues: ['ecs-tasks.amazonaws.com'], ContextKeyType: 'string' }]);
  });

  it('says how to proceed when the check itself is not allowed, and --skip-permission-check skips it', async () => {
    healthyDrill(aws);
    aws.iam.on(SimulatePrincipalPolicyCommand).rejects(Object.assign(new Error('not authorized to perform iam:SimulatePrincipalPolicy'), { name: 'AccessDenied', $metadata: {} }));
    const refused = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /iam:SimulatePrincipalPolicy is denied \(grant it on yourself, or pass --skip-permission-check\)/);
    assert.equal(aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);

    aws.iam.resetHistory();
    const skipped = await runCli(['dr-drill', ...STACK_ARGS, '--skip-permission-check']);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.equal(aws.iam.commandCalls(SimulatePrincipalPolicyCommand).length, 0);
  });

  it('refuses a point in time after the latest restorable time', async () => {
    healthyDrill(aws);
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--point-in-time', '2025-03-10T09:12:00Z']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /is after the latest restorable time 2025-03-10T09:10:00Z/);
    assert.equal(aws.rds.commandCalls(RestoreDBInstanceToPointInTimeCommand).length, 0);
  });
});

describe('ops dr-drill --dry-run: the plan of calls, with nothing sent', () => {
  const aws = useAwsMocks();

  it('prints every call with its parameters and makes zero SDK calls (no mock responses at all)', async () => {
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(totalCalls(aws), 0);
    assert.match(run.stdout, /none is sent/);
    assert.match(run.stdout, /"DBInstanceIdentifier": "dms-drill-production-202503100915"/);
    assert.match(run.stdout, /"PubliclyAccessible": false/);
    assert.match(run.stdout, /"MasterUserPassword": "<that password; never printed>"/);
    assert.match(run.stdout, /"SkipFinalSnapshot": true/);
  });

  it('lists the same calls, in the same order, as a real drill makes', async () => {
    const dryRun = await runCli(['dr-drill', ...STACK_ARGS, '--dry-run']);
    const planned = [...dryRun.stdout.matchAll(/^\d+\. \w+ (\w+):/gm)].map((match) => match[1]);
    healthyDrill(aws);
    const real = await runCli(['dr-drill', ...STACK_ARGS]);
    assert.equal(real.code, 0, real.stderr);
    // Polls repeat a call; pages of one listing are one step of the plan; StopTask is only for a task the drill outlives.
    const made = operationsInOrder(aws).filter((operation, index, all) => operation !== all[index - 1]);
    assert.deepEqual(made, planned.filter((operation) => operation !== 'StopTask'));
  });

  it('plans the verify task against the port the database listens on (FSBP RDS.23), not PostgreSQL\'s default', async () => {
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`<drill endpoint address>:${DATABASE_PORT}/dms`));
    assert.notEqual(DATABASE_PORT, 5432);
    assert.doesNotMatch(run.stdout, /:5432\b/);
  });

  it('plans a point-in-time restore with its time', async () => {
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--dry-run', '--point-in-time', '2025-03-10T06:00:00+01:00']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /rds RestoreDBInstanceToPointInTime:/);
    assert.match(run.stdout, /"RestoreTime": "2025-03-10T05:00:00.000Z"/);
    assert.doesNotMatch(run.stdout, /DescribeDBSnapshots/);
    assert.equal(totalCalls(aws), 0);
  });

  it('still refuses bad input in a dry run', async () => {
    const run = await runCli(['dr-drill', ...STACK_ARGS, '--dry-run', '--point-in-time', '2030-01-01T00:00:00Z']);
    assert.equal(run.code, 2);
  });
});

describe('ops dr-drill: the drill tag records when it started', () => {
  const aws = useAwsMocks();
  it('tags with the start time and names the instance after the UTC minute', async () => {
    healthyDrill(aws);
    await runCli(['dr-drill', ...STACK_ARGS]);
    const input = aws.rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0]?.args[0].input;
    assert.equal(input?.DBInstanceIdentifier, `dms-drill-production-${T0.toISOString().slice(0, 16).replace(/[-T:]/g, '')}`);
  });
});
