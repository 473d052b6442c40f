/**
 * Automatic rotation (FSBP SecretsManager.1, .4) of the secrets the program generates and its tasks
 * use: the JWT signing keys, the `dms_app` and `dms_audit_export` passwords and the Valkey AUTH
 * token. One rotation function per secret (code in `infra/rotation/`). Those that change a password
 * or token run in the private subnets with the tasks' security group: they reach PostgreSQL and
 * Valkey as the tasks do, and the Secrets Manager, ECS and ElastiCache APIs through the VPC endpoints
 * (an ECS one in a stack without NAT) and the NAT gateways. The JWT keys' function touches no
 * resource of the VPC and runs outside it.
 *
 * AWS rotates the RDS-managed `dms_admin` secret itself. It offers managed rotation for ElastiCache
 * only to RBAC users, not to an AUTH token, and for RDS login roles only its template functions, which
 * cannot restart the tasks that hold the password: hence these functions.
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda.html
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AwsEnvironment } from './config.js';
import { policyDocument, trustPolicy, type PolicyStatement } from './iam.js';
import { ON_FIRST_FAILURE } from './monitoring/alarms.js';
import { bundledRotationHandler } from './rotation/bundle.js';
import type { RotationKind } from './rotation/handler.js';

/** Where the failure alarm links. */
export const ROTATION_FAILED_RUNBOOK = 'secret-rotation.md#rotation-failed';

/**
 * Monthly, each secret on its own day, in a two-hour window at 07:00 UTC (02:00-03:00 in US
 * Eastern), the quiet hours of a clinic: each rotation but the exporter's redeploys the API. Well
 * within SecretsManager.4's 90 days. Secrets Manager's cron is UTC
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_schedule.html).
 */
export const ROTATION_SCHEDULES: Record<'jwtKeys' | 'appPassword' | 'exporterPassword' | 'redisUrl', string> = {
  jwtKeys: 'cron(0 7 1 * ? *)',
  appPassword: 'cron(0 7 2 * ? *)',
  exporterPassword: 'cron(0 7 3 * ? *)',
  redisUrl: 'cron(0 7 4 * ? *)',
};
export const ROTATION_WINDOW = '2h';

export interface SecretRotationArgs {
  /** `dms-<stack>`. */
  prefix: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /** Private subnets (a route to the NAT gateways). */
  subnetIds: pulumi.Input<string>[];
  /** The tasks' security group: PostgreSQL, Valkey and HTTPS out, nothing in. */
  securityGroupId: pulumi.Input<string>;
  /** Encrypts every secret rotated here. */
  secretsKey: aws.kms.Key;
  /** Encrypts the functions' log groups. */
  logsKey: aws.kms.Key;
  logRetentionDays: number;
  /** Where a failed rotation is reported (alarm e-mail and chat). */
  alarmTopicArn: pulumi.Input<string>;
  /** Base URL the failure alarm links its runbook under. */
  runbookBaseUrl: string;
  /** The API service that a rotation redeploys. */
  api: { clusterName: pulumi.Input<string>; serviceName: pulumi.Input<string> };
  database: {
    host: pulumi.Input<string>;
    port: number;
    name: string;
    /** The RDS-managed `dms_admin` secret, through which a login role's password is changed. */
    masterSecretArn: pulumi.Input<string>;
    appPasswordSecret: aws.secretsmanager.Secret;
    exporterPasswordSecret: aws.secretsmanager.Secret;
  };
  jwtKeysSecret: aws.secretsmanager.Secret;
  /** The Valkey AUTH token, when the stack has Valkey. */
  cache?: { urlSecret: aws.secretsmanager.Secret; replicationGroup: aws.elasticache.ReplicationGroup };
  /** Nothing rotates before these exist (the API service, which waits for the migration that creates the login roles). */
  after: pulumi.Resource[];
}

interface RotatedSecret {
  slug: string;
  kind: RotationKind;
  /** It reaches the database or the cache, so it runs in the VPC; otherwise it needs no network of the stack. */
  inVpc: boolean;
  secret: aws.secretsmanager.Secret;
  schedule: string;
  environment: Record<string, pulumi.Input<string>>;
  statements: pulumi.Input<PolicyStatement>[];
  /** Its rotation waits for the service to settle (Valkey), so it may run to Lambda's 15 minutes. */
  long: boolean;
}

export class SecretRotation extends pulumi.ComponentResource {
  readonly functions: aws.lambda.Function[];
  readonly rotations: aws.secretsmanager.SecretRotation[];
  readonly failedAlarmName: string;

  constructor(name: string, args: SecretRotationArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:rotation:SecretRotation', name, {}, opts);
    const child = { parent: this };
    const { prefix, env } = args;
    const serviceArn = pulumi.interpolate`arn:${env.partition}:ecs:${env.region}:${env.accountId}:service/${args.api.clusterName}/${args.api.serviceName}`;
    const api = { CLUSTER: args.api.clusterName, SERVICE: args.api.serviceName };
    const redeployApi: PolicyStatement = { Sid: 'RedeployTheApi', Effect: 'Allow', Action: ['ecs:UpdateService', 'ecs:DescribeServices'], Resource: serviceArn };
    const database = (role: 'dms_app' | 'dms_audit_export') => ({
      DB_HOST: args.database.host,
      DB_PORT: String(args.database.port),
      DB_NAME: args.database.name,
      DB_ROLE: role,
      MASTER_SECRET_ARN: args.database.masterSecretArn,
      // Node.js 20+ on Lambda loads the RDS certificates only when told to.
      // https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html#nodejs-certificate-loading
      NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
    });
    const readMasterPassword: PolicyStatement = { Sid: 'ReadTheMasterPassword', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: args.database.masterSecretArn };

    const rotated: RotatedSecret[] = [
      { slug: 'jwt-keys', kind: 'jwt-keys', inVpc: false, secret: args.jwtKeysSecret, schedule: ROTATION_SCHEDULES.jwtKeys, environment: api, statements: [redeployApi], long: false },
      {
        slug: 'db-app-password',
        kind: 'db-login',
        inVpc: true,
        secret: args.database.appPasswordSecret,
        schedule: ROTATION_SCHEDULES.appPassword,
        environment: { ...database('dms_app'), ...api },
        statements: [readMasterPassword, redeployApi],
        long: false,
      },
      {
        // Only the scheduled export and purge jobs use it, and they read it when they start.
        slug: 'db-exporter-password',
        kind: 'db-login',
        inVpc: true,
        secret: args.database.exporterPasswordSecret,
        schedule: ROTATION_SCHEDULES.exporterPassword,
        environment: database('dms_audit_export'),
        statements: [readMasterPassword],
        long: false,
      },
      ...(args.cache
        ? [
            {
              slug: 'redis-url',
              kind: 'redis-auth',
              inVpc: true,
              secret: args.cache.urlSecret,
              schedule: ROTATION_SCHEDULES.redisUrl,
              environment: { ...api, REPLICATION_GROUP_ID: args.cache.replicationGroup.replicationGroupId },
              statements: [
                redeployApi,
                {
                  Sid: 'ChangeTheAuthToken',
                  Effect: 'Allow',
                  Action: ['elasticache:ModifyReplicationGroup', 'elasticache:DescribeReplicationGroups'],
                  Resource: args.cache.replicationGroup.arn,
                },
              ],
              long: true,
            } satisfies RotatedSecret,
          ]
        : []),
    ];

    const code = new pulumi.asset.AssetArchive({ 'index.js': new pulumi.asset.StringAsset(bundledRotationHandler()) });
    this.functions = [];
    this.rotations = [];
    for (const entry of rotated) {
      const functionName = `${prefix}-rotate-${entry.slug}`;
      const logGroup = new aws.cloudwatch.LogGroup(functionName, { name: `/aws/lambda/${functionName}`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn }, child);
      const role = new aws.iam.Role(functionName, { name: functionName, assumeRolePolicy: trustPolicy('lambda.amazonaws.com', env.accountId) }, child);
      const rolePolicy = new aws.iam.RolePolicy(
        functionName,
        {
          role: role.id,
          policy: policyDocument([
            {
              Sid: 'RotateThisSecret',
              Effect: 'Allow',
              Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'],
              Resource: entry.secret.arn,
            },
            {
              Sid: 'UseTheSecretsKey',
              Effect: 'Allow',
              Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
              Resource: args.secretsKey.arn,
              Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${env.region}.amazonaws.com` } },
            },
            ...entry.statements,
            // A function in a VPC creates its network interfaces through its role; EC2 offers these on `*` only
            // (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions).
            ...(entry.inVpc
              ? [
                  {
                    Sid: 'AttachToTheVpc',
                    Effect: 'Allow',
                    Action: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
                    Resource: '*',
                  } satisfies PolicyStatement,
                ]
              : []),
            { Sid: 'WriteOwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: pulumi.interpolate`${logGroup.arn}:*` },
          ]),
        },
        child,
      );
      const fn = new aws.lambda.Function(
        functionName,
        {
          name: functionName,
          description: `Rotates ${prefix}/${entry.slug} (Secrets Manager rotation, ${entry.kind})`,
          runtime: aws.lambda.Runtime.NodeJS22dX,
          architectures: ['arm64'],
          handler: 'index.handler',
          code,
          role: role.arn,
          // Lambda's ceiling for the Valkey rotation, which waits for ElastiCache and for the API to settle.
          timeout: entry.long ? 900 : 120,
          memorySize: 256,
          ...(entry.inVpc ? { vpcConfig: { subnetIds: args.subnetIds, securityGroupIds: [args.securityGroupId] } } : {}),
          environment: { variables: { ROTATION_KIND: entry.kind, ...entry.environment } },
          loggingConfig: { logFormat: 'Text', logGroup: logGroup.name },
        },
        { ...child, dependsOn: [logGroup, rolePolicy] },
      );
      const permission = new aws.lambda.Permission(
        functionName,
        { function: fn.name, action: 'lambda:InvokeFunction', principal: 'secretsmanager.amazonaws.com', sourceArn: entry.secret.arn, sourceAccount: env.accountId },
        child,
      );
      this.rotations.push(
        new aws.secretsmanager.SecretRotation(
          functionName,
          {
            secretId: entry.secret.id,
            rotationLambdaArn: fn.arn,
            rotationRules: { scheduleExpression: entry.schedule, duration: ROTATION_WINDOW },
            // The first rotation waits for its schedule: on a first `pulumi up` the login roles may not exist yet.
            rotateImmediately: false,
          },
          { ...child, dependsOn: [permission, ...args.after] },
        ),
      );
      this.functions.push(fn);
    }

    // A rotation step that throws is an error of its function; Secrets Manager retries, and the
    // secret keeps its AWSCURRENT value, but what the step had done (a role password set, a second
    // Valkey token) stays until someone looks.
    this.failedAlarmName = `${prefix}-secret-rotation-failed`;
    new aws.cloudwatch.MetricAlarm(
      this.failedAlarmName,
      {
        name: this.failedAlarmName,
        alarmDescription: `P2: A secret rotation step failed: a password, key or token may be half rotated. Runbook: ${args.runbookBaseUrl.replace(/\/+$/, '')}/runbooks/${ROTATION_FAILED_RUNBOOK}`,
        ...ON_FIRST_FAILURE,
        metricQueries: [
          {
            id: 'failures',
            expression: this.functions.map((_, index) => `FILL(f${index}, 0)`).join(' + '),
            label: 'Failed rotation steps',
            returnData: true,
          },
          ...this.functions.map((fn, index) => ({
            id: `f${index}`,
            metric: { namespace: 'AWS/Lambda', metricName: 'Errors', dimensions: { FunctionName: fn.name }, period: 300, stat: 'Sum' },
          })),
        ],
        alarmActions: [args.alarmTopicArn],
        okActions: [args.alarmTopicArn],
        tags: { Severity: 'P2' },
      },
      child,
    );
    this.registerOutputs({ rotationFunctionNames: this.functions.map((fn) => fn.name) });
  }
}
