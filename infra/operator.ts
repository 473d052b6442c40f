/**
 * The operator role: what an on-call engineer's session assumes to run the incident commands of
 * `npm run ops` that reach PHI or change the database topology (`preserve-evidence`, `failover`).
 * Each statement names the command it serves and the exact resources that command touches; nothing
 * else is granted (the other commands' permissions are listed per command in docs/ops.md).
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { EXPORT_PREFIX as AUDIT_EXPORT_PREFIX } from '../api/audit/export-naming.js';
import type { AwsEnvironment } from './config.js';
import { policyDocument, type PolicyStatement } from './iam.js';
import { ACCESS_LOG_PREFIX, FORENSICS_PREFIX } from './storage-layout.js';

export interface OperatorArgs {
  /** `dms-<stack>`. */
  prefix: string;
  env: AwsEnvironment;
  /** The primary's identifier and ARN: the evidence snapshot is taken of it, and failover reads it. */
  primary: { identifier: pulumi.Input<string>; arn: pulumi.Input<string> };
  /** The read replica `failover` promotes. */
  replicaArn: pulumi.Input<string>;
  /** The API's ECS service, its task definition family, and the roles its tasks run with (passed on a new revision). */
  service: { arn: pulumi.Input<string>; taskDefinitionFamily: pulumi.Input<string>; passRoleArns: pulumi.Input<string>[] };
  auditBucketArn: pulumi.Input<string>;
  accessLogBucketArn: pulumi.Input<string>;
  forensicsBucketArn: pulumi.Input<string>;
  /** Encrypts the audit exports (read) and the forensics objects (written). */
  s3KeyArn: pulumi.Input<string>;
  /** The API's and the WAF's log groups (ARNs without `:*`). */
  logGroupArns: pulumi.Input<string>[];
}

/** The role's name; the forensics bucket policy names it before the role exists. */
export const operatorRoleName = (prefix: string) => `${prefix}-operator`;

/** How long an assumed session lasts: a failover waits up to 1 h for the promotion and 30 min for the deployment. */
const MAX_SESSION_SECONDS = 4 * 3600;

export class OperatorRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;

  constructor(name: string, args: OperatorArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:operator:OperatorRole', name, {}, opts);
    const child = { parent: this };
    const { env, prefix } = args;
    const roleName = operatorRoleName(prefix);
    const arn = (service: string, resource: pulumi.Input<string>) => pulumi.interpolate`arn:${env.partition}:${service}:${env.region}:${env.accountId}:${resource}`;
    const evidenceSnapshots = arn('rds', pulumi.interpolate`snapshot:${args.primary.identifier}-incident-*`);

    this.role = new aws.iam.Role(
      roleName,
      {
        name: roleName,
        description: `${prefix}: npm run ops -- preserve-evidence and failover`,
        // The account delegates: a person may assume it only where their own IAM policy or SSO permission set allows sts:AssumeRole on it.
        assumeRolePolicy: policyDocument([
          { Sid: 'AccountPrincipalsWithPermission', Effect: 'Allow', Principal: { AWS: pulumi.interpolate`arn:${env.partition}:iam::${env.accountId}:root` }, Action: 'sts:AssumeRole' },
        ]),
        maxSessionDuration: MAX_SESSION_SECONDS,
      },
      child,
    );

    const preserveEvidence: PolicyStatement[] = [
      {
        Sid: 'PreserveEvidenceSnapshot',
        Effect: 'Allow',
        // CreateDBSnapshot is authorised on the instance and on the snapshot; its tags need AddTagsToResource.
        Action: ['rds:CreateDBSnapshot', 'rds:AddTagsToResource', 'rds:DescribeDBSnapshots'],
        Resource: [args.primary.arn, evidenceSnapshots],
      },
      { Sid: 'PreserveEvidenceReadAuditExports', Effect: 'Allow', Action: 's3:GetObject', Resource: pulumi.interpolate`${args.auditBucketArn}/${AUDIT_EXPORT_PREFIX}*` },
      { Sid: 'PreserveEvidenceListAuditExports', Effect: 'Allow', Action: 's3:ListBucket', Resource: args.auditBucketArn, Condition: { StringLike: { 's3:prefix': `${AUDIT_EXPORT_PREFIX}*` } } },
      { Sid: 'PreserveEvidenceReadAlbLogs', Effect: 'Allow', Action: 's3:GetObject', Resource: pulumi.interpolate`${args.accessLogBucketArn}/${ACCESS_LOG_PREFIX.alb}/*` },
      { Sid: 'PreserveEvidenceListAlbLogs', Effect: 'Allow', Action: 's3:ListBucket', Resource: args.accessLogBucketArn, Condition: { StringLike: { 's3:prefix': `${ACCESS_LOG_PREFIX.alb}/*` } } },
      {
        Sid: 'PreserveEvidenceReadLogs',
        Effect: 'Allow',
        Action: 'logs:FilterLogEvents',
        Resource: args.logGroupArns.flatMap((group) => [group, pulumi.interpolate`${group}:*`]),
      },
      {
        // The one place the operator may place a legal hold: the forensics bucket's incident folders
        // (a PutObject with ObjectLockLegalHoldStatus needs s3:PutObjectLegalHold too).
        Sid: 'PreserveEvidenceWriteUnderLegalHold',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:PutObjectLegalHold', 's3:GetObject', 's3:GetObjectLegalHold'],
        Resource: pulumi.interpolate`${args.forensicsBucketArn}/${FORENSICS_PREFIX}*`,
      },
      // Unconditioned: S3 answers a GetObject of a missing key (the first run's manifest) with 404 only to a
      // caller that may list the bucket, else 403. The bucket holds nothing but evidence this role reads anyway.
      { Sid: 'PreserveEvidenceListForensics', Effect: 'Allow', Action: 's3:ListBucket', Resource: args.forensicsBucketArn },
      { Sid: 'PreserveEvidenceUseTheBucketKey', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: args.s3KeyArn },
    ];
    const failover: PolicyStatement[] = [
      { Sid: 'FailoverReadInstances', Effect: 'Allow', Action: 'rds:DescribeDBInstances', Resource: [args.primary.arn, args.replicaArn] },
      { Sid: 'FailoverPromoteReplica', Effect: 'Allow', Action: 'rds:PromoteReadReplica', Resource: args.replicaArn },
      { Sid: 'FailoverUpdateService', Effect: 'Allow', Action: ['ecs:DescribeServices', 'ecs:UpdateService'], Resource: args.service.arn },
      {
        // Neither action supports resource-level permissions
        // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html).
        Sid: 'FailoverRegisterRevision',
        Effect: 'Allow',
        Action: ['ecs:DescribeTaskDefinition', 'ecs:RegisterTaskDefinition'],
        Resource: '*',
      },
      { Sid: 'FailoverTagRevision', Effect: 'Allow', Action: 'ecs:TagResource', Resource: arn('ecs', pulumi.interpolate`task-definition/${args.service.taskDefinitionFamily}:*`) },
      {
        Sid: 'FailoverPassTaskRoles',
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: args.service.passRoleArns,
        Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      },
    ];
    new aws.iam.RolePolicy(`${roleName}-preserve-evidence`, { role: this.role.id, name: 'preserve-evidence', policy: policyDocument(preserveEvidence) }, child);
    new aws.iam.RolePolicy(`${roleName}-failover`, { role: this.role.id, name: 'failover', policy: policyDocument(failover) }, child);

    this.registerOutputs({ operatorRoleArn: this.role.arn });
  }
}
