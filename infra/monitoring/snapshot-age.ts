// The scheduled snapshot-age check behind `rds-snapshot-stale`. RDS raises an event when a backup
// fails, but not when backups silently stop (retention set to 0, a stuck backup window, a
// restored instance without backups): only measuring the newest snapshot's age catches both.
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { namePrefix } from '../config.js';
import { policyDocument, trustPolicy } from '../iam.js';
import { ALLOCATED_STORAGE_METRIC, DRILL_INSTANCE_AGE_METRIC, SNAPSHOT_AGE_METRIC } from './alarms.js';

/**
 * The Lambda handler (ES module, AWS SDK v3 from the Node.js runtime). It publishes the age in
 * hours of the newest available automated snapshot; finding none, it publishes nothing, and the
 * alarm treats the missing data point as breaching, so "no snapshot" and "check broken" both page.
 * It also publishes the age of the oldest DR drill instance of the stack still running (tagged
 * dms:drill=true, named DRILL_INSTANCE_PREFIX…; 0 when there is none): a drill killed before its
 * clean-up leaves a copy of patient data running, and `drill-instance-left` says so. And it
 * publishes the primary's allocated storage (bytes) from the same listing: RDS has no metric of
 * it, and `rds-storage-ceiling-near` needs it to tell used storage from the autoscaling ceiling.
 */
export const SNAPSHOT_AGE_HANDLER = `
import { RDSClient, paginateDescribeDBInstances, paginateDescribeDBSnapshots } from '@aws-sdk/client-rds';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';

const rds = new RDSClient({});
const cloudwatch = new CloudWatchClient({});
const HOUR_MS = 3_600_000;
// RDS states AllocatedStorage in GiB.
const GIB = 2 ** 30;

async function scanInstances(prefix, primaryIdentifier) {
  let oldest = 0;
  let allocatedBytes;
  for await (const page of paginateDescribeDBInstances({ client: rds }, {})) {
    for (const instance of page.DBInstances ?? []) {
      if (instance.DBInstanceIdentifier === primaryIdentifier && instance.AllocatedStorage) allocatedBytes = instance.AllocatedStorage * GIB;
      const tags = Object.fromEntries((instance.TagList ?? []).map((tag) => [tag.Key, tag.Value]));
      if (tags['dms:drill'] !== 'true' || !instance.DBInstanceIdentifier?.startsWith(prefix) || instance.DBInstanceStatus === 'deleting') continue;
      const started = Date.parse(tags['dms:drill-started'] ?? '') || instance.InstanceCreateTime?.getTime();
      if (started) oldest = Math.max(oldest, (Date.now() - started) / HOUR_MS);
    }
  }
  return { drillAgeHours: oldest, allocatedBytes };
}

export const handler = async () => {
  const { DB_INSTANCE_IDENTIFIER, METRIC_NAMESPACE, METRIC_NAME, DRILL_METRIC_NAME, DRILL_INSTANCE_PREFIX, ALLOCATED_METRIC_NAME } = process.env;
  const { drillAgeHours, allocatedBytes } = await scanInstances(DRILL_INSTANCE_PREFIX, DB_INSTANCE_IDENTIFIER);
  const dimensions = [{ Name: 'DBInstanceIdentifier', Value: DB_INSTANCE_IDENTIFIER }];
  await cloudwatch.send(new PutMetricDataCommand({
    Namespace: METRIC_NAMESPACE,
    MetricData: [
      { MetricName: DRILL_METRIC_NAME, Dimensions: dimensions, Value: drillAgeHours, Unit: 'None' },
      ...(allocatedBytes ? [{ MetricName: ALLOCATED_METRIC_NAME, Dimensions: dimensions, Value: allocatedBytes, Unit: 'Bytes' }] : []),
    ],
  }));
  let newest;
  const pages = paginateDescribeDBSnapshots(
    { client: rds },
    { DBInstanceIdentifier: DB_INSTANCE_IDENTIFIER, SnapshotType: 'automated' },
  );
  for await (const page of pages) {
    for (const snapshot of page.DBSnapshots ?? []) {
      if (snapshot.Status !== 'available' || !snapshot.SnapshotCreateTime) continue;
      if (!newest || snapshot.SnapshotCreateTime > newest) newest = snapshot.SnapshotCreateTime;
    }
  }
  if (!newest) {
    console.error(JSON.stringify({ message: 'no available automated snapshot', dbInstanceIdentifier: DB_INSTANCE_IDENTIFIER }));
    return { ageHours: null, drillAgeHours, allocatedBytes };
  }
  const ageHours = (Date.now() - newest.getTime()) / HOUR_MS;
  await cloudwatch.send(new PutMetricDataCommand({
    Namespace: METRIC_NAMESPACE,
    MetricData: [{
      MetricName: METRIC_NAME,
      Dimensions: [{ Name: 'DBInstanceIdentifier', Value: DB_INSTANCE_IDENTIFIER }],
      Value: ageHours,
      Unit: 'None',
    }],
  }));
  return { ageHours, drillAgeHours, allocatedBytes };
};
`;

/** How often the check runs: four data points per hourly alarm period, so one late run never pages. */
export const SNAPSHOT_CHECK_SCHEDULE = 'rate(15 minutes)';

export interface SnapshotAgeCheckArgs {
  /** Stack name: the function and schedule are named `dms-<stack>-snapshot-age`. */
  stack: string;
  /** Namespace the age is published to, `DMS/<stack>`. */
  namespace: string;
  /** The primary instance whose automated snapshots are checked. */
  dbInstanceIdentifier: pulumi.Input<string>;
  /** ARN of that instance: scopes the function's `rds:DescribeDBSnapshots` permission. */
  dbInstanceArn: pulumi.Input<string>;
  /** Account the scheduler may assume its role for. */
  accountId: pulumi.Input<string>;
  /** Encrypts the function's log group. */
  logsKey: aws.kms.Key;
  /** Retention of the function's log group (days). */
  logRetentionDays: number;
}

export class SnapshotAgeCheck extends pulumi.ComponentResource {
  public readonly functionName: pulumi.Output<string>;
  public readonly scheduleName: pulumi.Output<string>;

  constructor(name: string, args: SnapshotAgeCheckArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:monitoring:SnapshotAgeCheck', name, {}, opts);
    const functionName = `${namePrefix(args.stack)}-snapshot-age`;

    const logGroup = new aws.cloudwatch.LogGroup(
      functionName,
      { name: `/aws/lambda/${functionName}`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
      { parent: this },
    );

    const role = new aws.iam.Role(
      `${functionName}-function`,
      {
        name: `${functionName}-function`,
        assumeRolePolicy: policyDocument([
          { Sid: 'LambdaAssumesRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ]),
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      `${functionName}-function`,
      {
        role: role.id,
        policy: policyDocument([
            {
              Sid: 'ReadAutomatedSnapshotsOfTheInstance',
              Effect: 'Allow',
              Action: 'rds:DescribeDBSnapshots',
              Resource: [
                args.dbInstanceArn,
                // Automated snapshots are named `rds:<instance>-<timestamp>`.
                pulumi
                  .all([args.dbInstanceArn, args.dbInstanceIdentifier])
                  .apply(([arn, id]) => arn.replace(/:db:[^:]+$/, `:snapshot:rds:${id}-*`)),
              ],
            },
            {
              // Every instance of the region (DescribeDBInstances cannot filter by tag), to find drill leftovers.
              Sid: 'ListInstancesForDrillLeftovers',
              Effect: 'Allow',
              Action: 'rds:DescribeDBInstances',
              Resource: pulumi.output(args.dbInstanceArn).apply((arn) => arn.replace(/:db:[^:]+$/, ':db:*')),
            },
            {
              Sid: 'PublishOnlyToTheStackNamespace',
              Effect: 'Allow',
              Action: 'cloudwatch:PutMetricData',
              Resource: '*',
              Condition: { StringEquals: { 'cloudwatch:namespace': args.namespace } },
            },
            {
              Sid: 'WriteOwnLogs',
              Effect: 'Allow',
              Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              Resource: pulumi.interpolate`${logGroup.arn}:*`,
            },
          ]),
      },
      { parent: this },
    );

    const fn = new aws.lambda.Function(
      functionName,
      {
        name: functionName,
        description: `Publishes ${args.namespace} ${SNAPSHOT_AGE_METRIC}, ${DRILL_INSTANCE_AGE_METRIC} and ${ALLOCATED_STORAGE_METRIC} for rds-snapshot-stale, drill-instance-left and rds-storage-ceiling-near`,
        runtime: aws.lambda.Runtime.NodeJS22dX,
        architectures: ['arm64'],
        handler: 'index.handler',
        code: new pulumi.asset.AssetArchive({ 'index.mjs': new pulumi.asset.StringAsset(SNAPSHOT_AGE_HANDLER) }),
        role: role.arn,
        timeout: 30,
        memorySize: 128,
        environment: {
          variables: {
            DB_INSTANCE_IDENTIFIER: args.dbInstanceIdentifier,
            METRIC_NAMESPACE: args.namespace,
            METRIC_NAME: SNAPSHOT_AGE_METRIC,
            DRILL_METRIC_NAME: DRILL_INSTANCE_AGE_METRIC,
            ALLOCATED_METRIC_NAME: ALLOCATED_STORAGE_METRIC,
            // `npm run ops -- dr-drill` names its instances dms-drill-<stack>-<yyyymmddhhmm>.
            DRILL_INSTANCE_PREFIX: `dms-drill-${args.stack.toLowerCase()}-`,
          },
        },
        loggingConfig: { logFormat: 'JSON', logGroup: logGroup.name },
      },
      { parent: this },
    );

    const schedulerRole = new aws.iam.Role(
      `${functionName}-scheduler`,
      {
        name: `${functionName}-scheduler`,
        assumeRolePolicy: trustPolicy('scheduler.amazonaws.com', args.accountId),
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      `${functionName}-scheduler`,
      {
        role: schedulerRole.id,
        policy: policyDocument([{ Sid: 'InvokeTheCheck', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: fn.arn }]),
      },
      { parent: this },
    );
    const schedule = new aws.scheduler.Schedule(
      functionName,
      {
        name: functionName,
        description: 'Measures the age of the newest automated RDS snapshot',
        scheduleExpression: SNAPSHOT_CHECK_SCHEDULE,
        flexibleTimeWindow: { mode: 'OFF' },
        target: {
          arn: fn.arn,
          roleArn: schedulerRole.arn,
          retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 600 },
        },
      },
      { parent: this },
    );

    this.functionName = fn.name;
    this.scheduleName = schedule.name;
    this.registerOutputs({ functionName: this.functionName, scheduleName: this.scheduleName });
  }
}
