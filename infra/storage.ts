/**
 * Where data rests: the customer-managed KMS key of the buckets, the X-ray bucket (PHI), the audit-export bucket
 * (tamper-evident, Object Lock), the forensics bucket (incident evidence under legal hold) and the
 * access-log bucket (ALB and S3 server access logs).
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { XRAY_BROWSER_CORS } from '../api/storage/browser-cors.js';
import { DATA_CLASSIFICATION, denyInsecureTransport, hardenBucket, requireBucketKey } from './bucket.js';
import type { AwsEnvironment } from './config.js';
import { policyDocument } from './iam.js';
import { customerManagedKey } from './kms.js';
import { ACCESS_LOG_PREFIX } from './storage-layout.js';

export interface StorageArgs {
  /** `dms-<stack>`. */
  prefix: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /** The API task role: the only principal that may read, write or delete X-ray objects. */
  apiTaskRoleArn: pulumi.Input<string>;
  /** The AWS Backup role: besides the API, the only principal that may read X-ray objects. */
  backupRoleArn: pulumi.Input<string>;
  /** Principals allowed to write audit exports (the API task role and the export task role). */
  auditWriterRoleArns: pulumi.Input<string>[];
  /** The only principal that may write evidence (the operator role, `npm run ops -- preserve-evidence`). */
  evidenceWriterRoleArn: pulumi.Input<string>;
  /** Browser origins allowed to upload X-rays with presigned requests. */
  xrayCorsOrigins: string[];
  /** Days a replaced or deleted X-ray version is kept. */
  xrayNoncurrentVersionDays: number;
  /** Object Lock mode of audit exports. */
  auditObjectLockMode: 'COMPLIANCE' | 'GOVERNANCE';
  /** Object Lock retention and expiry of audit exports (days). */
  auditRetentionDays: number;
  /** Days audit exports stay in S3 Standard before Glacier. */
  auditHotDays: number;
  /** Days access logs are kept. */
  accessLogRetentionDays: number;
  /** Keep PHI buckets on `pulumi destroy` (production). */
  retainOnDelete: boolean;
}


/** Key prefix of X-ray and prescription objects (CONTRACT §3: `patients/<pid>/visits/<vid>/...`). */
export const XRAY_OBJECT_PREFIX = 'patients/';


export class Storage extends pulumi.ComponentResource {
  /** Encrypts X-ray and audit objects. */
  readonly s3Key: aws.kms.Key;
  /** Encrypts every CloudWatch log group of the stack. */
  readonly logsKey: aws.kms.Key;
  /** Encrypts the application's Secrets Manager secrets and the RDS-managed master secret. */
  readonly secretsKey: aws.kms.Key;
  readonly xrayBucket: aws.s3.Bucket;
  readonly auditBucket: aws.s3.Bucket;
  /** Incident evidence: Object Lock legal holds on every object, nothing deleted, only the operator role writes. */
  readonly forensicsBucket: aws.s3.Bucket;
  /** ALB access logs (under `alb/`) and S3 server access logs of the PHI buckets (under `s3/`). */
  readonly accessLogBucket: aws.s3.Bucket;
  /**
   * The access-log bucket's name, resolved only once its policy admits the log deliverers: ALB and
   * S3 check that they may write when logging is switched on, so whatever logs here depends on this.
   */
  readonly accessLogBucketName: pulumi.Output<string>;
  /** Versioning of the PHI buckets: replication may only be configured once it is on. */
  readonly phiVersioning: { xray: aws.s3.BucketVersioning; audit: aws.s3.BucketVersioning };

  constructor(name: string, args: StorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:storage:Storage', name, {}, opts);
    const child = { parent: this };
    const { env, prefix } = args;
    const suffix = pulumi.interpolate`${env.accountId}-${env.region}`;

    this.s3Key = customerManagedKey(
      `${prefix}-s3`,
      { description: `${prefix}: X-ray and audit objects (PHI)`, alias: `${prefix}-s3`, env, outlivesStack: args.retainOnDelete },
      child,
    );
    // It encrypts the RDS-managed master secret of a database kept after destroy (retainOnDelete).
    this.secretsKey = customerManagedKey(
      `${prefix}-secrets`,
      { description: `${prefix}: application and database secrets`, alias: `${prefix}-secrets`, env, outlivesStack: args.retainOnDelete },
      child,
    );
    this.logsKey = customerManagedKey(
      `${prefix}-logs`,
      {
        description: `${prefix}: CloudWatch log groups`,
        alias: `${prefix}-logs`,
        env,
        serviceStatements: [
          {
            Sid: 'CloudWatchLogsEncryptsThisAccountsLogGroups',
            Effect: 'Allow',
            Principal: { Service: `logs.${env.region}.amazonaws.com` },
            Action: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
            Resource: '*',
            Condition: {
              ArnLike: { 'kms:EncryptionContext:aws:logs:arn': pulumi.interpolate`arn:${env.partition}:logs:${env.region}:${env.accountId}:log-group:*` },
            },
          },
        ],
      },
      child,
    );

    const phiOpts = { ...child, retainOnDelete: args.retainOnDelete };

    this.accessLogBucket = new aws.s3.Bucket(`${prefix}-access-logs`, { bucket: pulumi.interpolate`${prefix}-access-logs-${suffix}`, forceDestroy: !args.retainOnDelete, tags: { DataClassification: DATA_CLASSIFICATION.operational } }, child);
    hardenBucket(`${prefix}-access-logs`, this.accessLogBucket, { algorithm: 'AES256' }, child);
    new aws.s3.BucketLifecycleConfiguration(
      `${prefix}-access-logs`,
      {
        bucket: this.accessLogBucket.id,
        rules: [
          { id: 'expire-access-logs', status: 'Enabled', filter: {}, expiration: { days: args.accessLogRetentionDays }, noncurrentVersionExpiration: { noncurrentDays: 1 } },
        ],
      },
      child,
    );
    const elbAccount = aws.elb.getServiceAccountOutput({ region: env.region });
    const albLogObjects = pulumi.interpolate`${this.accessLogBucket.arn}/${ACCESS_LOG_PREFIX.alb}/AWSLogs/${env.accountId}/*`;
    const accessLogPolicy = new aws.s3.BucketPolicy(
      `${prefix}-access-logs`,
      {
        bucket: this.accessLogBucket.id,
        policy: policyDocument([
          denyInsecureTransport(this.accessLogBucket.arn),
          // Regions older than August 2022 deliver ALB logs from an ELB-owned account, newer ones from a service principal.
          { Sid: 'AlbLogDeliveryAccount', Effect: 'Allow', Principal: { AWS: elbAccount.arn }, Action: 's3:PutObject', Resource: albLogObjects },
          { Sid: 'AlbLogDeliveryService', Effect: 'Allow', Principal: { Service: 'logdelivery.elasticloadbalancing.amazonaws.com' }, Action: 's3:PutObject', Resource: albLogObjects },
          {
            Sid: 'S3ServerAccessLogDelivery',
            Effect: 'Allow',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Action: 's3:PutObject',
            Resource: pulumi.interpolate`${this.accessLogBucket.arn}/${ACCESS_LOG_PREFIX.s3}/*`,
            Condition: { StringEquals: { 'aws:SourceAccount': env.accountId } },
          },
        ]),
      },
      child,
    );

    this.accessLogBucketName = pulumi.all([this.accessLogBucket.bucket, accessLogPolicy.id]).apply(([bucket]) => bucket);

    this.xrayBucket = new aws.s3.Bucket(`${prefix}-xray`, { bucket: pulumi.interpolate`${prefix}-xray-${suffix}`, tags: { DataClassification: DATA_CLASSIFICATION.phi } }, phiOpts);
    const xrayVersioning = hardenBucket(`${prefix}-xray`, this.xrayBucket, { algorithm: 'aws:kms', key: this.s3Key }, phiOpts);
    new aws.s3.BucketCorsConfiguration(
      `${prefix}-xray`,
      {
        bucket: this.xrayBucket.id,
        corsRules: [
          {
            id: 'presigned-browser-uploads',
            allowedOrigins: args.xrayCorsOrigins,
            // The same rule the embedded store of `npm start` gets (api/storage/browser-cors.ts).
            allowedMethods: [...XRAY_BROWSER_CORS.allowedMethods],
            allowedHeaders: [...XRAY_BROWSER_CORS.allowedHeaders],
            exposeHeaders: [...XRAY_BROWSER_CORS.exposeHeaders],
            maxAgeSeconds: XRAY_BROWSER_CORS.maxAgeSeconds,
          },
        ],
      },
      phiOpts,
    );
    new aws.s3.BucketLifecycleConfiguration(
      `${prefix}-xray`,
      {
        bucket: this.xrayBucket.id,
        rules: [
          {
            id: 'expire-replaced-versions',
            status: 'Enabled',
            filter: {},
            noncurrentVersionExpiration: { noncurrentDays: args.xrayNoncurrentVersionDays },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
          },
        ],
      },
      phiOpts,
    );
    const xrayObjects = pulumi.interpolate`${this.xrayBucket.arn}/*`;
    new aws.s3.BucketPolicy(
      `${prefix}-xray`,
      {
        bucket: this.xrayBucket.id,
        policy: policyDocument([
          denyInsecureTransport(this.xrayBucket.arn),
          ...requireBucketKey(xrayObjects, this.s3Key.arn),
          {
            Sid: 'OnlyTheApiTouchesPhiObjects',
            Effect: 'Deny',
            Principal: '*',
            Action: ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion'],
            Resource: xrayObjects,
            Condition: { ArnNotEquals: { 'aws:PrincipalArn': args.apiTaskRoleArn } },
          },
          {
            // AWS Backup reads every version with the backup role's own identity (S3 replication
            // reads with s3:GetObjectVersionForReplication, which this does not name).
            Sid: 'OnlyTheApiAndBackupReadPhiObjects',
            Effect: 'Deny',
            Principal: '*',
            Action: ['s3:GetObject', 's3:GetObjectVersion'],
            Resource: xrayObjects,
            Condition: { ArnNotEquals: { 'aws:PrincipalArn': [args.apiTaskRoleArn, args.backupRoleArn] } },
          },
          {
            // X-ray uploads are create-only: a presigned PUT replayed after `complete` verified the
            // file gets 412, never a silent replacement (the API signs `If-None-Match: *`). Only the
            // X-ray keys: prescription documents are written by the API itself. X-rays are single PUTs
            // (100 MiB cap), so no multipart exemption is needed.
            // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
            Sid: 'XrayUploadsAreCreateOnly',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:PutObject',
            Resource: pulumi.interpolate`${this.xrayBucket.arn}/${XRAY_OBJECT_PREFIX}*/xrays/*`,
            Condition: { Null: { 's3:if-none-match': 'true' } },
          },
        ]),
      },
      phiOpts,
    );
    this.logAccess(`${prefix}-xray`, this.xrayBucket, phiOpts);

    this.auditBucket = new aws.s3.Bucket(
      `${prefix}-audit`,
      { bucket: pulumi.interpolate`${prefix}-audit-${suffix}`, objectLockEnabled: true, tags: { DataClassification: DATA_CLASSIFICATION.phi } },
      phiOpts,
    );
    const auditVersioning = hardenBucket(`${prefix}-audit`, this.auditBucket, { algorithm: 'aws:kms', key: this.s3Key }, phiOpts);
    new aws.s3.BucketObjectLockConfiguration(
      `${prefix}-audit`,
      {
        bucket: this.auditBucket.id,
        rule: { defaultRetention: { mode: args.auditObjectLockMode, days: args.auditRetentionDays } },
      },
      { ...phiOpts, dependsOn: [auditVersioning] },
    );
    new aws.s3.BucketLifecycleConfiguration(
      `${prefix}-audit`,
      {
        bucket: this.auditBucket.id,
        rules: auditExportLifecycle(args.auditHotDays, args.auditRetentionDays),
      },
      phiOpts,
    );
    const auditObjects = pulumi.interpolate`${this.auditBucket.arn}/*`;
    new aws.s3.BucketPolicy(
      `${prefix}-audit`,
      {
        bucket: this.auditBucket.id,
        policy: policyDocument([
          denyInsecureTransport(this.auditBucket.arn),
          ...requireBucketKey(auditObjects, this.s3Key.arn),
          {
            Sid: 'OnlyExportersWriteAuditRecords',
            Effect: 'Deny',
            Principal: '*',
            Action: ['s3:PutObject', 's3:PutObjectRetention', 's3:PutObjectLegalHold'],
            Resource: auditObjects,
            Condition: { ArnNotEquals: { 'aws:PrincipalArn': args.auditWriterRoleArns } },
          },
        ]),
      },
      phiOpts,
    );
    this.logAccess(`${prefix}-audit`, this.auditBucket, phiOpts);
    this.phiVersioning = { xray: xrayVersioning, audit: auditVersioning };

    this.forensicsBucket = this.createForensicsBucket(args, phiOpts);

    this.registerOutputs({
      xrayBucketName: this.xrayBucket.bucket,
      auditBucketName: this.auditBucket.bucket,
      forensicsBucketName: this.forensicsBucket.bucket,
      accessLogBucketName: this.accessLogBucketName,
    });
  }

  /**
   * Evidence of an incident (copies of audit exports and logs, which hold PHI), written by
   * `npm run ops -- preserve-evidence` under `incidents/<id>/` (FORENSICS_PREFIX). Object Lock without a default
   * retention: evidence is kept by a legal hold, which has no end date and outlives any retention
   * ("A legal hold ... remains in effect until removed",
   * https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html#object-lock-legal-holds),
   * not by a clock that may run out mid-investigation. The policy makes the hold part of every
   * write and refuses every request that would undo one: releasing evidence is a change of this
   * policy by the account administrator, which CloudTrail records. No lifecycle rule: nothing expires.
   */
  private createForensicsBucket(args: StorageArgs, opts: pulumi.CustomResourceOptions): aws.s3.Bucket {
    const { prefix, env } = args;
    const bucket = new aws.s3.Bucket(
      `${prefix}-forensics`,
      { bucket: pulumi.interpolate`${prefix}-forensics-${env.accountId}-${env.region}`, objectLockEnabled: true, tags: { DataClassification: DATA_CLASSIFICATION.phi } },
      opts,
    );
    hardenBucket(`${prefix}-forensics`, bucket, { algorithm: 'aws:kms', key: this.s3Key }, opts);
    const objects = pulumi.interpolate`${bucket.arn}/*`;
    new aws.s3.BucketPolicy(
      `${prefix}-forensics`,
      {
        bucket: bucket.id,
        policy: policyDocument([
          denyInsecureTransport(bucket.arn),
          ...requireBucketKey(objects, this.s3Key.arn),
          {
            Sid: 'OnlyTheOperatorWritesEvidence',
            Effect: 'Deny',
            Principal: '*',
            Action: ['s3:PutObject', 's3:PutObjectLegalHold', 's3:PutObjectRetention'],
            Resource: objects,
            Condition: { ArnNotEquals: { 'aws:PrincipalArn': args.evidenceWriterRoleArn } },
          },
          {
            // The hold travels with the write (x-amz-object-lock-legal-hold: ON): no object is ever here without one.
            Sid: 'EveryObjectIsHeld',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:PutObject',
            Resource: objects,
            Condition: { StringNotEquals: { 's3:object-lock-legal-hold': 'ON' } },
          },
          {
            Sid: 'HoldsAreNeverLiftedByARequest',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:PutObjectLegalHold',
            Resource: objects,
            Condition: { StringNotEquals: { 's3:object-lock-legal-hold': 'ON' } },
          },
          {
            Sid: 'EvidenceIsNeverDeleted',
            Effect: 'Deny',
            Principal: '*',
            Action: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention'],
            Resource: objects,
          },
        ]),
      },
      opts,
    );
    this.logAccess(`${prefix}-forensics`, bucket, opts);
    return bucket;
  }

  /** S3 server access logs: who read or wrote which PHI object, kept with the ALB logs. */
  private logAccess(name: string, bucket: aws.s3.Bucket, opts: pulumi.CustomResourceOptions): void {
    new aws.s3.BucketLogging(
      name,
      { bucket: bucket.id, targetBucket: this.accessLogBucketName, targetPrefix: pulumi.interpolate`${ACCESS_LOG_PREFIX.s3}/${bucket.bucket}/` },
      opts,
    );
  }
}

/**
 * The audit exports' lifecycle, in the stack's bucket and in its replica in the DR region alike:
 * Glacier after the hot days; Object Lock refuses any earlier removal, and expiry after retention
 * keeps the bucket from growing forever.
 */
export function auditExportLifecycle(hotDays: number, retentionDays: number): aws.types.input.s3.BucketLifecycleConfigurationRule[] {
  return [
    {
      id: 'archive-then-expire',
      status: 'Enabled',
      filter: {},
      transitions: [{ days: hotDays, storageClass: 'GLACIER' }],
      expiration: { days: retentionDays + 1 },
      noncurrentVersionExpiration: { noncurrentDays: retentionDays + 1 },
      abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
    },
  ];
}
