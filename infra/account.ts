/**
 * Account-level audit trail, for a clinic whose AWS account has none (`dms:account.cloudTrail`, off
 * by default: most accounts get their trail from the organisation, and a second trail costs).
 * One multi-region CloudTrail trail with log file validation, encrypted with its own key, into a
 * bucket under Object Lock, so the record of who did what in the account (FSBP CloudTrail.1, .2,
 * .4) cannot be edited or removed within its retention, not even by an administrator.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { DATA_CLASSIFICATION, denyInsecureTransport, hardenBucket } from './bucket.js';
import type { AwsEnvironment } from './config.js';
import { policyDocument } from './iam.js';
import { customerManagedKey } from './kms.js';

export interface AccountTrailArgs {
  /** `dms-<stack>`. */
  prefix: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /** Object Lock retention of the trail's log files (days). */
  retentionDays: number;
}

export class AccountTrail extends pulumi.ComponentResource {
  readonly trail: aws.cloudtrail.Trail;
  readonly bucket: aws.s3.Bucket;
  readonly key: aws.kms.Key;

  constructor(name: string, args: AccountTrailArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:account:AccountTrail', name, {}, opts);
    const child = { parent: this };
    const { prefix, env } = args;
    const trailName = `${prefix}-account-trail`;
    // Known before the trail exists, so the key and bucket policies can name it (aws:SourceArn).
    const trailArn = pulumi.interpolate`arn:${env.partition}:cloudtrail:${env.region}:${env.accountId}:trail/${trailName}`;
    const fromThisTrail = { StringEquals: { 'aws:SourceArn': trailArn } };

    // Key policy for CloudTrail: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
    this.key = customerManagedKey(
      trailName,
      {
        description: `${prefix}: account CloudTrail log files`,
        alias: trailName,
        env,
        outlivesStack: true,
        serviceStatements: [
          {
            Sid: 'CloudTrailEncryptsThisTrail',
            Effect: 'Allow',
            Principal: { Service: 'cloudtrail.amazonaws.com' },
            Action: 'kms:GenerateDataKey*',
            Resource: '*',
            Condition: {
              ...fromThisTrail,
              StringLike: { 'kms:EncryptionContext:aws:cloudtrail:arn': pulumi.interpolate`arn:${env.partition}:cloudtrail:*:${env.accountId}:trail/*` },
            },
          },
          { Sid: 'CloudTrailDescribesKey', Effect: 'Allow', Principal: { Service: 'cloudtrail.amazonaws.com' }, Action: 'kms:DescribeKey', Resource: '*', Condition: fromThisTrail },
        ],
      },
      child,
    );

    // The log files outlive the stack: the bucket is kept on destroy and protected.
    const kept = { ...child, retainOnDelete: true, protect: true };
    this.bucket = new aws.s3.Bucket(
      trailName,
      { bucket: pulumi.interpolate`${trailName}-${env.accountId}-${env.region}`, objectLockEnabled: true, tags: { DataClassification: DATA_CLASSIFICATION.operational } },
      kept,
    );
    const versioning = hardenBucket(trailName, this.bucket, { algorithm: 'aws:kms', key: this.key }, kept);
    new aws.s3.BucketObjectLockConfiguration(
      trailName,
      { bucket: this.bucket.id, rule: { defaultRetention: { mode: 'COMPLIANCE', days: args.retentionDays } } },
      { ...kept, dependsOn: [versioning] },
    );
    // Bucket policy for CloudTrail: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
    const policy = new aws.s3.BucketPolicy(
      trailName,
      {
        bucket: this.bucket.id,
        policy: policyDocument([
          denyInsecureTransport(this.bucket.arn),
          { Sid: 'CloudTrailChecksAcl', Effect: 'Allow', Principal: { Service: 'cloudtrail.amazonaws.com' }, Action: 's3:GetBucketAcl', Resource: this.bucket.arn, Condition: fromThisTrail },
          {
            Sid: 'CloudTrailWritesLogs',
            Effect: 'Allow',
            Principal: { Service: 'cloudtrail.amazonaws.com' },
            Action: 's3:PutObject',
            Resource: pulumi.interpolate`${this.bucket.arn}/AWSLogs/${env.accountId}/*`,
            Condition: { StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceArn': trailArn } },
          },
        ]),
      },
      kept,
    );

    this.trail = new aws.cloudtrail.Trail(
      trailName,
      {
        name: trailName,
        s3BucketName: this.bucket.bucket,
        kmsKeyId: this.key.arn,
        enableLogFileValidation: true,
        isMultiRegionTrail: true,
        includeGlobalServiceEvents: true,
        enableLogging: true,
      },
      // CloudTrail checks that it may write when the trail is created.
      { ...child, dependsOn: [policy] },
    );

    this.registerOutputs({ trailArn: this.trail.arn, bucketName: this.bucket.bucket });
  }
}
