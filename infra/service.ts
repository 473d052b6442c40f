/**
 * The API on ECS Fargate: image repository and build, cluster, task definitions (API, migration,
 * audit export/purge, DR drill verification), roles scoped to exact ARNs, the service behind the ALB
 * with circuit-breaker rollback and autoscaling, the migration run that gates each new revision, the
 * scheduled audit jobs, the JWT signing keys, and the optional Valkey for shared rate limits.
 */
import * as aws from '@pulumi/aws';
import * as awsx from '@pulumi/awsx';
import * as pulumi from '@pulumi/pulumi';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { PRODUCTION_MFA_REQUIRED_ROLES } from '../api/config.js';
import { metricsNamespace, type AwsEnvironment, type CacheSettings, type ServiceSettings } from './config.js';
import { APP_USERNAME, DATABASE_NAME, DATABASE_PORT, EXPORTER_USERNAME, MASTER_USERNAME } from './database.js';
import { policyDocument, trustPolicy, type PolicyStatement } from './iam.js';
import { buildContextTag } from './image-tag.js';
import { XRAY_OBJECT_PREFIX } from './storage.js';

/** Repository root: the Docker build context. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The API image's Dockerfile (CONTRACT: compiled to `dist/`, `node dist/api/main.js`). */
export const DOCKERFILE = fileURLToPath(new URL('../Dockerfile', import.meta.url));

export const API_PORT = 3000;
export const CONTAINER_NAME = 'api';

/**
 * The AWS Distro for OpenTelemetry collector beside the API when tracing is on
 * (https://aws-otel.github.io/docs/setup/ecs): it takes OTLP over HTTP on the task's loopback and
 * sends the spans to AWS X-Ray with the task role. Its CPU and memory come out of the task's, and
 * its config travels in `AOT_CONFIG_CONTENT`, the variable the ADOT image reads its configuration
 * from, so no file or parameter is needed.
 */
export const COLLECTOR = {
  name: 'otel-collector',
  image: 'public.ecr.aws/aws-observability/aws-otel-collector:v0.47.0',
  cpu: 128,
  memoryMiB: 256,
  /** The image's non-root user (`aoc`). */
  user: '10001',
  otlpHttpEndpoint: 'http://127.0.0.1:4318',
} as const;

/** The collector's configuration: OTLP/HTTP on loopback in, a memory limit, batches, X-Ray out. */
export function collectorConfig(region: string): string {
  return [
    'extensions:',
    '  health_check:',
    '    endpoint: 127.0.0.1:13133',
    'receivers:',
    '  otlp:',
    '    protocols:',
    '      http:',
    '        endpoint: 127.0.0.1:4318',
    'processors:',
    // Under its 256 MiB: refuse spans (the API's exporter drops them) rather than be OOM-killed.
    '  memory_limiter:',
    '    check_interval: 1s',
    '    limit_mib: 200',
    '    spike_limit_mib: 50',
    '  batch:',
    '    timeout: 5s',
    'exporters:',
    '  awsxray:',
    `    region: ${region}`,
    // Searchable in X-Ray (annotations): find the traces of one route, or of its errors.
    '    indexed_attributes: [http.route, http.response.status_code]',
    'service:',
    '  extensions: [health_check]',
    '  pipelines:',
    '    traces:',
    '      receivers: [otlp]',
    '      processors: [memory_limiter, batch]',
    '      exporters: [awsxray]',
    '',
  ].join('\n');
}
/** The `node` user of the official Node images; the task never runs as root. */
export const CONTAINER_USER = '1000:1000';
/** RDS CA bundle baked into the image (CONTRACT §1). */
export const RDS_CA_BUNDLE = '/app/certs/rds-global-bundle.pem';

/** One-off commands of the image (`node dist/api/cli.js <command>`), each its own task definition family. */
export const JOBS = {
  migrate: 'migrate',
  auditExport: 'audit:export',
  auditPurge: 'audit:purge',
  drillVerify: 'drill:verify',
} as const;

/**
 * Role names are fixed so the bucket policies (created before the roles) can name them exactly.
 * `api` reads/writes X-rays; `auditExport` writes audit exports; `auditPurge` reads them back to
 * verify before rows leave the database.
 */
export function taskRoleNames(prefix: string) {
  return {
    api: `${prefix}-api-task`,
    auditExport: `${prefix}-audit-export-task`,
    auditPurge: `${prefix}-audit-purge-task`,
  } as const;
}

/** ARN of a role this component creates, known before it exists. */
export function roleArn(env: AwsEnvironment, roleName: string): pulumi.Output<string> {
  return pulumi.interpolate`arn:${env.partition}:iam::${env.accountId}:role/${roleName}`;
}

/** The `dms:service` settings plus what the other components provide. */
export interface ServiceArgs extends ServiceSettings {
  /** `dms-<stack>`. */
  prefix: string;
  /** Stack name (used in the JWT key id). */
  stack: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /** Private subnets for every task. */
  subnetIds: pulumi.Input<string>[];
  /** Isolated subnets for Valkey. */
  isolatedSubnetIds: pulumi.Input<string>[];
  /** Security group of every task. */
  securityGroupId: pulumi.Input<string>;
  /** Security group of Valkey. */
  cacheSecurityGroupId: pulumi.Input<string>;
  /** Target group the service registers in. */
  targetGroupArn: pulumi.Input<string>;
  /** The listener forwarding to the target group (ECS refuses a target group without one). */
  listener: pulumi.Resource;
  /** X-ray bucket (objects under `patients/`). */
  xrayBucket: aws.s3.Bucket;
  /** Audit export bucket. */
  auditBucket: aws.s3.Bucket;
  /**
   * Days audit rows stay in the database (`AUDIT_HOT_DAYS` of every task): the same
   * `dms:storage.auditHotDays` after which the bucket moves exports to Glacier.
   */
  auditHotDays: number;
  /**
   * The web client's origins (`CORS_ORIGINS` of the API): the same `dms:storage.xrayCorsOrigins` the
   * X-ray bucket's CORS rule allows, so a page that may call the API may also upload and download.
   */
  corsOrigins: readonly string[];
  /** Key of both buckets. */
  s3Key: aws.kms.Key;
  /** Key of the log groups. */
  logsKey: aws.kms.Key;
  /** Key of the secrets. */
  secretsKey: aws.kms.Key;
  /** Primary endpoint host. */
  databaseHost: pulumi.Input<string>;
  /** Replica endpoint host. */
  replicaHost: pulumi.Input<string>;
  /** RDS-managed secret of `dms_admin` (migration only). */
  masterSecretArn: pulumi.Input<string>;
  /** `dms-<stack>/db-app-password`. */
  appPasswordSecretArn: pulumi.Input<string>;
  /** Secret holding the audit exporter role's password: only the export and purge jobs get it. */
  exporterPasswordSecretArn: pulumi.Input<string>;
  /** Log retention (days). */
  logRetentionDays: number;
  /** Valkey for shared rate limits. */
  cache: CacheSettings;
}

interface ContainerSecret {
  name: string;
  valueFrom: pulumi.Input<string>;
}

export class Service extends pulumi.ComponentResource {
  readonly repository: aws.ecr.Repository;
  readonly image: awsx.ecr.Image;
  readonly cluster: aws.ecs.Cluster;
  /** Every task's stdout (one JSON object per line): the monitoring metric filters read it. */
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly taskDefinition: aws.ecs.TaskDefinition;
  readonly migrationTaskDefinition: aws.ecs.TaskDefinition;
  readonly drillVerifyTaskDefinition: aws.ecs.TaskDefinition;
  readonly auditExportTaskDefinition: aws.ecs.TaskDefinition;
  readonly auditPurgeTaskDefinition: aws.ecs.TaskDefinition;
  readonly service: aws.ecs.Service;
  /** `dms-<stack>/jwt-keys`: JSON array of signing keys (CONTRACT §1), rotated monthly by `infra/secret-rotation.ts` (or `npm run ops -- rotate-jwt-key`). */
  readonly jwtKeysSecret: aws.secretsmanager.Secret;
  /** Valkey replication group, when enabled. */
  readonly cache?: aws.elasticache.ReplicationGroup;
  /** `dms-<stack>/redis-url` (REDIS_URL with the AUTH token), when Valkey is enabled. */
  readonly redisUrlSecret?: aws.secretsmanager.Secret;
  /** Runs the migration task and fails `pulumi up` if it does not exit 0. */
  readonly migrationRunner: aws.lambda.Function;
  readonly taskRoles: { api: aws.iam.Role; auditExport: aws.iam.Role; auditPurge: aws.iam.Role };
  /** Execution role of the API's tasks: a new revision of its task definition passes it (`npm run ops -- failover`). */
  readonly apiExecutionRole: aws.iam.Role;
  /** Execution role of each one-off task family: it injects that job's secrets and no others. */
  readonly jobExecutionRoles: Record<keyof typeof JOBS, aws.iam.Role>;
  readonly minTaskCount: number;
  readonly maxTaskCount: number;

  constructor(name: string, args: ServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:service:Service', name, {}, opts);
    const child = { parent: this };
    const { prefix, env } = args;
    const { region } = env;
    this.minTaskCount = args.minTasks;
    this.maxTaskCount = args.maxTasks;

    this.repository = new aws.ecr.Repository(
      `${prefix}-api`,
      {
        name: `${prefix}-api`,
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: 'AES256' }],
      },
      child,
    );
    new aws.ecr.LifecyclePolicy(
      `${prefix}-api`,
      {
        repository: this.repository.name,
        policy: JSON.stringify({
          rules: [
            // Rollback needs the recent images; older ones only cost storage.
            { rulePriority: 1, description: 'Keep the 30 newest images', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 30 }, action: { type: 'expire' } },
          ],
        }),
      },
      child,
    );
    this.image = new awsx.ecr.Image(
      `${prefix}-api`,
      { repositoryUrl: this.repository.repositoryUrl, context: REPO_ROOT, dockerfile: DOCKERFILE, platform: 'linux/amd64', imageTag: buildContextTag(REPO_ROOT, DOCKERFILE) },
      child,
    );

    this.cluster = new aws.ecs.Cluster(`${prefix}`, { name: prefix, settings: [{ name: 'containerInsights', value: 'enabled' }] }, child);
    this.logGroup = new aws.cloudwatch.LogGroup(
      `${prefix}-api-logs`,
      { name: `/dms/${prefix.slice('dms-'.length)}/api`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
      child,
    );

    this.jwtKeysSecret = new aws.secretsmanager.Secret(
      `${prefix}-jwt-keys`,
      { name: `${prefix}/jwt-keys`, description: 'DMS API JWT keys: JSON array, the first signs, all verify', kmsKeyId: args.secretsKey.arn, recoveryWindowInDays: 30 },
      child,
    );
    new aws.secretsmanager.SecretVersion(
      `${prefix}-jwt-keys`,
      { secretId: this.jwtKeysSecret.id, secretString: pulumi.secret(JSON.stringify([initialJwtKey(args.stack)])) },
      // The first version only: `rotate-jwt-key` adds the next ones, and `pulumi up` must not put this one back.
      { ...child, ignoreChanges: ['secretString'] },
    );

    const apiSecrets: ContainerSecret[] = [
      { name: 'PGPASSWORD', valueFrom: args.appPasswordSecretArn },
      { name: 'JWT_KEYS', valueFrom: this.jwtKeysSecret.arn },
    ];
    const secretArns: pulumi.Input<string>[] = [args.appPasswordSecretArn, this.jwtKeysSecret.arn];
    if (args.cache.enabled) {
      const redis = this.createCache(args);
      this.cache = redis.group;
      this.redisUrlSecret = redis.urlSecret;
      apiSecrets.push({ name: 'REDIS_URL', valueFrom: redis.urlSecret.arn });
      secretArns.push(redis.urlSecret.arn);
    }

    // Execution roles: what ECS itself needs to start a task (pull, log, inject secrets). One per task
    // family, each able to read only the secrets its containers get: a job never holds the JWT
    // signing keys or the Redis AUTH token, and only the migration holds the master password.
    const executionRole = this.executionRole(`${prefix}-task-execution`, args, secretArns);
    this.apiExecutionRole = executionRole;
    const appPassword: ContainerSecret = { name: 'PGPASSWORD', valueFrom: args.appPasswordSecretArn };
    const exporterPassword: ContainerSecret = { name: 'PGPASSWORD', valueFrom: args.exporterPasswordSecretArn };
    const jobSecrets = {
      migrate: [
        { name: 'PGPASSWORD', valueFrom: pulumi.interpolate`${args.masterSecretArn}:password::` },
        { name: 'DB_APP_PASSWORD', valueFrom: args.appPasswordSecretArn },
        { name: 'DB_EXPORTER_PASSWORD', valueFrom: args.exporterPasswordSecretArn },
      ],
      auditExport: [exporterPassword],
      auditPurge: [exporterPassword],
      drillVerify: [appPassword],
    } satisfies Record<keyof typeof JOBS, ContainerSecret[]>;
    const jobExecutionRole = (slug: string, secrets: ContainerSecret[]) =>
      this.executionRole(`${prefix}-${slug}-execution`, args, secrets.map((secret) => secret.valueFrom));
    const migrationExecutionRole = jobExecutionRole('migrate', jobSecrets.migrate);
    this.jobExecutionRoles = {
      migrate: migrationExecutionRole,
      auditExport: jobExecutionRole('audit-export', jobSecrets.auditExport),
      auditPurge: jobExecutionRole('audit-purge', jobSecrets.auditPurge),
      drillVerify: jobExecutionRole('drill-verify', jobSecrets.drillVerify),
    };

    // Task roles: what the application may do in AWS, object paths and keys named exactly.
    const roleNames = taskRoleNames(prefix);
    const tracing = args.traceSampleRatio > 0;
    const s3KeyUse = (actions: string[]): PolicyStatement => ({ Sid: 'UseTheBucketKey', Effect: 'Allow', Action: actions, Resource: args.s3Key.arn });
    this.taskRoles = {
      api: this.taskRole(roleNames.api, env, [
        {
          Sid: 'XrayObjects',
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          Resource: pulumi.interpolate`${args.xrayBucket.arn}/${XRAY_OBJECT_PREFIX}*`,
        },
        // Without ListBucket a missing object answers 403 instead of 404, and `complete` could not tell "not uploaded yet".
        {
          Sid: 'ListXrayKeys',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: args.xrayBucket.arn,
          Condition: { StringLike: { 's3:prefix': `${XRAY_OBJECT_PREFIX}*` } },
        },
        s3KeyUse(['kms:Decrypt', 'kms:GenerateDataKey']),
        // The collector sidecar runs with the task role. X-Ray's write actions take no resource ARN
        // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html).
        ...(tracing
          ? [{ Sid: 'SendTracesToAwsXRay', Effect: 'Allow' as const, Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' }]
          : []),
      ]),
      auditExport: this.taskRole(roleNames.auditExport, env, [
        { Sid: 'WriteAndVerifyExports', Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject'], Resource: pulumi.interpolate`${args.auditBucket.arn}/*` },
        { Sid: 'ListExports', Effect: 'Allow', Action: 's3:ListBucket', Resource: args.auditBucket.arn },
        s3KeyUse(['kms:Decrypt', 'kms:GenerateDataKey']),
      ]),
      auditPurge: this.taskRole(roleNames.auditPurge, env, [
        { Sid: 'ReadExportsBeforePurge', Effect: 'Allow', Action: 's3:GetObject', Resource: pulumi.interpolate`${args.auditBucket.arn}/*` },
        { Sid: 'ListExports', Effect: 'Allow', Action: 's3:ListBucket', Resource: args.auditBucket.arn },
        s3KeyUse(['kms:Decrypt']),
      ]),
    };

    const databaseUrl = (user: string, host: pulumi.Input<string>) =>
      pulumi.interpolate`postgres://${user}@${host}:${DATABASE_PORT}/${DATABASE_NAME}?sslmode=verify-full`;
    const environment: { name: string; value: pulumi.Input<string> }[] = [
      { name: 'NODE_ENV', value: 'production' },
      { name: 'PORT', value: String(API_PORT) },
      { name: 'DATABASE_URL', value: databaseUrl(APP_USERNAME, args.databaseHost) },
      { name: 'DATABASE_REPLICA_URLS', value: databaseUrl(APP_USERNAME, args.replicaHost) },
      { name: 'NODE_EXTRA_CA_CERTS', value: RDS_CA_BUNDLE },
      { name: 'AWS_REGION', value: region },
      { name: 'XRAY_BUCKET', value: args.xrayBucket.bucket },
      { name: 'AUDIT_BUCKET', value: args.auditBucket.bucket },
      { name: 'AUDIT_HOT_DAYS', value: String(args.auditHotDays) },
      ...(args.corsOrigins.length ? [{ name: 'CORS_ORIGINS', value: args.corsOrigins.join(',') }] : []),
      // Every write names the buckets' key: the bucket policies refuse any other encryption.
      { name: 'S3_KMS_KEY_ARN', value: args.s3Key.arn },
      { name: 'TRUST_PROXY_HOPS', value: '1' },
      { name: 'PRESIGN_TTL_S', value: '90' },
      { name: 'LOG_LEVEL', value: 'info' },
      // Said out loud rather than left to the API's production default: the roles that must sign in with MFA.
      { name: 'MFA_REQUIRED_ROLES', value: PRODUCTION_MFA_REQUIRED_ROLES.join(',') },
    ];
    const taskDefinition = (family: string, spec: TaskSpec) => this.taskDefinitionFor(family, args, spec);

    this.taskDefinition = taskDefinition(`${prefix}-api`, {
      command: ['node', 'dist/api/main.js'],
      // Only the API serves requests: its EMF records feed the per-route metrics and the latency SLOs,
      // and its traces go to the collector beside it.
      environment: [
        ...environment,
        { name: 'METRICS_NAMESPACE', value: metricsNamespace(args.stack) },
        // The sequencer that counts distinct patients per user runs in the API tasks only.
        { name: 'AUDIT_HEAVY_USER_PATIENTS', value: String(args.auditHeavyUserPatients) },
        ...(tracing
          ? [
              { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: COLLECTOR.otlpHttpEndpoint },
              { name: 'OTEL_TRACES_SAMPLER_ARG', value: String(args.traceSampleRatio) },
            ]
          : []),
      ],
      ...(tracing ? { sidecar: this.collectorContainer(args) } : {}),
      secrets: apiSecrets,
      executionRole,
      taskRole: this.taskRoles.api,
      streamPrefix: 'api',
      portMappings: [{ containerPort: API_PORT, protocol: 'tcp' }],
      cpu: args.cpu,
      memory: args.memory,
    });
    const job = (name: keyof typeof JOBS, streamPrefix: string, taskRole?: aws.iam.Role): TaskSpec => ({
      command: ['node', 'dist/api/cli.js', JOBS[name]],
      environment,
      secrets: jobSecrets[name],
      executionRole: this.jobExecutionRoles[name],
      ...(taskRole ? { taskRole } : {}),
      streamPrefix,
      cpu: 512,
      memory: 1024,
    });
    // Migrations connect as the master user and (re)create the least-privileged role with the app password.
    this.migrationTaskDefinition = taskDefinition(`${prefix}-migrate`, {
      ...job('migrate', 'migrate'),
      environment: environment.map((variable) => (variable.name === 'DATABASE_URL' ? { name: 'DATABASE_URL', value: databaseUrl(MASTER_USERNAME, args.databaseHost) } : variable)),
    });
    // Only the exporter's role may record an export as verified or purge: the API's role cannot
    // forge the "verified" row that would let `audit_purge` delete rows never exported.
    const asExporter = (spec: TaskSpec): TaskSpec => ({
      ...spec,
      environment: environment.map((variable) => (variable.name === 'DATABASE_URL' ? { name: 'DATABASE_URL', value: databaseUrl(EXPORTER_USERNAME, args.databaseHost) } : variable)),
    });
    this.auditExportTaskDefinition = taskDefinition(`${prefix}-audit-export`, asExporter(job('auditExport', 'audit-export', this.taskRoles.auditExport)));
    this.auditPurgeTaskDefinition = taskDefinition(`${prefix}-audit-purge`, asExporter(job('auditPurge', 'audit-purge', this.taskRoles.auditPurge)));
    // The DR drill runs this against a restored instance (overriding DATABASE_URL and DATABASE_REPLICA_URLS); it needs no AWS access.
    this.drillVerifyTaskDefinition = taskDefinition(`${prefix}-drill-verify`, job('drillVerify', 'drill-verify'));

    const network = { subnets: args.subnetIds, securityGroups: [args.securityGroupId], assignPublicIp: false };
    const migrations = this.runMigrationsBeforeTraffic(args, migrationExecutionRole, network);
    this.migrationRunner = migrations.runner;

    this.service = new aws.ecs.Service(
      `${prefix}-api`,
      {
        name: `${prefix}-api`,
        cluster: this.cluster.arn,
        taskDefinition: this.taskDefinition.arn,
        launchType: 'FARGATE',
        platformVersion: 'LATEST',
        desiredCount: args.minTasks,
        networkConfiguration: network,
        loadBalancers: [{ targetGroupArn: args.targetGroupArn, containerName: CONTAINER_NAME, containerPort: API_PORT }],
        healthCheckGracePeriodSeconds: 60,
        deploymentCircuitBreaker: { enable: true, rollback: true },
        deploymentMinimumHealthyPercent: 100,
        deploymentMaximumPercent: 200,
        availabilityZoneRebalancing: 'ENABLED',
        propagateTags: 'SERVICE',
        enableEcsManagedTags: true,
        // ECS Exec would open a shell next to PHI; the runbooks never need one.
        enableExecuteCommand: false,
        waitForSteadyState: true,
      },
      // Autoscaling owns the running count after creation.
      { ...child, dependsOn: [args.listener, migrations.run], ignoreChanges: ['desiredCount'] },
    );

    const scalingTarget = new aws.appautoscaling.Target(
      `${prefix}-api`,
      {
        serviceNamespace: 'ecs',
        scalableDimension: 'ecs:service:DesiredCount',
        resourceId: pulumi.interpolate`service/${this.cluster.name}/${this.service.name}`,
        minCapacity: args.minTasks,
        maxCapacity: args.maxTasks,
      },
      child,
    );
    const trackingPolicies = [
      { metric: 'ECSServiceAverageCPUUtilization', target: args.cpuTargetPercent, suffix: 'cpu' },
      { metric: 'ECSServiceAverageMemoryUtilization', target: args.memoryTargetPercent, suffix: 'memory' },
    ];
    for (const { metric, target, suffix } of trackingPolicies) {
      new aws.appautoscaling.Policy(
        `${prefix}-api-${suffix}`,
        {
          name: `${prefix}-api-${suffix}`,
          policyType: 'TargetTrackingScaling',
          serviceNamespace: scalingTarget.serviceNamespace,
          scalableDimension: scalingTarget.scalableDimension,
          resourceId: scalingTarget.resourceId,
          targetTrackingScalingPolicyConfiguration: {
            predefinedMetricSpecification: { predefinedMetricType: metric },
            targetValue: target,
            scaleOutCooldown: args.scaleOutCooldownSeconds,
            scaleInCooldown: args.scaleInCooldownSeconds,
          },
        },
        child,
      );
    }

    this.scheduleJobs(args, network);

    this.registerOutputs({
      clusterName: this.cluster.name,
      serviceName: this.service.name,
      logGroupName: this.logGroup.name,
      taskDefinitionFamily: this.taskDefinition.family,
    });
  }

  private executionRole(roleName: string, args: ServiceArgs, secretArns: pulumi.Input<string>[]): aws.iam.Role {
    const child = { parent: this };
    const role = new aws.iam.Role(roleName, { name: roleName, assumeRolePolicy: trustPolicy('ecs-tasks.amazonaws.com', args.env.accountId) }, child);
    new aws.iam.RolePolicy(
      roleName,
      {
        role: role.id,
        policy: policyDocument([
          // GetAuthorizationToken has no resource-level permissions; the pulls themselves are scoped to the repository.
          { Sid: 'EcrLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
          { Sid: 'PullApiImage', Effect: 'Allow', Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], Resource: this.repository.arn },
          { Sid: 'ShipLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: pulumi.interpolate`${this.logGroup.arn}:log-stream:*` },
          { Sid: 'InjectSecrets', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretArns.map(withoutJsonKey) },
          {
            Sid: 'DecryptSecrets',
            Effect: 'Allow',
            Action: 'kms:Decrypt',
            Resource: args.secretsKey.arn,
            Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${args.env.region}.amazonaws.com` } },
          },
        ]),
      },
      child,
    );
    return role;
  }

  /**
   * The trace collector: not essential (if it dies the API keeps serving and its spans are dropped),
   * non-root on a read-only root file system like the API, its own log stream.
   */
  private collectorContainer(args: ServiceArgs): NonNullable<TaskSpec['sidecar']> {
    return {
      name: COLLECTOR.name,
      image: COLLECTOR.image,
      essential: false,
      user: COLLECTOR.user,
      readonlyRootFilesystem: true,
      cpu: COLLECTOR.cpu,
      memory: COLLECTOR.memoryMiB,
      environment: [{ name: 'AOT_CONFIG_CONTENT', value: collectorConfig(args.env.region) }],
      linuxParameters: { initProcessEnabled: true, capabilities: { drop: ['ALL'] } },
      // The image's own health probe (https://aws-otel.github.io/docs/setup/ecs/task-definition-for-ecs-fargate).
      healthCheck: { command: ['/healthcheck'], interval: 30, timeout: 5, retries: 3, startPeriod: 10 },
      logConfiguration: {
        logDriver: 'awslogs',
        options: { 'awslogs-group': this.logGroup.name, 'awslogs-region': args.env.region, 'awslogs-stream-prefix': 'otel-collector', mode: 'non-blocking', 'max-buffer-size': '4m' },
      },
    };
  }

  private taskRole(roleName: string, env: AwsEnvironment, statements: PolicyStatement[]): aws.iam.Role {
    const child = { parent: this };
    const role = new aws.iam.Role(roleName, { name: roleName, assumeRolePolicy: trustPolicy('ecs-tasks.amazonaws.com', env.accountId) }, child);
    new aws.iam.RolePolicy(roleName, { role: role.id, policy: policyDocument(statements) }, child);
    return role;
  }

  private taskDefinitionFor(family: string, args: ServiceArgs, spec: TaskSpec): aws.ecs.TaskDefinition {
    const container = {
      name: CONTAINER_NAME,
      image: this.image.imageUri,
      essential: true,
      command: spec.command,
      user: CONTAINER_USER,
      readonlyRootFilesystem: true,
      portMappings: spec.portMappings ?? [],
      environment: spec.environment,
      secrets: spec.secrets,
      // The root file system is read-only; libraries that need scratch space get /tmp.
      mountPoints: [{ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false }],
      linuxParameters: { initProcessEnabled: true, capabilities: { drop: ['ALL'] } },
      stopTimeout: 30,
      logConfiguration: {
        logDriver: 'awslogs',
        options: {
          'awslogs-group': this.logGroup.name,
          'awslogs-region': args.env.region,
          'awslogs-stream-prefix': spec.streamPrefix,
          // A slow CloudWatch must not stall request handling; the 25 MB buffer absorbs bursts.
          mode: 'non-blocking',
          'max-buffer-size': '25m',
        },
      },
    };
    return new aws.ecs.TaskDefinition(
      family,
      {
        family,
        requiresCompatibilities: ['FARGATE'],
        networkMode: 'awsvpc',
        cpu: String(spec.cpu),
        memory: String(spec.memory),
        runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: 'X86_64' },
        executionRoleArn: spec.executionRole.arn,
        ...(spec.taskRole ? { taskRoleArn: spec.taskRole.arn } : {}),
        volumes: [{ name: 'tmp' }],
        containerDefinitions: pulumi.jsonStringify(
          spec.sidecar
            ? [
                {
                  ...container,
                  // The API gets what the sidecar leaves, so the two never outgrow the task together.
                  cpu: spec.cpu - spec.sidecar.cpu,
                  memory: spec.memory - spec.sidecar.memory,
                  dependsOn: [{ containerName: spec.sidecar.name, condition: 'START' }],
                },
                spec.sidecar,
              ]
            : [container],
        ),
        // A new image replaces the task definition; without this the replaced revision is deregistered,
        // and ECS cannot move a service back to an INACTIVE revision, so `npm run ops -- rollback`
        // would have nothing to roll back to ("you can't update an existing service to reference an
        // INACTIVE task definition revision", https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html).
        skipDestroy: true,
      },
      { parent: this },
    );
  }

  /**
   * `pulumi up` invokes a small function that runs the migration task and waits for it: a failing
   * migration fails the update before the service moves to the new task definition, so no revision
   * takes traffic against a schema it does not know. It re-runs whenever the migration task
   * definition changes (every new image).
   */
  private runMigrationsBeforeTraffic(
    args: ServiceArgs,
    migrationExecutionRole: aws.iam.Role,
    network: TaskNetwork,
  ): { runner: aws.lambda.Function; run: aws.lambda.Invocation } {
    const child = { parent: this };
    const { prefix, env } = args;
    const functionName = `${prefix}-run-migrations`;
    const logGroup = new aws.cloudwatch.LogGroup(
      functionName,
      { name: `/aws/lambda/${functionName}`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
      child,
    );
    const role = new aws.iam.Role(functionName, { name: functionName, assumeRolePolicy: trustPolicy('lambda.amazonaws.com', env.accountId) }, child);
    new aws.iam.RolePolicy(
      functionName,
      {
        role: role.id,
        policy: policyDocument([
          {
            Sid: 'RunMigrationTask',
            Effect: 'Allow',
            Action: 'ecs:RunTask',
            Resource: pulumi.interpolate`arn:${env.partition}:ecs:${env.region}:${env.accountId}:task-definition/${prefix}-migrate:*`,
            Condition: { ArnEquals: { 'ecs:cluster': this.cluster.arn } },
          },
          {
            Sid: 'WatchMigrationTask',
            Effect: 'Allow',
            Action: 'ecs:DescribeTasks',
            Resource: pulumi.interpolate`arn:${env.partition}:ecs:${env.region}:${env.accountId}:task/${this.cluster.name}/*`,
          },
          {
            Sid: 'PassMigrationRoles',
            Effect: 'Allow',
            Action: 'iam:PassRole',
            Resource: migrationExecutionRole.arn,
            Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
          },
          { Sid: 'WriteOwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: pulumi.interpolate`${logGroup.arn}:log-stream:*` },
        ]),
      },
      child,
    );
    const runner = new aws.lambda.Function(
      functionName,
      {
        name: functionName,
        description: 'Runs the DMS migration task and fails unless it exits 0',
        runtime: 'nodejs22.x',
        architectures: ['arm64'],
        handler: 'index.handler',
        code: new pulumi.asset.AssetArchive({ 'index.mjs': new pulumi.asset.StringAsset(MIGRATION_RUNNER_SOURCE) }),
        role: role.arn,
        // Lambda's ceiling; the handler gives up a minute earlier with a clear message.
        timeout: 900,
        memorySize: 256,
        loggingConfig: { logFormat: 'JSON', logGroup: logGroup.name },
      },
      child,
    );
    const run = new aws.lambda.Invocation(
      `${prefix}-migrate`,
      {
        functionName: runner.name,
        input: pulumi.jsonStringify({
          cluster: this.cluster.arn,
          taskDefinition: this.migrationTaskDefinition.arn,
          subnets: network.subnets,
          securityGroups: network.securityGroups,
          container: CONTAINER_NAME,
        }),
      },
      child,
    );
    return { runner, run };
  }

  /** EventBridge Scheduler runs the audit jobs on their own task definitions in the private subnets. */
  private scheduleJobs(args: ServiceArgs, network: TaskNetwork): void {
    const child = { parent: this };
    const { prefix, env } = args;
    const schedulerRoleName = `${prefix}-scheduler`;
    const role = new aws.iam.Role(schedulerRoleName, { name: schedulerRoleName, assumeRolePolicy: trustPolicy('scheduler.amazonaws.com', env.accountId) }, child);
    const jobs = [
      { slug: 'audit-export', expression: args.auditExportSchedule, taskDefinition: this.auditExportTaskDefinition, taskRole: this.taskRoles.auditExport, executionRole: this.jobExecutionRoles.auditExport },
      { slug: 'audit-purge', expression: args.auditPurgeSchedule, taskDefinition: this.auditPurgeTaskDefinition, taskRole: this.taskRoles.auditPurge, executionRole: this.jobExecutionRoles.auditPurge },
    ];
    new aws.iam.RolePolicy(
      schedulerRoleName,
      {
        role: role.id,
        policy: policyDocument([
          {
            Sid: 'RunAuditJobs',
            Effect: 'Allow',
            Action: 'ecs:RunTask',
            Resource: jobs.map(({ slug }) => pulumi.interpolate`arn:${env.partition}:ecs:${env.region}:${env.accountId}:task-definition/${prefix}-${slug}:*`),
            Condition: { ArnEquals: { 'ecs:cluster': this.cluster.arn } },
          },
          {
            Sid: 'PassJobRoles',
            Effect: 'Allow',
            Action: 'iam:PassRole',
            Resource: jobs.flatMap(({ taskRole, executionRole }) => [executionRole.arn, taskRole.arn]),
            Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
          },
        ]),
      },
      child,
    );
    for (const { slug, expression, taskDefinition } of jobs) {
      new aws.scheduler.Schedule(
        `${prefix}-${slug}`,
        {
          name: `${prefix}-${slug}`,
          description: `DMS ${slug.replace('-', ':')} (node dist/api/cli.js)`,
          scheduleExpression: expression,
          scheduleExpressionTimezone: args.scheduleTimezone,
          flexibleTimeWindow: { mode: 'OFF' },
          target: {
            arn: this.cluster.arn,
            roleArn: role.arn,
            ecsParameters: {
              taskDefinitionArn: taskDefinition.arn,
              launchType: 'FARGATE',
              platformVersion: 'LATEST',
              taskCount: 1,
              networkConfiguration: { subnets: network.subnets, securityGroups: network.securityGroups, assignPublicIp: false },
            },
            retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
          },
        },
        child,
      );
    }
  }

  /** Valkey with TLS in transit, encryption at rest and an AUTH token, reachable from the tasks only. */
  private createCache(args: ServiceArgs): { group: aws.elasticache.ReplicationGroup; urlSecret: aws.secretsmanager.Secret } {
    const child = { parent: this };
    const { prefix, cache } = args;
    const subnetGroup = new aws.elasticache.SubnetGroup(`${prefix}-cache`, { name: `${prefix}-cache`, description: 'DMS Valkey: isolated subnets', subnetIds: args.isolatedSubnetIds }, child);
    const slowLog = new aws.cloudwatch.LogGroup(
      `${prefix}-cache-slow-log`,
      { name: `/dms/${prefix.slice('dms-'.length)}/valkey-slow-log`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
      child,
    );
    // Generated once (no provider for randomness is installed); ignoreChanges keeps the first value.
    const authToken = pulumi.secret(randomBytes(32).toString('hex'));
    const group = new aws.elasticache.ReplicationGroup(
      `${prefix}-cache`,
      {
        replicationGroupId: `${prefix}-cache`,
        description: 'DMS shared rate-limit store',
        engine: 'valkey',
        engineVersion: '8.0',
        nodeType: cache.nodeType,
        numCacheClusters: 1 + cache.replicas,
        automaticFailoverEnabled: cache.replicas > 0,
        multiAzEnabled: cache.replicas > 0,
        port: 6379,
        subnetGroupName: subnetGroup.name,
        securityGroupIds: [args.cacheSecurityGroupId],
        transitEncryptionEnabled: true,
        atRestEncryptionEnabled: true,
        kmsKeyId: args.secretsKey.arn,
        authToken,
        autoMinorVersionUpgrade: true,
        // FSBP ElastiCache.1: automatic backups (the store holds only rate-limit counters, but a restore
        // point costs little); the snapshot window stays clear of the maintenance window, as ElastiCache requires.
        snapshotRetentionLimit: 7,
        snapshotWindow: '05:00-06:00',
        maintenanceWindow: 'sun:06:30-sun:07:30',
        logDeliveryConfigurations: [{ destination: slowLog.name, destinationType: 'cloudwatch-logs', logFormat: 'json', logType: 'slow-log' }],
      },
      { ...child, ignoreChanges: ['authToken'] },
    );
    const urlSecret = new aws.secretsmanager.Secret(
      `${prefix}-redis-url`,
      { name: `${prefix}/redis-url`, description: 'REDIS_URL of the DMS API (rediss:// with the AUTH token)', kmsKeyId: args.secretsKey.arn, recoveryWindowInDays: 7 },
      child,
    );
    new aws.secretsmanager.SecretVersion(
      `${prefix}-redis-url`,
      { secretId: urlSecret.id, secretString: pulumi.secret(pulumi.interpolate`rediss://:${authToken}@${group.primaryEndpointAddress}:6379`) },
      { ...child, ignoreChanges: ['secretString'] },
    );
    return { group, urlSecret };
  }
}

interface TaskSpec {
  /** A container beside the main one (the trace collector); its CPU and memory come out of the task's. */
  sidecar?: Record<string, unknown> & { name: string; cpu: number; memory: number };
  command: string[];
  environment: { name: string; value: pulumi.Input<string> }[];
  secrets: ContainerSecret[];
  executionRole: aws.iam.Role;
  taskRole?: aws.iam.Role;
  streamPrefix: string;
  portMappings?: { containerPort: number; protocol: string }[];
  cpu: number;
  memory: number;
}

interface TaskNetwork {
  subnets: pulumi.Input<string>[];
  securityGroups: pulumi.Input<string>[];
  assignPublicIp: boolean;
}

/** `arn...:secret:name-AbCdEf:password::` names a JSON key of a secret; IAM wants the secret's ARN. */
function withoutJsonKey(valueFrom: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.output(valueFrom).apply((arn) => arn.split(':').slice(0, 7).join(':'));
}

/** The first HS256 key: 48 random bytes, a `kid` carrying the stack and the date it was made. */
export function initialJwtKey(stack: string, now = new Date()): { kid: string; alg: 'HS256'; secret: string } {
  const day = now.toISOString().slice(0, 10).replaceAll('-', '');
  return { kid: `${stack}-${day}`, alg: 'HS256', secret: randomBytes(48).toString('base64url') };
}

/**
 * The migration runner's code (Node.js 22 on Lambda ships AWS SDK v3). It starts the migration task,
 * waits for it to stop, and throws unless the container exited 0, so `pulumi up` stops there.
 */
const MIGRATION_RUNNER_SOURCE = `
import { ECSClient, RunTaskCommand, DescribeTasksCommand, waitUntilTasksStopped } from '@aws-sdk/client-ecs';
const ecs = new ECSClient({});
export const handler = async (event, context) => {
  const { cluster, taskDefinition, subnets, securityGroups, container } = event;
  const started = await ecs.send(new RunTaskCommand({
    cluster, taskDefinition, launchType: 'FARGATE', count: 1, startedBy: 'pulumi-migrate',
    networkConfiguration: { awsvpcConfiguration: { subnets, securityGroups, assignPublicIp: 'DISABLED' } },
  }));
  const task = started.tasks && started.tasks[0];
  if (!task) throw new Error('migration task did not start: ' + JSON.stringify(started.failures));
  const maxWaitTime = Math.floor(context.getRemainingTimeInMillis() / 1000) - 60;
  await waitUntilTasksStopped({ client: ecs, maxWaitTime, minDelay: 10, maxDelay: 15 }, { cluster, tasks: [task.taskArn] })
    .catch(() => { throw new Error('migration task ' + task.taskArn + ' still running after ' + maxWaitTime + ' s'); });
  const { tasks } = await ecs.send(new DescribeTasksCommand({ cluster, tasks: [task.taskArn] }));
  const stopped = tasks[0];
  const exit = stopped.containers.find((c) => c.name === container);
  if (!exit || exit.exitCode !== 0) {
    throw new Error('migration task ' + task.taskArn + ' failed (exit ' + (exit ? exit.exitCode : 'none') + ', ' + stopped.stoppedReason + '); its log stream is migrate/' + container + '/' + task.taskArn.split('/').pop());
  }
  return { taskArn: task.taskArn, exitCode: 0 };
};
`;
