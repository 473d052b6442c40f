/**
 * AWS Backup for the database and the X-ray bucket: a locked vault under its own key in the
 * stack's region, one daily rule kept `backupRetentionDays`, and a copy of every recovery point to
 * the DR region's locked vault (RecoveryRegion). The RDS automated backups (point-in-time restore,
 * the in-region drill) stay as they are; this is what survives the loss of the region or of the
 * account's administrators' good intentions.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { lockedVault } from './backup-vault.js';
import type { AwsEnvironment, RecoverySettings } from './config.js';
import { policyDocument, trustPolicy } from './iam.js';
import { customerManagedKey } from './kms.js';

export interface BackupArgs {
  /** `dms-<stack>`. */
  prefix: string;
  env: AwsEnvironment;
  /** `dms:recovery`: schedule, retention, lock mode. */
  recovery: RecoverySettings;
  /** The primary database instance. */
  databaseArn: pulumi.Input<string>;
  /** Its storage key: RDS recovery points in this region stay encrypted with it. */
  databaseKeyArn: pulumi.Input<string>;
  /** The X-ray bucket and the key its objects are encrypted with (the backup role reads them). */
  xrayBucketArn: pulumi.Input<string>;
  s3KeyArn: pulumi.Input<string>;
  /** The DR region's vault, and its key (the copy job re-encrypts into it). */
  drVaultArn: pulumi.Input<string>;
  drKeyArn: pulumi.Input<string>;
  /** Keep the vault and its key on `pulumi destroy` (production). */
  retainOnDelete: boolean;
}

/** Name of the role AWS Backup runs jobs with; the X-ray bucket policy lets it read. */
export const backupRoleName = (prefix: string): string => `${prefix}-backup`;

/**
 * AWS managed policies of the backup role. S3 backups need their own pair on top of the general
 * ones ("Add the AWSBackupServiceRolePolicyForS3Backup and AWSBackupServiceRolePolicyForS3Restore to
 * the roles that you intend to use to backup and restore S3 buckets",
 * https://docs.aws.amazon.com/aws-backup/latest/devguide/s3-backups.html).
 */
export const BACKUP_ROLE_MANAGED_POLICIES = [
  'service-role/AWSBackupServiceRolePolicyForBackup',
  'service-role/AWSBackupServiceRolePolicyForRestores',
  'AWSBackupServiceRolePolicyForS3Backup',
  'AWSBackupServiceRolePolicyForS3Restore',
] as const;

export class Backup extends pulumi.ComponentResource {
  /** Encrypts what AWS Backup encrypts itself here (S3 backups); RDS recovery points keep the database key. */
  readonly key: aws.kms.Key;
  readonly vault: aws.backup.Vault;
  readonly plan: aws.backup.Plan;
  readonly role: aws.iam.Role;

  constructor(name: string, args: BackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:backup:Backup', name, {}, opts);
    const child = { parent: this };
    const { env, prefix, recovery } = args;

    this.key = customerManagedKey(
      `${prefix}-backup`,
      { description: `${prefix}: AWS Backup vault (X-ray backups; PHI)`, alias: `${prefix}-backup`, env, outlivesStack: args.retainOnDelete },
      child,
    );
    this.vault = lockedVault(`${prefix}-backup`, { name: `${prefix}-backup`, key: this.key, recovery, retainOnDelete: args.retainOnDelete }, child).vault;

    this.role = new aws.iam.Role(backupRoleName(prefix), { name: backupRoleName(prefix), assumeRolePolicy: trustPolicy('backup.amazonaws.com', env.accountId) }, child);
    for (const policy of BACKUP_ROLE_MANAGED_POLICIES) {
      new aws.iam.RolePolicyAttachment(
        `${backupRoleName(prefix)}-${policy.split('/').at(-1)}`,
        { role: this.role.name, policyArn: pulumi.interpolate`arn:${env.partition}:iam::aws:policy/${policy}` },
        child,
      );
    }
    // The keys the jobs touch: the sources' (read an SSE-KMS X-ray, share an encrypted snapshot with
    // the copy), the vaults' (write backups, re-encrypt the cross-region copy). "Your IAM role must have
    // access to the KMS key used to back up and restore objects. Otherwise the job is successful but
    // the objects are not backed up or restored" (https://docs.aws.amazon.com/aws-backup/latest/devguide/encryption.html).
    new aws.iam.RolePolicy(
      backupRoleName(prefix),
      {
        role: this.role.id,
        policy: policyDocument([
          {
            Sid: 'UseTheSourceAndVaultKeys',
            Effect: 'Allow',
            Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*', 'kms:DescribeKey'],
            Resource: [args.databaseKeyArn, args.s3KeyArn, this.key.arn, args.drKeyArn],
          },
          {
            Sid: 'GrantTheKeysToAwsServicesOnly',
            Effect: 'Allow',
            Action: 'kms:CreateGrant',
            Resource: [args.databaseKeyArn, args.s3KeyArn, this.key.arn, args.drKeyArn],
            Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
          },
        ]),
      },
      child,
    );

    // Copies keep the source's lifecycle unless told otherwise; the copy action says the same
    // retention, which the DR vault's lock requires as its minimum. Cross-Region copies are
    // re-encrypted with the destination vault's key ("AWS Backup will re-encrypt your copy using the
    // customer managed key of your destination vault", https://docs.aws.amazon.com/aws-backup/latest/devguide/cross-region-backup.html),
    // and are available for S3 backups ("Cross-account and cross-Region copies are available for S3
    // backups", https://docs.aws.amazon.com/aws-backup/latest/devguide/s3-backups.html).
    const lifecycle = { deleteAfter: recovery.backupRetentionDays };
    this.plan = new aws.backup.Plan(
      `${prefix}-backup`,
      {
        name: `${prefix}-backup`,
        rules: [
          {
            ruleName: 'daily-with-dr-copy',
            targetVaultName: this.vault.name,
            schedule: recovery.backupSchedule,
            scheduleExpressionTimezone: 'Etc/UTC',
            // A job that has not started within an hour is EXPIRED, which the backup alarm counts.
            startWindow: 60,
            completionWindow: 8 * 60,
            lifecycle,
            copyActions: [{ destinationVaultArn: args.drVaultArn, lifecycle }],
            recoveryPointTags: { 'dms:backup-plan': `${prefix}-backup` },
          },
        ],
      },
      child,
    );
    // S3 backups require versioning on the bucket ("You must enable S3 Versioning on your S3 bucket to
    // use AWS Backup for Amazon S3", s3-backups.html above): hardenBucket versions every bucket.
    new aws.backup.Selection(
      `${prefix}-backup`,
      { name: `${prefix}-backup`, planId: this.plan.id, iamRoleArn: this.role.arn, resources: [args.databaseArn, args.xrayBucketArn] },
      child,
    );

    this.registerOutputs({ vaultName: this.vault.name, planId: this.plan.id });
  }
}
