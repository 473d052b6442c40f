/**
 * The DR region's minimum footprint, deployed with the stack long before any disaster: the DR key,
 * the vault AWS Backup copies into (locked like the primary's), the replica buckets of the X-ray
 * and audit-export buckets, the API image replicated there, and what the region-loss drill and a
 * real recovery run their verify task with (cluster, log group, execution role).
 *
 * Not pre-provisioned: a network, a database, the service. The drill creates a throw-away network
 * and deletes it; a real recovery deploys the program with `aws:region` set to the DR region
 * (runbooks/backup-restore.md, "Losing the region"). Resources here carry `region` (Pulumi AWS v7
 * resource-level region), so the plan, the tests and the policy pack can see where each one lives.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { lockedVault } from './backup-vault.js';
import { DATA_CLASSIFICATION, denyInsecureTransport, hardenBucket, requireBucketKey } from './bucket.js';
import type { AwsEnvironment, RecoverySettings } from './config.js';
import { policyDocument, trustPolicy } from './iam.js';
import { customerManagedKey } from './kms.js';
import { inRegion } from './region.js';
import { auditExportLifecycle } from './storage.js';

export interface RecoveryRegionArgs {
  /** `dms-<stack>`. */
  prefix: string;
  /** Account, partition and the stack's (primary) region. */
  env: AwsEnvironment;
  /** `dms:recovery`: DR region, retention, lock mode. */
  recovery: RecoverySettings;
  /** The audit-export bucket's Object Lock mode and retention: the replica enforces the same on anything written to it directly. */
  auditObjectLockMode: 'COMPLIANCE' | 'GOVERNANCE';
  auditRetentionDays: number;
  /** Days audit exports stay in S3 Standard before Glacier (same lifecycle as the source). */
  auditHotDays: number;
  /** Days a replaced X-ray version is kept (same lifecycle as the source). */
  xrayNoncurrentVersionDays: number;
  /** Name of the API image repository, replicated to the DR region. */
  repositoryName: pulumi.Input<string>;
  /** Retention of the drill's log group. */
  logRetentionDays: number;
  /** Keep PHI-holding resources (and their key) on `pulumi destroy` (production). */
  retainOnDelete: boolean;
}

/** Name of the DR region's verify execution role (IAM is global; the drill registers its task definition with it). */
export const drVerifyExecutionRoleName = (prefix: string): string => `${prefix}-dr-verify-execution`;
/** Prefix of the secrets the region-loss drill creates in the DR region (the verify execution role may read only these). */
export const drDrillSecretPrefix = (prefix: string): string => `${prefix}-dr-drill-`;

export class RecoveryRegion extends pulumi.ComponentResource {
  readonly region: string;
  /** Encrypts the DR vault's own backups, the replica buckets, the drill's log group and secret. */
  readonly key: aws.kms.Key;
  readonly vault: aws.backup.Vault;
  readonly xrayReplica: aws.s3.Bucket;
  readonly auditReplica: aws.s3.Bucket;
  /** Versioning of the replicas: S3 replication needs it on both sides before the rule is accepted. */
  readonly replicaVersioning: aws.s3.BucketVersioning[];
  readonly cluster: aws.ecs.Cluster;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly verifyExecutionRole: aws.iam.Role;

  constructor(name: string, args: RecoveryRegionArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:recovery:RecoveryRegion', name, {}, opts);
    const child = { parent: this };
    const { env, prefix, recovery } = args;
    const region = recovery.drRegion;
    this.region = region;
    const where = inRegion(region);
    const arnIn = (service: string, resource: pulumi.Input<string>) => pulumi.interpolate`arn:${env.partition}:${service}:${region}:${env.accountId}:${resource}`;
    const suffix = pulumi.interpolate`${env.accountId}-${region}`;
    const logGroupName = `/dms/${prefix.slice('dms-'.length)}/dr-drill`;

    this.key = customerManagedKey(
      `${prefix}-dr`,
      {
        description: `${prefix}: DR region copies (backups, replicated X-rays and audit exports; PHI)`,
        alias: `${prefix}-dr`,
        env,
        region,
        outlivesStack: args.retainOnDelete,
        serviceStatements: [
          {
            Sid: 'CloudWatchLogsEncryptsTheDrillLogGroup',
            Effect: 'Allow',
            Principal: { Service: `logs.${region}.amazonaws.com` },
            Action: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
            Resource: '*',
            Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': arnIn('logs', `log-group:${logGroupName}`) } },
          },
        ],
      },
      child,
    );

    this.vault = lockedVault(`${prefix}-backup-dr`, { name: `${prefix}-backup-dr`, key: this.key, recovery, retainOnDelete: args.retainOnDelete, region }, child).vault;

    const phiOpts = { ...child, retainOnDelete: args.retainOnDelete };
    const replica = (kind: 'xray' | 'audit', objectLock: boolean) => {
      const bucket = new aws.s3.Bucket(
        `${prefix}-${kind}-replica`,
        { bucket: pulumi.interpolate`${prefix}-${kind}-${suffix}`, tags: { DataClassification: DATA_CLASSIFICATION.phi }, ...(objectLock ? { objectLockEnabled: true } : {}), ...where },
        phiOpts,
      );
      const versioning = hardenBucket(`${prefix}-${kind}-replica`, bucket, { algorithm: 'aws:kms', key: this.key }, phiOpts, region);
      // Replication writes with s3:ReplicateObject, which these denies do not name; anyone else
      // writing here (the API after a failover) must use the DR key like the source's writers use theirs.
      new aws.s3.BucketPolicy(
        `${prefix}-${kind}-replica`,
        { bucket: bucket.id, policy: policyDocument([denyInsecureTransport(bucket.arn), ...requireBucketKey(pulumi.interpolate`${bucket.arn}/*`, this.key.arn)]), ...where },
        phiOpts,
      );
      return { bucket, versioning };
    };

    const xray = replica('xray', false);
    this.xrayReplica = xray.bucket;
    new aws.s3.BucketLifecycleConfiguration(
      `${prefix}-xray-replica`,
      {
        bucket: this.xrayReplica.id,
        rules: [{ id: 'expire-replaced-versions', status: 'Enabled', filter: {}, noncurrentVersionExpiration: { noncurrentDays: args.xrayNoncurrentVersionDays }, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } }],
        ...where,
      },
      phiOpts,
    );

    // "To replicate objects from a source bucket with Object Lock enabled, the destination bucket must
    // also have Object Lock enabled" (DstBucketObjectLockConfigMissing,
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-failure-codes.html); replicas
    // keep the source version's retention mode and date
    // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-replication).
    // The default retention only covers what is written here directly.
    const audit = replica('audit', true);
    this.auditReplica = audit.bucket;
    new aws.s3.BucketObjectLockConfiguration(
      `${prefix}-audit-replica`,
      { bucket: this.auditReplica.id, rule: { defaultRetention: { mode: args.auditObjectLockMode, days: args.auditRetentionDays } }, ...where },
      { ...phiOpts, dependsOn: [audit.versioning] },
    );
    new aws.s3.BucketLifecycleConfiguration(
      `${prefix}-audit-replica`,
      {
        bucket: this.auditReplica.id,
        rules: auditExportLifecycle(args.auditHotDays, args.auditRetentionDays),
        ...where,
      },
      phiOpts,
    );
    this.replicaVersioning = [xray.versioning, audit.versioning];

    // The API image in the DR region: the drill's verify task and a recovered service pull it there,
    // never from the lost region. A registry has one replication configuration: a second stack in the
    // same account must carry its rule here too (docs/infra.md).
    // https://docs.aws.amazon.com/AmazonECR/latest/userguide/replication.html
    new aws.ecr.ReplicationConfiguration(
      `${prefix}-images-to-dr`,
      {
        replicationConfiguration: {
          rules: [{ destinations: [{ region, registryId: env.accountId }], repositoryFilters: [{ filter: args.repositoryName, filterType: 'PREFIX_MATCH' }] }],
        },
      },
      child,
    );

    this.cluster = new aws.ecs.Cluster(`${prefix}-dr`, { name: `${prefix}-dr`, ...where }, child);
    this.logGroup = new aws.cloudwatch.LogGroup(`${prefix}-dr-drill`, { name: logGroupName, retentionInDays: args.logRetentionDays, kmsKeyId: this.key.arn, ...where }, child);

    // What ECS needs to start the verify task in the DR region: pull the replicated image, write the
    // log group, inject the drill's password secret (only secrets named for the drill).
    this.verifyExecutionRole = new aws.iam.Role(
      drVerifyExecutionRoleName(prefix),
      { name: drVerifyExecutionRoleName(prefix), assumeRolePolicy: trustPolicy('ecs-tasks.amazonaws.com', env.accountId) },
      child,
    );
    new aws.iam.RolePolicy(
      drVerifyExecutionRoleName(prefix),
      {
        role: this.verifyExecutionRole.id,
        policy: policyDocument([
          { Sid: 'EcrLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
          { Sid: 'PullTheReplicatedImage', Effect: 'Allow', Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], Resource: arnIn('ecr', pulumi.interpolate`repository/${args.repositoryName}`) },
          { Sid: 'ShipLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: pulumi.interpolate`${this.logGroup.arn}:log-stream:*` },
          { Sid: 'ReadTheDrillSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: arnIn('secretsmanager', `secret:${drDrillSecretPrefix(prefix)}*`) },
          { Sid: 'DecryptTheDrillSecret', Effect: 'Allow', Action: 'kms:Decrypt', Resource: this.key.arn },
        ]),
      },
      child,
    );

    this.registerOutputs({ drRegion: region, vaultName: this.vault.name, xrayReplica: this.xrayReplica.bucket, auditReplica: this.auditReplica.bucket });
  }
}
