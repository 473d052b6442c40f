// The DR drill's AWS calls, built in one place so the dry-run plan and the real drill send the
// same parameters: commands/dr-drill.ts runs them, drillPlan() lists them.
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeTaskDefinitionCommand, DescribeTasksCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type RDSClient,
  type Tag,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { OpsContext } from './context.js';
import type { StackOutputs } from './outputs.js';
import { automatedSnapshotsCommand } from './rds.js';
import { formatParameters } from './report.js';
import { formatDuration, isoSeconds } from './time.js';

export const DRILL_AVAILABLE_POLL_MS = 30_000;
export const DRILL_TASK_POLL_MS = 15_000;
export const DRILL_VERIFY_TIMEOUT_MS = 30 * 60_000;
/** The contract's one-off command entry, used when the verify task definition's own command does not say drill:verify. */
export const VERIFY_COMMAND = ['node', 'dist/api/cli.js', 'drill:verify'];
/** Who the verify task logs in as when its task definition sets no DATABASE_URL (brief: master `dms_admin`, database `dms`). */
const DEFAULT_VERIFY_DATABASE_URL = 'postgres://dms_admin@drill.invalid:5432/dms?sslmode=verify-full';
export const PLANNED_DATABASE_URL = "postgres://<user of the verify task's DATABASE_URL, else dms_admin>@<drill endpoint address>:5432/dms?sslmode=verify-full";

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

/** What is restored: a named or the newest automated snapshot, or the primary at a point in time. */
export type DrillSource =
  | { kind: 'snapshot'; snapshotIdentifier: string | undefined }
  | { kind: 'point-in-time'; restoreTime: Date };

export interface Drill {
  stack: string;
  outputs: DrillOutputs;
  drillId: string;
  startedAt: Date;
  source: DrillSource;
  keep: boolean;
  availableTimeoutMs: number;
}

/** The verify task's container as read from its task definition. */
export interface VerifyContainer {
  name: string;
  command: string[];
  /** The task definition's own DATABASE_URL: its user goes with the password secret the task injects. */
  databaseUrl: string | undefined;
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

/** Where the drill instance lands: the stack's own network, parameters and class; private, deletable, tagged. */
function placement(drill: Drill) {
  const { outputs } = drill;
  return {
    DBSubnetGroupName: outputs.dbSubnetGroupName,
    VpcSecurityGroupIds: [outputs.dbSecurityGroupId],
    DBParameterGroupName: outputs.dbParameterGroupName,
    DBInstanceClass: outputs.dbInstanceClass,
    PubliclyAccessible: false,
    DeletionProtection: false,
    // One AZ is enough to prove the data restores; Multi-AZ only doubles the drill's cost.
    MultiAZ: false,
    Tags: drillTags(drill),
  };
}

/**
 * Neither restore call takes a KMS key: the instance keeps the snapshot's (or the primary's) key,
 * which the drill checks against the stack's dbKmsKeyArn before restoring.
 */
export type RestoreCommand = RestoreDBInstanceFromDBSnapshotCommand | RestoreDBInstanceToPointInTimeCommand;

export function restoreCommand(drill: Drill, snapshotIdentifier: string): RestoreCommand {
  if (drill.source.kind === 'point-in-time') {
    return new RestoreDBInstanceToPointInTimeCommand({
      SourceDBInstanceIdentifier: drill.outputs.dbInstanceIdentifier,
      TargetDBInstanceIdentifier: drill.drillId,
      RestoreTime: drill.source.restoreTime,
      ...placement(drill),
    });
  }
  return new RestoreDBInstanceFromDBSnapshotCommand({ DBInstanceIdentifier: drill.drillId, DBSnapshotIdentifier: snapshotIdentifier, ...placement(drill) });
}

/** `send` takes one command type at a time, hence the narrowing. */
export function sendRestore(rds: RDSClient, command: RestoreCommand): Promise<unknown> {
  return command instanceof RestoreDBInstanceToPointInTimeCommand ? rds.send(command) : rds.send(command);
}

export const getMasterSecret = (secretArn: string): GetSecretValueCommand => new GetSecretValueCommand({ SecretId: secretArn });

export const setDrillMasterPassword = (drill: Drill, password: string): ModifyDBInstanceCommand =>
  new ModifyDBInstanceCommand({ DBInstanceIdentifier: drill.drillId, MasterUserPassword: password, ApplyImmediately: true });

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

export function runVerifyTask(drill: Drill, container: Pick<VerifyContainer, 'name' | 'command'>, databaseUrl: string): RunTaskCommand {
  const { outputs } = drill;
  return new RunTaskCommand({
    cluster: outputs.clusterName,
    taskDefinition: outputs.drillVerifyTaskDefinitionArn,
    launchType: 'FARGATE',
    count: 1,
    startedBy: VERIFY_TASK_STARTED_BY,
    networkConfiguration: {
      awsvpcConfiguration: { subnets: outputs.privateSubnetIds, securityGroups: [outputs.serviceSecurityGroupId], assignPublicIp: 'DISABLED' },
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
          ],
        },
      ],
    },
    tags: [
      { key: DRILL_TAG, value: 'true' },
      { key: 'dms:drill-instance', value: drill.drillId },
    ],
  });
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

/** Every call the drill would make, in order, with placeholders for what only the run learns. */
export function drillPlan(drill: Drill): PlannedCall[] {
  const { outputs } = drill;
  const primary = outputs.dbInstanceIdentifier;
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
    { service: 'ecs', command: describeVerifyTaskDefinition(drill), note: "the verify container's name, command and awslogs stream" },
    { service: 'rds', command: restoreCommand(drill, snapshotIdentifier), note: 'from here on, any failure deletes the drill instance' },
    {
      service: 'rds',
      command: describeInstance(drill.drillId),
      note: `every ${formatDuration(DRILL_AVAILABLE_POLL_MS)} until available (up to ${formatDuration(drill.availableTimeoutMs)})`,
    },
    {
      service: 'secretsmanager',
      command: getMasterSecret(`<MasterUserSecret of ${primary}>`),
      note: "only when the verify task logs in as the master user: the primary's current master password (never printed)",
    },
    {
      service: 'rds',
      command: setDrillMasterPassword(drill, '<that password; never printed>'),
      note: 'the snapshot may predate a rotation of the master secret the verify task reads',
    },
    { service: 'rds', command: describeInstance(drill.drillId), note: 'until the new password is applied' },
    {
      service: 'ecs',
      command: runVerifyTask(drill, placeholderContainer, PLANNED_DATABASE_URL),
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
