// The drill every dr-drill test starts from: a stack whose every AWS answer is healthy; a test then
// breaks the one step it is about. Shared by the in-process tests and the drill process that
// test/ops/dr-drill-interrupted.test.ts sends real signals to.
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeTaskDefinitionCommand, DescribeTasksCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
} from '@aws-sdk/client-rds';
import { GetRoleCommand, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { fixtureOutputs, type AwsMocks } from './support.js';

export const DRILL_ID = 'dms-drill-production-202503100915';
export const KMS_KEY = fixtureOutputs.dbKmsKeyArn as string;
export const MASTER_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1111-AbCdEf';
export const MASTER_PASSWORD = 'current-master-password-Zq8';
/** The app password secret the verify task injects as PGPASSWORD (infra: dms-<stack>/db-app-password). */
export const APP_PASSWORD_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-production/db-app-password-XyZ123';
export const APP_PASSWORD = 'todays-app-password-after-rotation-Hq3';
/** The operator: an SSO session, whose role lives under a path the STS ARN does not show. */
export const OPERATOR_SESSION = 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DMSOperator_0a1b2c3d/alice';
export const OPERATOR_ROLE = 'arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_DMSOperator_0a1b2c3d';

/** The policy simulator for an operator allowed everything except `denied` actions. */
export function operatorMay(aws: AwsMocks, denied: readonly string[] = []): void {
  aws.sts.on(GetCallerIdentityCommand).resolves({ Arn: OPERATOR_SESSION, Account: '123456789012', UserId: 'AROAEXAMPLE:alice' });
  aws.iam.on(GetRoleCommand).resolves({ Role: { Arn: OPERATOR_ROLE, RoleName: 'AWSReservedSSO_DMSOperator_0a1b2c3d', Path: '/aws-reserved/sso.amazonaws.com/eu-west-1/', RoleId: 'AROAEXAMPLE', CreateDate: new Date() } });
  aws.iam.on(SimulatePrincipalPolicyCommand).callsFake((input: { ActionNames: string[] }) => ({
    EvaluationResults: input.ActionNames.map((action) => ({ EvalActionName: action, EvalDecision: denied.includes(action) ? 'implicitDeny' : 'allowed' })),
    IsTruncated: false,
  }));
}
export const TASK_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task/dms-production/0a1b2c3d4e5f';
export const SNAPSHOT_TIME = new Date('2025-03-10T03:10:00Z');
export const VERIFY_LINE = '{"ok":true,"counts":{"patients":1200,"visits":5400,"audit_logs":88000},"auditChain":{"ok":true,"checked":88000}}';

export const primary = {
  DBInstanceIdentifier: 'dms-production',
  MasterUsername: 'dms_admin',
  DBInstanceStatus: 'available',
  StorageEncrypted: true,
  KmsKeyId: KMS_KEY,
  MasterUserSecret: { SecretArn: MASTER_SECRET, SecretStatus: 'active' },
  LatestRestorableTime: new Date('2025-03-10T09:10:00Z'),
};
export const drillInstance = (status: string, pendingPassword = false) => ({
  DBInstanceIdentifier: DRILL_ID,
  DBInstanceStatus: status,
  Endpoint: { Address: `${DRILL_ID}.abcdefgh.eu-west-1.rds.amazonaws.com`, Port: 5433 },
  PendingModifiedValues: pendingPassword ? { MasterUserPassword: '****' } : {},
});
export const snapshot = (id: string, created: Date, status = 'available') => ({
  DBSnapshotIdentifier: id,
  SnapshotCreateTime: created,
  Status: status,
  SnapshotType: 'automated',
  Encrypted: true,
  KmsKeyId: KMS_KEY,
});

/** The verify task definition's own DATABASE_URL, as infra writes it (production primary host). */
export const taskDatabaseUrl = (user: string): string => `postgres://${user}@dms-production.abcdefgh.eu-west-1.rds.amazonaws.com:5433/dms?sslmode=verify-full`;

/**
 * A drill whose every step succeeds; a test then breaks the one step it is about. The verify task
 * logs in as the master user unless `verifyUser` says otherwise (undefined: no DATABASE_URL at all).
 */
export function healthyDrill(aws: AwsMocks, verifyUser: string | undefined = 'dms_admin'): void {
  operatorMay(aws);
  aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production' }).resolves({ DBInstances: [primary] });
  aws.rds
    .on(DescribeDBSnapshotsCommand)
    .resolvesOnce({ DBSnapshots: [snapshot('rds:dms-production-2025-03-08-03-10', new Date('2025-03-08T03:10:00Z'))], Marker: 'page-2' })
    .resolves({
      DBSnapshots: [snapshot('rds:dms-production-2025-03-10-03-10', SNAPSHOT_TIME), snapshot('rds:dms-production-2025-03-10-08-00', new Date('2025-03-10T08:00:00Z'), 'creating')],
    });
  aws.ecs.on(DescribeTaskDefinitionCommand).resolves({
    taskDefinition: {
      status: 'ACTIVE',
      executionRoleArn: 'arn:aws:iam::123456789012:role/dms-production-drill-verify-execution',
      containerDefinitions: [
        {
          name: 'verify',
          command: ['node', 'dist/api/cli.js', 'drill:verify'],
          environment: [
            { name: 'NODE_ENV', value: 'production' },
            ...(verifyUser ? [{ name: 'DATABASE_URL', value: taskDatabaseUrl(verifyUser) }] : []),
          ],
          // As infra gives the drill-verify task: the password of the user it signs in as, nothing else.
          secrets: verifyUser === 'dms_app' ? [{ name: 'PGPASSWORD', valueFrom: APP_PASSWORD_SECRET }] : [],
          logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/dms/production/api', 'awslogs-stream-prefix': 'drill-verify' } },
        },
      ],
    },
  });
  aws.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({ DBInstance: drillInstance('creating') });
  aws.rds.on(RestoreDBInstanceToPointInTimeCommand).resolves({ DBInstance: drillInstance('creating') });
  aws.rds
    .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID })
    .resolvesOnce({ DBInstances: [drillInstance('creating')] })
    .resolvesOnce({ DBInstances: [drillInstance('backing-up')] })
    .resolvesOnce({ DBInstances: [drillInstance('available')] })
    .resolvesOnce({ DBInstances: [drillInstance('resetting-master-credentials', true)] })
    .resolves({ DBInstances: [drillInstance('available')] });
  aws.secrets.on(GetSecretValueCommand, { SecretId: MASTER_SECRET }).resolves({ SecretString: JSON.stringify({ username: 'dms_admin', password: MASTER_PASSWORD }) });
  aws.secrets.on(GetSecretValueCommand, { SecretId: APP_PASSWORD_SECRET }).resolves({ SecretString: APP_PASSWORD });
  aws.rds.on(ModifyDBInstanceCommand).resolves({ DBInstance: drillInstance('available', true) });
  aws.ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN, lastStatus: 'PROVISIONING' }], failures: [] });
  aws.ecs
    .on(DescribeTasksCommand)
    .resolvesOnce({ tasks: [{ taskArn: TASK_ARN, lastStatus: 'RUNNING' }] })
    .resolves({ tasks: [{ taskArn: TASK_ARN, lastStatus: 'STOPPED', stoppedReason: 'Essential container in task exited', containers: [{ name: 'verify', exitCode: 0 }] }] });
  aws.logs.on(GetLogEventsCommand).resolves({
    events: [
      { message: '{"level":"info","event":"startup","service":"dms-api"}' },
      { message: VERIFY_LINE },
    ],
  });
  aws.ecs.on(StopTaskCommand).resolves({ task: { taskArn: TASK_ARN, desiredStatus: 'STOPPED' } });
  aws.rds.on(DeleteDBInstanceCommand).resolves({ DBInstance: drillInstance('deleting') });
}

export function deleteCalls(aws: AwsMocks) {
  return aws.rds.commandCalls(DeleteDBInstanceCommand).map((call) => call.args[0].input);
}

export const EXPECTED_DELETE = { DBInstanceIdentifier: DRILL_ID, SkipFinalSnapshot: true, DeleteAutomatedBackups: true };
