// The DR drill's AWS calls, built in one place so the dry-run plan and the real drill send the
// same parameters: commands/dr-drill.ts runs them, drillPlan() lists them.
import { GetLogEventsCommand, type GetLogEventsCommandOutput } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeTaskDefinitionCommand, DescribeTasksCommand, RunTaskCommand, StopTaskCommand, type ContainerDefinition } from '@aws-sdk/client-ecs';
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type DBInstance,
  type ModifyDBInstanceMessage,
  type RDSClient,
  type Tag,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { GetRoleCommand, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { DATABASE_PORT } from '../../../infra/database.js';
import { OpsError } from './errors.js';
import type { RequiredPermission } from './permissions.js';
import type { OpsContext } from './context.js';
import type { StackOutputs } from './outputs.js';
import { automatedSnapshotsCommand } from './rds.js';
import { formatParameters, type Progress } from './report.js';
import { formatDuration, isoSeconds } from './time.js';
import { waitFor } from './wait.js';

export const DRILL_AVAILABLE_POLL_MS = 30_000;
export const DRILL_TASK_POLL_MS = 15_000;
export const DRILL_VERIFY_TIMEOUT_MS = 30 * 60_000;
/** The contract's one-off command entry, used when the verify task definition's own command does not say drill:verify. */
export const VERIFY_COMMAND = ['node', 'dist/api/cli.js', 'drill:verify'];
/** Who the verify task logs in as when its task definition sets no DATABASE_URL (brief: master `dms_admin`, database `dms`). */
const DEFAULT_VERIFY_DATABASE_URL = `postgres://dms_admin@drill.invalid:${DATABASE_PORT}/dms?sslmode=verify-full`;
/**
 * A restore keeps the source instance's port unless told otherwise (RestoreDBInstanceFromDBSnapshot,
 * RestoreDBInstanceToPointInTime: "Default: The same port as the original DB instance"), and the
 * primary listens on DATABASE_PORT (FSBP RDS.23), not PostgreSQL's 5432.
 */
export const PLANNED_DATABASE_URL = `postgres://<user of the verify task's DATABASE_URL, else dms_admin>@<drill endpoint address>:${DATABASE_PORT}/dms?sslmode=verify-full`;

export type DrillOutputs = Pick<
  StackOutputs,
  | 'region'
  | 'dbInstanceIdentifier'
  | 'dbSubnetGroupName'
  | 'dbSecurityGroupId'
  | 'dbParameterGroupName'
  | 'dbKmsKeyArn'
  | 'dbInstanceClass'
  | 'clusterName'
  | 'drillVerifyTaskDefinitionArn'
  | 'privateSubnetIds'
  | 'serviceSecurityGroupId'
>;

/** What is restored: a named or the newest automated snapshot, or the primary at a point in time (or its latest restorable time). */
export type DrillSource =
  | { kind: 'snapshot'; snapshotIdentifier: string | undefined }
  | { kind: 'point-in-time'; restoreTime: Date | 'latest' };

/** The primary's settings a `--keep` copy takes over, so the runbook can promote it. */
export type PrimarySettings = Pick<
  DBInstance,
  | 'MultiAZ'
  | 'BackupRetentionPeriod'
  | 'PreferredBackupWindow'
  | 'IAMDatabaseAuthenticationEnabled'
  | 'EnabledCloudwatchLogsExports'
  | 'CopyTagsToSnapshot'
  | 'PerformanceInsightsEnabled'
  | 'PerformanceInsightsKMSKeyId'
  | 'PerformanceInsightsRetentionPeriod'
  | 'MonitoringInterval'
  | 'MonitoringRoleArn'
>;

export interface Drill {
  stack: string;
  outputs: DrillOutputs;
  drillId: string;
  startedAt: Date;
  source: DrillSource;
  keep: boolean;
  availableTimeoutMs: number;
  /** Simulate the operator's permissions for every later call before restoring (off: --skip-permission-check). */
  checkPermissions: boolean;
}

/** The verify task's container as read from its task definition. */
export interface VerifyContainer {
  name: string;
  command: string[];
  /** The task definition's own DATABASE_URL: its user goes with the password secret the task injects. */
  databaseUrl: string | undefined;
  /** `valueFrom` of the PGPASSWORD secret the task injects (a secret ARN, maybe with `:jsonKey::`). */
  passwordSecret: string | undefined;
  logGroup: string | undefined;
  logStreamPrefix: string | undefined;
}

/** Every drill resource carries these: `drill-sweep` finds leftovers by them, and skips kept ones. */
export const DRILL_TAG = 'dms:drill';
export const DRILL_STARTED_TAG = 'dms:drill-started';
export const DRILL_KEEP_TAG = 'dms:drill-keep';
/** RunTask's `startedBy` of the verify task: what `drill-sweep` lists tasks by. */
export const VERIFY_TASK_STARTED_BY = 'dms-ops-dr-drill';

export function drillTags(drill: Drill): Tag[] {
  return [
    { Key: DRILL_TAG, Value: 'true' },
    { Key: DRILL_STARTED_TAG, Value: isoSeconds(drill.startedAt) },
    ...(drill.keep ? [{ Key: DRILL_KEEP_TAG, Value: 'true' }] : []),
  ];
}

export const describeInstance = (identifier: string): DescribeDBInstancesCommand => new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier });

export const describeNamedSnapshot = (snapshotIdentifier: string): DescribeDBSnapshotsCommand =>
  new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotIdentifier });

export const describeVerifyTaskDefinition = (drill: Drill): DescribeTaskDefinitionCommand =>
  new DescribeTaskDefinitionCommand({ taskDefinition: drill.outputs.drillVerifyTaskDefinitionArn });

/**
 * Where the drill instance lands: the stack's own network, parameters and class; private,
 * deletable, tagged. A drill copy is single-AZ and keeps no backups of its own; a `--keep` copy
 * restores with the primary's availability, backups, log exports and IAM auth, because the runbook
 * may promote it to replace the primary.
 */
function placement(drill: Drill, primary: PrimarySettings) {
  const { outputs } = drill;
  const lifetime = drill.keep
    ? {
        MultiAZ: primary.MultiAZ ?? false,
        BackupRetentionPeriod: primary.BackupRetentionPeriod,
        PreferredBackupWindow: primary.PreferredBackupWindow,
        EnableIAMDatabaseAuthentication: primary.IAMDatabaseAuthenticationEnabled,
        EnableCloudwatchLogsExports: primary.EnabledCloudwatchLogsExports,
        CopyTagsToSnapshot: primary.CopyTagsToSnapshot,
      }
    : {
        // One AZ is enough to prove the data restores; Multi-AZ only doubles the drill's cost.
        MultiAZ: false,
        // A restore inherits the source's backup retention unless the call sets one (RDS User Guide,
        // "Backup retention period": https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithAutomatedBackups.BackupRetention.html).
        // 0: RDS takes no backups of a PHI copy that lives an hour.
        BackupRetentionPeriod: 0,
      };
  return {
    DBSubnetGroupName: outputs.dbSubnetGroupName,
    VpcSecurityGroupIds: [outputs.dbSecurityGroupId],
    DBParameterGroupName: outputs.dbParameterGroupName,
    DBInstanceClass: outputs.dbInstanceClass,
    PubliclyAccessible: false,
    DeletionProtection: false,
    ...lifetime,
    Tags: drillTags(drill),
  };
}

/**
 * What neither restore call takes, for a `--keep` copy: Performance Insights and enhanced
 * monitoring as the primary has them (ModifyDBInstance once the copy is available).
 */
export function keptMonitoring(drill: Drill, primary: PrimarySettings): Partial<ModifyDBInstanceMessage> {
  if (!drill.keep) return {};
  return {
    ...(primary.PerformanceInsightsEnabled
      ? {
          EnablePerformanceInsights: true,
          PerformanceInsightsKMSKeyId: primary.PerformanceInsightsKMSKeyId,
          PerformanceInsightsRetentionPeriod: primary.PerformanceInsightsRetentionPeriod,
        }
      : {}),
    ...(primary.MonitoringInterval ? { MonitoringInterval: primary.MonitoringInterval, MonitoringRoleArn: primary.MonitoringRoleArn } : {}),
  };
}

/**
 * Neither restore call takes a KMS key: the instance keeps the snapshot's (or the primary's) key,
 * which the drill checks against the stack's dbKmsKeyArn before restoring.
 */
export type RestoreCommand = RestoreDBInstanceFromDBSnapshotCommand | RestoreDBInstanceToPointInTimeCommand;

export function restoreCommand(drill: Drill, snapshotIdentifier: string, primary: PrimarySettings): RestoreCommand {
  if (drill.source.kind === 'point-in-time') {
    const { restoreTime } = drill.source;
    return new RestoreDBInstanceToPointInTimeCommand({
      SourceDBInstanceIdentifier: drill.outputs.dbInstanceIdentifier,
      TargetDBInstanceIdentifier: drill.drillId,
      ...(restoreTime === 'latest' ? { UseLatestRestorableTime: true } : { RestoreTime: restoreTime }),
      ...placement(drill, primary),
    });
  }
  return new RestoreDBInstanceFromDBSnapshotCommand({ DBInstanceIdentifier: drill.drillId, DBSnapshotIdentifier: snapshotIdentifier, ...placement(drill, primary) });
}

/** `send` takes one command type at a time, hence the narrowing. */
export function sendRestore(rds: RDSClient, command: RestoreCommand): Promise<unknown> {
  return command instanceof RestoreDBInstanceToPointInTimeCommand ? rds.send(command) : rds.send(command);
}

export const getSecret = (secretArn: string): GetSecretValueCommand => new GetSecretValueCommand({ SecretId: secretArn });

/** One ModifyDBInstance for what the restore could not set: the current master password, a kept copy's monitoring. */
export const alignDrillInstance = (drill: Drill, changes: Partial<ModifyDBInstanceMessage>): ModifyDBInstanceCommand =>
  new ModifyDBInstanceCommand({ DBInstanceIdentifier: drill.drillId, ...changes, ApplyImmediately: true });

/** The database user the verify task logs in as. */
export function verifyDatabaseUser(container: Pick<VerifyContainer, 'databaseUrl'>): string {
  return decodeURIComponent(new URL(container.databaseUrl ?? DEFAULT_VERIFY_DATABASE_URL).username);
}

/** The verify task's DATABASE_URL moved to the drill instance: same user and database, new host, TLS verified. */
export function drillDatabaseUrl(container: Pick<VerifyContainer, 'databaseUrl'>, address: string, port: number): URL {
  const url = new URL(container.databaseUrl ?? DEFAULT_VERIFY_DATABASE_URL);
  url.hostname = address;
  url.port = String(port);
  url.searchParams.set('sslmode', 'verify-full');
  return url;
}

/** drill:verify's variable naming the master user through which it resets the app role's password. */
export const APP_ROLE_RESET_VARIABLE = 'DRILL_APP_ROLE_RESET_BY';

/** Where a verify task runs: the stack's cluster and network, or the region-loss drill's throw-away ones. */
export interface VerifyTaskPlacement {
  cluster: string;
  taskDefinition: string;
  subnetIds: string[];
  securityGroupId: string;
}

/** The one-off `drill:verify` task against a drill copy, whichever drill runs it. */
export function runVerifyTaskIn(placement: VerifyTaskPlacement, drillId: string, container: { name?: string; command?: string[] }, databaseUrl: string, resetAppRoleBy?: string): RunTaskCommand {
  return new RunTaskCommand({
    cluster: placement.cluster,
    taskDefinition: placement.taskDefinition,
    launchType: 'FARGATE',
    count: 1,
    startedBy: VERIFY_TASK_STARTED_BY,
    networkConfiguration: {
      awsvpcConfiguration: { subnets: placement.subnetIds, securityGroups: [placement.securityGroupId], assignPublicIp: 'DISABLED' },
    },
    overrides: {
      containerOverrides: [
        {
          name: container.name,
          command: container.command,
          environment: [
            { name: 'DATABASE_URL', value: databaseUrl },
            // Empty means "no replicas": the verify task must never read the production replica.
            { name: 'DATABASE_REPLICA_URLS', value: '' },
            ...(resetAppRoleBy ? [{ name: APP_ROLE_RESET_VARIABLE, value: resetAppRoleBy }] : []),
          ],
        },
      ],
    },
    tags: [
      { key: DRILL_TAG, value: 'true' },
      { key: 'dms:drill-instance', value: drillId },
    ],
  });
}

export function runVerifyTask(drill: Drill, container: Pick<VerifyContainer, 'name' | 'command'>, databaseUrl: string, resetAppRoleBy?: string): RunTaskCommand {
  const { outputs } = drill;
  const placement = { cluster: outputs.clusterName, taskDefinition: outputs.drillVerifyTaskDefinitionArn, subnetIds: outputs.privateSubnetIds, securityGroupId: outputs.serviceSecurityGroupId };
  return runVerifyTaskIn(placement, drill.drillId, container, databaseUrl, resetAppRoleBy);
}

export const describeVerifyTask = (drill: Drill, taskArn: string): DescribeTasksCommand =>
  new DescribeTasksCommand({ cluster: drill.outputs.clusterName, tasks: [taskArn] });

/** The verify task holds database credentials next to a copy of patient data: it never outlives the drill. */
export const stopVerifyTask = (drill: Drill, taskArn: string): StopTaskCommand =>
  new StopTaskCommand({ cluster: drill.outputs.clusterName, task: taskArn, reason: `dr-drill clean-up of ${drill.drillId}` });

export const readVerifyLog = (logGroupName: string, logStreamName: string): GetLogEventsCommand =>
  new GetLogEventsCommand({ logGroupName, logStreamName, startFromHead: true });

export const deleteDrillInstance = (drill: Drill): DeleteDBInstanceCommand =>
  new DeleteDBInstanceCommand({ DBInstanceIdentifier: drill.drillId, SkipFinalSnapshot: true, DeleteAutomatedBackups: true });

/** awslogs names a task's stream `<prefix>/<container>/<task id>`. */
export function verifyLogStream(container: VerifyContainer, taskArn: string): string | undefined {
  const taskId = taskArn.split('/').at(-1);
  return container.logStreamPrefix && taskId ? `${container.logStreamPrefix}/${container.name}/${taskId}` : undefined;
}

export interface PlannedCall {
  service: string;
  command: { input: object; constructor: { name: string } };
  note: string;
}

/** What the drill learns before restoring and the permission check needs: which secrets it reads, which roles RunTask passes. */
export interface DrillCallTargets {
  /** ARNs of the secrets the drill will read (the verify task's password secret, the master secret). */
  secrets: string[];
  /** The verify task definition's execution and task roles (RunTask passes them). */
  passRoles: string[];
  container: Pick<VerifyContainer, 'name' | 'logGroup' | 'logStreamPrefix'>;
}

/**
 * Every call the drill makes after the restore, as IAM actions on the resources it makes them on
 * (with the condition keys ECS and IAM evaluate), for the policy simulator: a role without
 * ecs:TagResource (RunTask with tags) must fail before a 15-60 minute restore, not after it.
 */
export function drillPermissions(drill: Drill, targets: DrillCallTargets): RequiredPermission[] {
  const { outputs } = drill;
  const [, partition, , , account] = outputs.dbKmsKeyArn.split(':');
  const arn = (service: string, resource: string): string => `arn:${partition}:${service}:${outputs.region}:${account}:${resource}`;
  const drillDb = arn('rds', `db:${drill.drillId}`);
  const cluster = { 'ecs:cluster': arn('ecs', `cluster/${outputs.clusterName}`) };
  const tasks = arn('ecs', `task/${outputs.clusterName}/*`);
  const { logGroup, logStreamPrefix, name } = targets.container;
  return [
    { action: drill.source.kind === 'point-in-time' ? 'rds:RestoreDBInstanceToPointInTime' : 'rds:RestoreDBInstanceFromDBSnapshot', resource: drillDb },
    ...['rds:AddTagsToResource', 'rds:DescribeDBInstances', 'rds:ModifyDBInstance', 'rds:DeleteDBInstance'].map((action) => ({ action, resource: drillDb })),
    { action: 'kms:CreateGrant', resource: outputs.dbKmsKeyArn },
    { action: 'kms:DescribeKey', resource: outputs.dbKmsKeyArn },
    ...targets.secrets.map((resource) => ({ action: 'secretsmanager:GetSecretValue', resource })),
    { action: 'ecs:RunTask', resource: outputs.drillVerifyTaskDefinitionArn, context: cluster },
    { action: 'ecs:TagResource', resource: tasks, context: { 'ecs:CreateAction': 'RunTask' } },
    { action: 'ecs:DescribeTasks', resource: tasks, context: cluster },
    { action: 'ecs:StopTask', resource: tasks, context: cluster },
    ...targets.passRoles.map((resource) => ({ action: 'iam:PassRole', resource, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } })),
    ...(logGroup && logStreamPrefix ? [{ action: 'logs:GetLogEvents', resource: arn('logs', `log-group:${logGroup}:log-stream:${logStreamPrefix}/${name}/*`) }] : []),
  ];
}

/** The primary's settings as the dry run shows them: what the run reads from DescribeDBInstances. */
function plannedPrimarySettings(primary: string): PrimarySettings {
  const fields: (keyof PrimarySettings)[] = [
    'MultiAZ',
    'BackupRetentionPeriod',
    'PreferredBackupWindow',
    'IAMDatabaseAuthenticationEnabled',
    'EnabledCloudwatchLogsExports',
    'CopyTagsToSnapshot',
    'PerformanceInsightsEnabled',
    'PerformanceInsightsKMSKeyId',
    'PerformanceInsightsRetentionPeriod',
    'MonitoringInterval',
    'MonitoringRoleArn',
  ];
  // Placeholders in place of values: only ever printed, never sent.
  return Object.fromEntries(fields.map((field) => [field, `<${field} of ${primary}>`])) as unknown as PrimarySettings;
}

/** Every call the drill would make, in order, with placeholders for what only the run learns. */
export function drillPlan(drill: Drill): PlannedCall[] {
  const { outputs } = drill;
  const primary = outputs.dbInstanceIdentifier;
  const primarySettings = plannedPrimarySettings(primary);
  const placeholderContainer = { name: '<container of the verify task definition>', command: ['<its command, which runs drill:verify>'] };
  const calls: PlannedCall[] = [
    { service: 'rds', command: describeInstance(primary), note: 'the primary: encryption key, master secret, latest restorable time' },
  ];
  let snapshotIdentifier = '';
  if (drill.source.kind === 'snapshot') {
    snapshotIdentifier = drill.source.snapshotIdentifier ?? `<newest available automated snapshot of ${primary}>`;
    calls.push(
      drill.source.snapshotIdentifier
        ? { service: 'rds', command: describeNamedSnapshot(drill.source.snapshotIdentifier), note: 'must be available and encrypted with dbKmsKeyArn' }
        : { service: 'rds', command: automatedSnapshotsCommand(primary), note: 'pick the newest available one (all pages)' },
    );
  }
  calls.push(
    { service: 'ecs', command: describeVerifyTaskDefinition(drill), note: "the verify container's name, command, password secret, roles and awslogs stream" },
    ...(drill.checkPermissions
      ? [
          { service: 'sts', command: new GetCallerIdentityCommand({}), note: 'who runs the drill (--skip-permission-check skips the check)' },
          { service: 'iam', command: new GetRoleCommand({ RoleName: '<role of the assumed-role session>' }), note: 'an assumed role\'s ARN with its path' },
          {
            service: 'iam',
            command: new SimulatePrincipalPolicyCommand({
              PolicySourceArn: '<that role or user>',
              ActionNames: ['<each action of a later step>'],
              ResourceArns: ['<the resource it acts on>'],
            }),
            note: 'every later call, before anything is restored: a missing permission stops the drill here',
          },
        ]
      : []),
    {
      service: 'rds',
      command: restoreCommand(drill, snapshotIdentifier, primarySettings),
      note: drill.keep
        ? "--keep: the primary's Multi-AZ, backups, log exports and IAM auth, so the copy can replace it"
        : 'single-AZ, no backups of its own; from here on, any failure deletes the drill instance',
    },
    {
      service: 'rds',
      command: describeInstance(drill.drillId),
      note: `every ${formatDuration(DRILL_AVAILABLE_POLL_MS)} until available (up to ${formatDuration(drill.availableTimeoutMs)})`,
    },
    {
      service: 'secretsmanager',
      command: getSecret(`<the verify task's PGPASSWORD secret; the primary's MasterUserSecret if it logs in as the master user>`),
      note: "today's password of the user the verify task signs in as (never printed)",
    },
    {
      service: 'rds',
      command: alignDrillInstance(drill, { MasterUserPassword: '<that password; never printed>', ...keptMonitoring(drill, primarySettings) }),
      note:
        'the restored copy has the passwords of its restore point: its master user gets today\'s password, through which drill:verify resets the app role' +
        (drill.keep ? "; --keep: also the primary's Performance Insights and monitoring" : ''),
    },
    { service: 'rds', command: describeInstance(drill.drillId), note: 'until the change is applied' },
    {
      service: 'ecs',
      command: runVerifyTask(drill, placeholderContainer, PLANNED_DATABASE_URL, `<master user of ${primary}, when verify signs in as the app role>`),
      note: 'drill:verify from inside the VPC: row counts, audit chain',
    },
    {
      service: 'ecs',
      command: describeVerifyTask(drill, '<task arn from RunTask>'),
      note: `every ${formatDuration(DRILL_TASK_POLL_MS)} until STOPPED (up to ${formatDuration(DRILL_VERIFY_TIMEOUT_MS)}); exit code 0 = verified`,
    },
    {
      service: 'logs',
      command: readVerifyLog('<awslogs-group of the container>', '<awslogs-stream-prefix>/<container>/<task id>'),
      note: "the JSON line drill:verify printed (row counts)",
    },
    ...(drill.keep
      ? [
          {
            service: 'secretsmanager',
            command: getSecret(`<MasterUserSecret of ${primary}>`),
            note: 'a kept copy whose master password was set to the app password gets the primary\'s master password back',
          },
          { service: 'rds', command: alignDrillInstance(drill, { MasterUserPassword: '<that password; never printed>' }), note: 'so the migration task can sign in if it is promoted' },
        ]
      : []),
    {
      service: 'ecs',
      command: stopVerifyTask(drill, '<task arn from RunTask>'),
      note: 'only if the drill stops before the task did (timeout, interruption): the task never outlives the drill',
    },
    {
      service: 'rds',
      command: deleteDrillInstance(drill),
      note: drill.keep
        ? 'only if the instance never became available: --keep leaves it running once it is, verified or not'
        : 'always, also after a failed step or an interruption',
    },
  );
  return calls;
}

export function printPlan(ctx: OpsContext, drill: Drill, calls: readonly PlannedCall[]): void {
  ctx.io.out(`Dry run of dr-drill for stack ${drill.stack}: the calls below are printed, none is sent.`);
  ctx.io.out(`Drill instance: ${drill.drillId} in ${drill.outputs.region}`);
  calls.forEach((call, index) => {
    ctx.io.out('');
    ctx.io.out(`${index + 1}. ${call.service} ${call.command.constructor.name.replace(/Command$/, '')}: ${call.note}`);
    for (const line of formatParameters(call.command.input).split('\n')) ctx.io.out(`   ${line}`);
  });
}

/** RDS statuses from which a restore never becomes available. */
export const TERMINAL_STATUSES = new Set([
  'failed',
  'incompatible-restore',
  'incompatible-parameters',
  'incompatible-network',
  'inaccessible-encryption-credentials',
  'restore-error',
  'storage-full',
  'deleting',
]);

/**
 * Waits until a drill's instance can be used: available, with an endpoint, and no master password
 * change still pending. A status a restore never leaves fails at once. Both drills wait with it.
 */
export function waitForDrillInstance(ctx: OpsContext, progress: Progress, rds: RDSClient, drillId: string, timeoutMs: number): Promise<DBInstance> {
  return waitFor(ctx, progress, {
    what: `${drillId} to be available`,
    intervalMs: DRILL_AVAILABLE_POLL_MS,
    timeoutMs,
    check: async () => {
      const instance = (await rds.send(describeInstance(drillId))).DBInstances?.[0];
      const status = instance?.DBInstanceStatus ?? 'not visible yet';
      if (instance && TERMINAL_STATUSES.has(status)) throw new OpsError(`${drillId} went ${status}`);
      const pending = instance?.PendingModifiedValues?.MasterUserPassword !== undefined;
      return status === 'available' && !pending && instance?.Endpoint?.Address ? { done: true, value: instance } : { done: false, status: pending ? `${status}, password pending` : status };
    },
  });
}

/** The container that runs drill:verify, its command, and where awslogs puts its output. */
export function verifyContainerOf(containers: readonly ContainerDefinition[], arn: string): VerifyContainer {
  const runsVerify = (container: ContainerDefinition): boolean => (container.command ?? []).includes('drill:verify');
  const container = containers.find(runsVerify) ?? (containers.length === 1 ? containers[0] : undefined);
  if (!container?.name) throw new OpsError(`task definition ${arn} has no container that runs drill:verify`);
  const options = container.logConfiguration?.logDriver === 'awslogs' ? container.logConfiguration.options : undefined;
  return {
    name: container.name,
    command: runsVerify(container) ? (container.command ?? []) : VERIFY_COMMAND,
    databaseUrl: container.environment?.find((variable) => variable.name === 'DATABASE_URL')?.value,
    passwordSecret: container.secrets?.find((secret) => secret.name === 'PGPASSWORD')?.valueFrom,
    logGroup: options?.['awslogs-group'],
    logStreamPrefix: options?.['awslogs-stream-prefix'],
  };
}

/** The last JSON object line drill:verify printed (preferring one that is not a logger line). */
export function verifyOutputOf(events: GetLogEventsCommandOutput['events']): Record<string, unknown> | undefined {
  const objects = (events ?? []).flatMap((event) => {
    try {
      const parsed: unknown = JSON.parse((event.message ?? '').trim());
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? [parsed as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
  return objects.findLast((object) => !('level' in object)) ?? objects.at(-1);
}

/** Row counts in the verify output: the first object whose values are all numbers (`counts`, `rowCounts`, …). */
export function rowCountsOf(output: Record<string, unknown>): string | undefined {
  const counts = Object.values(output).find(
    (value): value is Record<string, number> =>
      typeof value === 'object' && value !== null && Object.keys(value).length > 0 && Object.values(value).every((count) => typeof count === 'number'),
  );
  return counts ? Object.entries(counts).map(([table, count]) => `${table}=${count}`).join(', ') : undefined;
}
