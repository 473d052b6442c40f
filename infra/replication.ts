/**
 * S3 Replication of the PHI buckets to their replicas in the DR region: every new X-ray and audit
 * export (each version) is copied there, re-encrypted with the DR key, with the audit exports'
 * Object Lock retention carried over. Deletions are not: delete markers stay in the source, so
 * someone deleting X-rays in the primary region deletes nothing in the DR region.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AwsEnvironment } from './config.js';
import { policyDocument, trustPolicy } from './iam.js';

/** One source bucket and where it replicates to. */
export interface ReplicatedBucket {
  /** `xray` or `audit`: names the rule and the resources. */
  kind: string;
  source: aws.s3.Bucket;
  replica: aws.s3.Bucket;
}

export interface ReplicationArgs {
  prefix: string;
  env: AwsEnvironment;
  drRegion: string;
  buckets: ReplicatedBucket[];
  /** The key the source objects are encrypted with, and the DR key the replicas are encrypted with. */
  sourceKeyArn: pulumi.Input<string>;
  replicaKeyArn: pulumi.Input<string>;
  /** S3 Replication Time Control (99.99% of objects within 15 minutes, with metrics). */
  replicationTimeControl: boolean;
  /** Versioning of both sides: S3 refuses a replication configuration on an unversioned bucket. */
  versioning: pulumi.Input<pulumi.Resource>[];
}

/**
 * RTC takes its minutes as 15 only, and must come with a Metrics block
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ReplicationTimeValue.html: "Valid value: 15";
 * ReplicationTime "Must be specified together with a Metrics block").
 */
export const REPLICATION_TIME_MINUTES = 15;

export class Replication extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;

  constructor(name: string, args: ReplicationArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:replication:Replication', name, {}, opts);
    const child = { parent: this };
    const { env, prefix } = args;

    this.role = new aws.iam.Role(`${prefix}-replication`, { name: `${prefix}-replication`, assumeRolePolicy: trustPolicy('s3.amazonaws.com', env.accountId) }, child);
    const sources = args.buckets.map((bucket) => bucket.source.arn);
    const objects = (buckets: pulumi.Output<string>[]) => buckets.map((arn) => pulumi.interpolate`${arn}/*`);
    // Replicating SSE-KMS objects: the role decrypts with the source key and encrypts with the
    // destination key, each through S3 in its region, with the bucket as encryption context
    // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html).
    // Object Lock: reading the retention and legal hold of the source version
    // (s3:GetObjectRetention, s3:GetObjectLegalHold, https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html).
    new aws.iam.RolePolicy(
      `${prefix}-replication`,
      {
        role: this.role.id,
        policy: policyDocument([
          { Sid: 'ReadTheReplicationRules', Effect: 'Allow', Action: ['s3:GetReplicationConfiguration', 's3:ListBucket'], Resource: sources },
          {
            Sid: 'ReadSourceVersions',
            Effect: 'Allow',
            Action: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging', 's3:GetObjectRetention', 's3:GetObjectLegalHold'],
            Resource: objects(sources),
          },
          {
            Sid: 'WriteReplicas',
            Effect: 'Allow',
            Action: ['s3:ReplicateObject', 's3:ReplicateTags'],
            Resource: objects(args.buckets.map((bucket) => bucket.replica.arn)),
          },
          {
            Sid: 'DecryptSourceObjects',
            Effect: 'Allow',
            Action: 'kms:Decrypt',
            Resource: args.sourceKeyArn,
            Condition: {
              StringEquals: { 'kms:ViaService': `s3.${env.region}.amazonaws.com` },
              ArnLike: { 'kms:EncryptionContext:aws:s3:arn': sources.flatMap((arn) => [arn, pulumi.interpolate`${arn}/*`]) },
            },
          },
          {
            Sid: 'EncryptReplicas',
            Effect: 'Allow',
            Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
            Resource: args.replicaKeyArn,
            Condition: {
              StringEquals: { 'kms:ViaService': `s3.${args.drRegion}.amazonaws.com` },
              ArnLike: { 'kms:EncryptionContext:aws:s3:arn': args.buckets.flatMap((bucket) => [bucket.replica.arn, pulumi.interpolate`${bucket.replica.arn}/*`]) },
            },
          },
        ]),
      },
      child,
    );

    const rtc = args.replicationTimeControl
      ? {
          replicationTime: { status: 'Enabled', time: { minutes: REPLICATION_TIME_MINUTES } },
          metrics: { status: 'Enabled', eventThreshold: { minutes: REPLICATION_TIME_MINUTES } },
        }
      : {};
    for (const bucket of args.buckets) {
      new aws.s3.BucketReplicationConfig(
        `${prefix}-${bucket.kind}-to-dr`,
        {
          bucket: bucket.source.id,
          role: this.role.arn,
          rules: [
            {
              id: `${bucket.kind}-to-${args.drRegion}`,
              status: 'Enabled',
              priority: 1,
              // An empty filter makes this a V2 rule: the only kind that can leave delete markers behind.
              filter: {},
              deleteMarkerReplication: { status: 'Disabled' },
              // Without it S3 skips SSE-KMS objects, i.e. every object here.
              sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
              destination: {
                bucket: bucket.replica.arn,
                storageClass: 'STANDARD',
                encryptionConfiguration: { replicaKmsKeyId: args.replicaKeyArn },
                ...rtc,
              },
            },
          ],
        },
        { ...child, dependsOn: args.versioning },
      );
    }
    this.registerOutputs({ roleArn: this.role.arn });
  }
}
