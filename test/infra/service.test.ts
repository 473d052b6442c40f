// Service: the API image from the Dockerfile, the Fargate service (private subnets, no public IP,
// circuit breaker with rollback, autoscaling), containers per the env contract (non-root, read-only
// root, secrets by ARN), roles scoped to exact ARNs, migrations before traffic, scheduled audit
// jobs, the JWT keys secret and the optional Valkey.
import { strict as assert } from 'node:assert';
import { parseConfig } from '../../infra/config.js';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { DATABASE_PORT } from '../../infra/database.js';
import { buildContextTag } from '../../infra/image-tag.js';
import { load } from 'js-yaml';
import { COLLECTOR, DOCKERFILE, initialJwtKey, REPO_ROOT } from '../../infra/service.js';
import { asList, one, ofType, planned, plannedWith, section, statement, statements, STACKS } from './fixture.js';

interface Container {
  name: string;
  image: string;
  command: string[];
  user: string;
  readonlyRootFilesystem: boolean;
  environment: { name: string; value: string }[];
  secrets: { name: string; valueFrom: string }[];
  mountPoints: { sourceVolume: string; containerPath: string }[];
  portMappings: { containerPort: number }[];
  logConfiguration: { logDriver: string; options: Record<string, string> };
}

const containersOf = (taskDefinition: RecordedResource) => JSON.parse(String(taskDefinition.inputs['containerDefinitions'])) as (Container & Record<string, unknown>)[];
/** The task's own container (`api`, the image of this repository), whatever runs beside it. */
const containerOf = (taskDefinition: RecordedResource): Container => {
  const containers = containersOf(taskDefinition).filter((container) => container.name === 'api');
  assert.equal(containers.length, 1);
  return containers[0] as Container;
};
const env = (container: Container) => Object.fromEntries(container.environment.map((variable) => [variable.name, variable.value]));
const secrets = (container: Container) => Object.fromEntries(container.secrets.map((secret) => [secret.name, secret.valueFrom]));

for (const stack of STACKS) {
  describe(`service: ${stack}`, () => {
    let run: StackRun;
    const config = parseConfig(loadStackFile(stack).config, stack);
    const taskDefinition = (family: string) => one(run, 'aws:ecs/taskDefinition:TaskDefinition', `dms-${stack}-${family}`);
    const secretArn = (name: string) => one(run, 'aws:secretsmanager/secret:Secret', `dms-${stack}-${name}`).outputs['arn'];
    const primaryHost = () => one(run, 'aws:rds/instance:Instance', `dms-${stack}-db`).outputs['address'];
    const replicaHost = () => one(run, 'aws:rds/instance:Instance', `dms-${stack}-db-replica`).outputs['address'];
    before(async () => {
      run = await planned(stack);
    });

    it('builds the API image from the repository Dockerfile into a scanned, immutable-tag repository', () => {
      const repository = one(run, 'aws:ecr/repository:Repository', `dms-${stack}-api`);
      assert.equal(repository.inputs['imageTagMutability'], 'IMMUTABLE');
      assert.deepEqual(repository.inputs['imageScanningConfiguration'], { scanOnPush: true });
      const image = one(run, 'awsx:ecr:Image', `dms-${stack}-api`);
      assert.equal(image.inputs['dockerfile'], DOCKERFILE);
      assert.equal(image.inputs['context'], REPO_ROOT);
      assert.ok(DOCKERFILE.startsWith(REPO_ROOT));
      assert.equal(image.inputs['repositoryUrl'], repository.outputs['repositoryUrl']);
      assert.equal(image.inputs['imageTag'], buildContextTag(REPO_ROOT, DOCKERFILE), 'tagged with the digest of its build context');
      assert.equal(containerOf(taskDefinition('api')).image, image.outputs['imageUri']);
    });

    it('runs a cluster with Container Insights', () => {
      const cluster = one(run, 'aws:ecs/cluster:Cluster', `dms-${stack}`);
      assert.deepEqual(cluster.inputs['settings'], [{ name: 'containerInsights', value: 'enabled' }]);
      assert.equal(run.outputs['clusterName'], `dms-${stack}`);
    });

    it('runs the API on Fargate in the private subnets with no public IP, behind the ALB, rolling back failed deployments', () => {
      const service = one(run, 'aws:ecs/service:Service', `dms-${stack}-api`);
      assert.equal(service.inputs['launchType'], 'FARGATE');
      assert.deepEqual(service.inputs['networkConfiguration'], { subnets: run.outputs['privateSubnetIds'], securityGroups: [run.outputs['serviceSecurityGroupId']], assignPublicIp: false });
      assert.deepEqual(service.inputs['deploymentCircuitBreaker'], { enable: true, rollback: true });
      assert.equal(service.inputs['taskDefinition'], taskDefinition('api').outputs['arn']);
      const targetGroup = one(run, 'aws:lb/targetGroup:TargetGroup', `dms-${stack}-api`);
      assert.deepEqual(service.inputs['loadBalancers'], [{ targetGroupArn: targetGroup.outputs['arn'], containerName: 'api', containerPort: 3000 }]);
      assert.equal(service.inputs['enableExecuteCommand'], false);
      assert.equal(service.inputs['desiredCount'], config.service.minTasks);
      assert.deepEqual(service.ignoreChanges, ['desiredCount'], 'autoscaling owns the running count');
      assert.equal(run.outputs['serviceName'], service.inputs['name']);
    });

    it('runs the migration task before a new revision takes traffic', () => {
      const service = one(run, 'aws:ecs/service:Service', `dms-${stack}-api`);
      const invocation = one(run, 'aws:lambda/invocation:Invocation', `dms-${stack}-migrate`);
      assert.ok(service.dependencies.includes(invocation.urn), 'the service update waits for the migration run');
      const input = JSON.parse(String(invocation.inputs['input'])) as Record<string, unknown>;
      assert.equal(input['taskDefinition'], run.outputs['migrationTaskDefinitionArn'], 'a new migration task definition (new image) re-runs it');
      assert.deepEqual(input['subnets'], run.outputs['privateSubnetIds']);
      const runner = one(run, 'aws:lambda/function:Function', `dms-${stack}-run-migrations`);
      assert.equal(invocation.inputs['functionName'], runner.outputs['name'] ?? runner.inputs['name']);
      const runTask = statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-run-migrations`).inputs['policy'], 'RunMigrationTask');
      assert.match(String(runTask.Resource), new RegExp(`task-definition/dms-${stack}-migrate:\\*$`));
    });

    it('gives the API container exactly the contract environment, secrets by ARN', () => {
      const container = containerOf(taskDefinition('api'));
      assert.deepEqual(container.command, ['node', 'dist/api/main.js']);
      assert.deepEqual(env(container), {
        NODE_ENV: 'production',
        PORT: '3000',
        DATABASE_URL: `postgres://dms_app@${String(primaryHost())}:${DATABASE_PORT}/dms?sslmode=verify-full`,
        DATABASE_REPLICA_URLS: `postgres://dms_app@${String(replicaHost())}:${DATABASE_PORT}/dms?sslmode=verify-full`,
        NODE_EXTRA_CA_CERTS: '/app/certs/rds-global-bundle.pem',
        AWS_REGION: config.region,
        XRAY_BUCKET: run.outputs['xrayBucketName'],
        AUDIT_BUCKET: run.outputs['auditBucketName'],
        AUDIT_HOT_DAYS: String(config.storage.auditHotDays),
        CORS_ORIGINS: config.storage.xrayCorsOrigins.join(','),
        S3_KMS_KEY_ARN: one(run, 'aws:kms/key:Key', `dms-${stack}-s3`).outputs['arn'],
        TRUST_PROXY_HOPS: '1',
        PRESIGN_TTL_S: '90',
        LOG_LEVEL: 'info',
        MFA_REQUIRED_ROLES: 'admin,doctor',
        METRICS_NAMESPACE: `DMS/${stack}`,
        AUDIT_HEAVY_USER_PATIENTS: String(config.service.auditHeavyUserPatients),
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_TRACES_SAMPLER_ARG: String(config.service.traceSampleRatio),
      });
      assert.deepEqual(secrets(container), {
        PGPASSWORD: secretArn('db-app-password'),
        JWT_KEYS: run.outputs['jwtKeysSecretArn'],
        REDIS_URL: secretArn('redis-url'),
      });
      assert.deepEqual(container.portMappings.map((mapping) => mapping.containerPort), [3000]);
    });

    it('purges audit rows after the same number of days the audit bucket moves their exports to Glacier (one configured value)', () => {
      const auditBucket = one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-audit`);
      const lifecycle = ofType(run, 'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration').find((resource) => resource.inputs['bucket'] === (auditBucket.outputs['id'] ?? auditBucket.inputs['bucket']));
      const [rule] = (lifecycle?.inputs['rules'] ?? []) as { transitions?: { days: number }[] }[];
      const glacierDay = rule?.transitions?.[0]?.days;
      assert.equal(typeof glacierDay, 'number', 'the audit bucket has a transition');
      for (const family of ['audit-export', 'audit-purge']) assert.equal(env(containerOf(taskDefinition(family)))['AUDIT_HOT_DAYS'], String(glacierDay), family);
    });

    it('runs every container as a non-root user on a read-only root file system with a writable /tmp', () => {
      for (const family of ['api', 'migrate', 'audit-export', 'audit-purge', 'drill-verify']) {
        const definition = taskDefinition(family);
        const container = containerOf(definition);
        assert.equal(container.user, '1000:1000', family);
        assert.equal(container.readonlyRootFilesystem, true, family);
        assert.deepEqual(container.mountPoints.map((mount) => mount.containerPath), ['/tmp'], family);
        assert.deepEqual(definition.inputs['volumes'], [{ name: 'tmp' }], family);
        assert.equal(container.logConfiguration.logDriver, 'awslogs');
        assert.equal(container.logConfiguration.options['awslogs-group'], run.outputs['logGroupName'], `${family} logs where the metric filters look`);
        assert.deepEqual(definition.inputs['requiresCompatibilities'], ['FARGATE']);
      }
    });

    it('runs the audit export and purge as the exporter role, the only one that may record exports and purge', () => {
      for (const family of ['audit-export', 'audit-purge']) {
        assert.equal(env(containerOf(taskDefinition(family)))['DATABASE_URL'], `postgres://dms_audit_export@${String(primaryHost())}:${DATABASE_PORT}/dms?sslmode=verify-full`, family);
      }
      assert.match(String(env(containerOf(taskDefinition('api')))['DATABASE_URL']), /^postgres:\/\/dms_app@/);
    });

    it('migrates as dms_admin with the RDS-managed password and hands it the app password to set', () => {
      const container = containerOf(taskDefinition('migrate'));
      assert.deepEqual(container.command, ['node', 'dist/api/cli.js', 'migrate']);
      assert.equal(env(container)['DATABASE_URL'], `postgres://dms_admin@${String(primaryHost())}:${DATABASE_PORT}/dms?sslmode=verify-full`);
      const master = one(run, 'aws:rds/instance:Instance', `dms-${stack}-db`).outputs['masterUserSecrets'] as { secretArn: string }[];
      assert.equal(secrets(container)['PGPASSWORD'], `${master[0]?.secretArn}:password::`);
      assert.equal(secrets(container)['DB_APP_PASSWORD'], secretArn('db-app-password'));
      assert.equal(taskDefinition('migrate').outputs['arn'], run.outputs['migrationTaskDefinitionArn']);
    });

    it('has a drill-verify task of the API image for the DR drill, with no AWS access of its own', () => {
      const definition = taskDefinition('drill-verify');
      assert.deepEqual(containerOf(definition).command, ['node', 'dist/api/cli.js', 'drill:verify']);
      assert.equal(definition.inputs['taskRoleArn'], undefined);
      assert.equal(run.outputs['drillVerifyTaskDefinitionArn'], definition.outputs['arn']);
    });

    it('schedules audit:export hourly and audit:purge daily on their own task definitions, in the private subnets', () => {
      const schedules = Object.fromEntries(ofType(run, 'aws:scheduler/schedule:Schedule').map((schedule) => [schedule.name, schedule]));
      const cases = [
        ['audit-export', config.service.auditExportSchedule, ['node', 'dist/api/cli.js', 'audit:export']],
        ['audit-purge', config.service.auditPurgeSchedule, ['node', 'dist/api/cli.js', 'audit:purge']],
      ] as const;
      for (const [slug, expression, command] of cases) {
        const schedule = schedules[`dms-${stack}-${slug}`];
        assert.ok(schedule, slug);
        assert.equal(schedule.inputs['scheduleExpression'], expression);
        const target = schedule.inputs['target'] as { arn: string; ecsParameters: { taskDefinitionArn: string; networkConfiguration: { subnets: string[]; assignPublicIp: boolean } } };
        assert.equal(target.arn, one(run, 'aws:ecs/cluster:Cluster', `dms-${stack}`).outputs['arn']);
        assert.equal(target.ecsParameters.taskDefinitionArn, taskDefinition(slug).outputs['arn']);
        assert.deepEqual(target.ecsParameters.networkConfiguration.subnets, run.outputs['privateSubnetIds']);
        assert.equal(target.ecsParameters.networkConfiguration.assignPublicIp, false);
        assert.deepEqual(containerOf(taskDefinition(slug)).command, command);
      }
      assert.equal(config.service.auditExportSchedule, 'rate(1 hour)');
      assert.match(config.service.auditPurgeSchedule, /^cron\(\d+ \d+ \* \* \? \*\)$/, 'once a day');
    });

    it('scales on CPU at 70 % and on memory, with cooldowns, between the configured bounds', () => {
      const target = one(run, 'aws:appautoscaling/target:Target', `dms-${stack}-api`);
      assert.equal(target.inputs['minCapacity'], config.service.minTasks);
      assert.equal(target.inputs['maxCapacity'], config.service.maxTasks);
      assert.equal(target.inputs['resourceId'], `service/dms-${stack}/dms-${stack}-api`);
      const policy = (suffix: string) =>
        one(run, 'aws:appautoscaling/policy:Policy', `dms-${stack}-api-${suffix}`).inputs['targetTrackingScalingPolicyConfiguration'] as Record<string, unknown>;
      assert.equal(policy('cpu')['targetValue'], 70);
      assert.deepEqual(policy('cpu')['predefinedMetricSpecification'], { predefinedMetricType: 'ECSServiceAverageCPUUtilization' });
      assert.deepEqual(policy('memory')['predefinedMetricSpecification'], { predefinedMetricType: 'ECSServiceAverageMemoryUtilization' });
      for (const suffix of ['cpu', 'memory']) {
        assert.equal(policy(suffix)['scaleInCooldown'], config.service.scaleInCooldownSeconds);
        assert.equal(policy(suffix)['scaleOutCooldown'], config.service.scaleOutCooldownSeconds);
      }
      assert.deepEqual([run.outputs['minTaskCount'], run.outputs['maxTaskCount']], [config.service.minTasks, config.service.maxTasks]);
    });

    it(`traces ${config.service.traceSampleRatio} of requests through the collector sidecar, whose CPU and memory are inside the task's`, () => {
      assert.ok(config.service.traceSampleRatio > 0, `${stack} traces`);
      const definition = taskDefinition('api');
      const [api, collector, ...others] = containersOf(definition);
      assert.deepEqual([api?.name, collector?.name, others.length], ['api', COLLECTOR.name, 0]);
      assert.equal(collector!['image'], COLLECTOR.image);
      assert.equal(collector!['essential'], false, 'the API serves on if the collector dies');
      assert.deepEqual([collector!['user'], collector!['readonlyRootFilesystem']], ['10001', true]);
      assert.equal(Number(api!['cpu']) + Number(collector!['cpu']), Number(definition.inputs['cpu']), 'CPU: API + collector = the task');
      assert.equal(Number(api!['memory']) + Number(collector!['memory']), Number(definition.inputs['memory']), 'memory: API + collector = the task');
      assert.deepEqual(api!['dependsOn'], [{ containerName: COLLECTOR.name, condition: 'START' }]);
      const settings = load(String((collector!['environment'] as { name: string; value: string }[]).find((variable) => variable.name === 'AOT_CONFIG_CONTENT')?.value)) as {
        receivers: { otlp: { protocols: Record<string, { endpoint: string }> } };
        exporters: { awsxray: { region: string } };
        service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
      };
      assert.deepEqual(settings.receivers.otlp.protocols, { http: { endpoint: '127.0.0.1:4318' } }, 'OTLP/HTTP on the task loopback only');
      assert.equal(settings.exporters.awsxray.region, config.region);
      assert.deepEqual([settings.service.pipelines.traces.receivers, settings.service.pipelines.traces.exporters], [['otlp'], ['awsxray']]);
      const traces = statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-api-task`).inputs['policy'], 'SendTracesToAwsXRay');
      assert.deepEqual(asList(traces.Action).sort(), ['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    });

    it('scopes the API task role to X-ray object paths and the S3 key', () => {
      const policy = one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-api-task`).inputs['policy'];
      const xray = statement(policy, 'XrayObjects');
      assert.deepEqual(asList(xray.Action).sort(), ['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
      assert.equal(xray.Resource, `arn:aws:s3:::${String(run.outputs['xrayBucketName'])}/patients/*`);
      assert.equal(statement(policy, 'UseTheBucketKey').Resource, one(run, 'aws:kms/key:Key', `dms-${stack}-s3`).outputs['arn']);
      for (const granted of statements(policy)) assert.ok(!JSON.stringify(granted.Resource).includes(String(run.outputs['auditBucketName'])), 'the API itself does not write audit exports');
    });

    it('lets only the export job write audit exports and the purge job read them', () => {
      const exportPolicy = one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-audit-export-task`).inputs['policy'];
      assert.deepEqual(asList(statement(exportPolicy, 'WriteAndVerifyExports').Action).sort(), ['s3:GetObject', 's3:PutObject']);
      const purgePolicy = one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-audit-purge-task`).inputs['policy'];
      assert.deepEqual(asList(statement(purgePolicy, 'ReadExportsBeforePurge').Action), ['s3:GetObject']);
      assert.equal(taskDefinition('audit-export').inputs['taskRoleArn'], one(run, 'aws:iam/role:Role', `dms-${stack}-audit-export-task`).outputs['arn']);
    });

    it('lets ECS read exactly the secrets each task gets, and only the migration the master secret', () => {
      const injected = (role: string) => asList(statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-${role}`).inputs['policy'], 'InjectSecrets').Resource).sort();
      assert.deepEqual(injected('task-execution'), [secretArn('db-app-password'), run.outputs['jwtKeysSecretArn'], secretArn('redis-url')].map(String).sort());
      const master = one(run, 'aws:rds/instance:Instance', `dms-${stack}-db`).outputs['masterUserSecrets'] as { secretArn: string }[];
      assert.ok(injected('migrate-execution').includes(String(master[0]?.secretArn)));
      assert.ok(!injected('task-execution').includes(String(master[0]?.secretArn)));
      assert.equal(taskDefinition('api').inputs['executionRoleArn'], one(run, 'aws:iam/role:Role', `dms-${stack}-task-execution`).outputs['arn']);
    });

    it('gives each job its own execution role, which injects only the secrets that job uses', () => {
      const master = one(run, 'aws:rds/instance:Instance', `dms-${stack}-db`).outputs['masterUserSecrets'] as { secretArn: string }[];
      const expected: Record<string, Record<string, unknown>> = {
        migrate: { PGPASSWORD: `${master[0]?.secretArn}:password::`, DB_APP_PASSWORD: secretArn('db-app-password'), DB_EXPORTER_PASSWORD: secretArn('db-exporter-password') },
        'audit-export': { PGPASSWORD: secretArn('db-exporter-password') },
        'audit-purge': { PGPASSWORD: secretArn('db-exporter-password') },
        'drill-verify': { PGPASSWORD: secretArn('db-app-password') },
      };
      const roleArns = new Set<unknown>();
      for (const [family, jobSecrets] of Object.entries(expected)) {
        const definition = taskDefinition(family);
        assert.deepEqual(secrets(containerOf(definition)), jobSecrets, `${family} gets no JWT keys, no Redis token, no other job's password`);
        const role = one(run, 'aws:iam/role:Role', `dms-${stack}-${family}-execution`);
        assert.equal(definition.inputs['executionRoleArn'], role.outputs['arn'], `${family} has its own execution role`);
        roleArns.add(role.outputs['arn']);
        const injected = asList(statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-${family}-execution`).inputs['policy'], 'InjectSecrets').Resource).sort();
        assert.deepEqual(injected, Object.values(jobSecrets).map((valueFrom) => String(valueFrom).replace(/:password::$/, '')).sort(), `${family}'s role reads exactly its secrets`);
      }
      assert.equal(roleArns.size, 4);
      const passed = asList(statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-scheduler`).inputs['policy'], 'PassJobRoles').Resource);
      assert.ok(!passed.includes(String(one(run, 'aws:iam/role:Role', `dms-${stack}-task-execution`).outputs['arn'])), 'the scheduler cannot pass the API execution role');
    });

    it('keeps JWT keys in dms-<stack>/jwt-keys, KMS-encrypted, first version generated and never reverted', () => {
      const secret = one(run, 'aws:secretsmanager/secret:Secret', `dms-${stack}-jwt-keys`);
      assert.equal(secret.inputs['name'], `dms-${stack}/jwt-keys`);
      assert.equal(secret.inputs['kmsKeyId'], one(run, 'aws:kms/key:Key', `dms-${stack}-secrets`).outputs['arn']);
      const version = one(run, 'aws:secretsmanager/secretVersion:SecretVersion', `dms-${stack}-jwt-keys`);
      assert.equal(version.inputs['secretString'], '[secret]', 'the key never reaches the plan');
      assert.deepEqual(version.ignoreChanges, ['secretString'], 'rotate-jwt-key is not undone by the next pulumi up');
      assert.equal(run.outputs['jwtKeysSecretArn'], secret.outputs['arn']);
    });

    it('runs Valkey with TLS, encryption at rest and an AUTH token, in the isolated subnets', () => {
      const group = one(run, 'aws:elasticache/replicationGroup:ReplicationGroup', `dms-${stack}-cache`);
      assert.equal(group.inputs['engine'], 'valkey');
      assert.equal(group.inputs['transitEncryptionEnabled'], true);
      assert.equal(group.inputs['atRestEncryptionEnabled'], true);
      assert.equal(group.inputs['authToken'], '[secret]');
      assert.equal(group.inputs['numCacheClusters'], 1 + config.cache.replicas);
      assert.deepEqual(group.inputs['securityGroupIds'], [one(run, 'aws:ec2/securityGroup:SecurityGroup', `dms-${stack}-cache`).id]);
    });
  });
}

describe('service: a single-task stack without Valkey', () => {
  let run: StackRun;
  before(async () => {
    run = await plannedWith('staging', (config) => {
      Object.assign(section(config, 'service'), { minTasks: 1, maxTasks: 1 });
      section(config, 'cache')['enabled'] = false;
    });
  });

  it('has no cache and no REDIS_URL: the API falls back to its in-process rate-limit store', () => {
    assert.equal(ofType(run, 'aws:elasticache/replicationGroup:ReplicationGroup').length, 0);
    const container = containerOf(one(run, 'aws:ecs/taskDefinition:TaskDefinition', 'dms-staging-api'));
    assert.deepEqual(Object.keys(secrets(container)).sort(), ['JWT_KEYS', 'PGPASSWORD']);
  });
});

describe('service: the heavy-user threshold comes from the stack config', () => {
  it('puts dms:service.auditHeavyUserPatients into the API task as AUDIT_HEAVY_USER_PATIENTS, and into no job', async () => {
    const run = await plannedWith('staging', (config) => (section(config, 'service')['auditHeavyUserPatients'] = 1234));
    const taskEnv = (family: string) => env(containerOf(one(run, 'aws:ecs/taskDefinition:TaskDefinition', `dms-staging-${family}`)));
    assert.equal(taskEnv('api')['AUDIT_HEAVY_USER_PATIENTS'], '1234');
    for (const job of ['migrate', 'audit-export', 'audit-purge', 'drill-verify']) assert.equal(taskEnv(job)['AUDIT_HEAVY_USER_PATIENTS'], undefined, job);
  });
});

describe('service: the first JWT key', () => {
  it('is HS256 with 48 random bytes and a kid carrying the stack and the date', () => {
    const key = initialJwtKey('production', new Date('2026-03-04T10:00:00Z'));
    assert.equal(key.alg, 'HS256');
    assert.equal(key.kid, 'production-20260304');
    assert.equal(Buffer.from(key.secret, 'base64url').length, 48);
    assert.notEqual(initialJwtKey('production').secret, key.secret);
  });
});
