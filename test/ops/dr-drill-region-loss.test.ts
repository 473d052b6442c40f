// Issue 19: `dr-drill --region-loss` under aws-sdk-client-mock. The stack's region is treated as lost:
// the newest copy in the DR vault is restored into a throw-away network in the DR region, verified,
// the X-ray replica sampled, RTO/RPO reported, and everything the drill created deleted, also when
// any step fails or the session is interrupted.
import assert from 'node:assert/strict';
import { BackupClient, ListRecoveryPointsByBackupVaultCommand } from '@aws-sdk/client-backup';
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  CreateVpcEndpointCommand,
  DeleteSecurityGroupCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DeleteVpcEndpointsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeRouteTablesCommand,
  DescribeVpcEndpointsCommand,
  EC2Client,
  ModifyVpcAttributeCommand,
} from '@aws-sdk/client-ec2';
import { DeregisterTaskDefinitionCommand, DescribeTaskDefinitionCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import {
  CreateDBSubnetGroupCommand,
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DeleteDBSubnetGroupCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
} from '@aws-sdk/client-rds';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { measureRows, recoveryMeasures, sampleKeys } from '../../runbooks/ops/lib/region-drill.js';
import { formatDuration } from '../../runbooks/ops/lib/time.js';
import { fakeClock, outputsFile, runCli, T0, totalCalls, useAwsMocks, type AwsMocks } from './support.js';
import { VERIFY_LINE } from './drill-fixture.js';

const DR = 'eu-central-1';
const DR_KEY = `arn:aws:kms:${DR}:123456789012:key/9d8c7b6a-5f4e-3d2c-1b0a-998877665544`;
const DRILL_ID = 'dms-drill-production-202503100915';
const VAULT = 'dms-production-backup-dr';
const REPLICA = `dms-production-xray-123456789012-${DR}`;
const NEWEST_COPY = `arn:aws:rds:${DR}:123456789012:snapshot:awsbackup:copyjob-newest`;
const COPY_TIME = new Date('2025-03-10T05:00:00Z');
/** The newest transaction in the copy: RPO = 09:15 - 05:01 = 4 h 14 min. */
const DATA_TIME = new Date('2025-03-10T05:01:00Z');
const SECRET_ARN = `arn:aws:secretsmanager:${DR}:123456789012:secret:dms-production-dr-drill-${DRILL_ID}-AbCdEf`;
const TASK_DEFINITION = `arn:aws:ecs:${DR}:123456789012:task-definition/${DRILL_ID}:1`;
const TASK = `arn:aws:ecs:${DR}:123456789012:task/dms-production-dr/7f6e5d4c3b2a`;
const IMAGE = 'dms-production-api@sha256:5f0c2b8e';
const DR_OUTPUTS = {
  drRegion: DR,
  drBackupVaultName: VAULT,
  drKmsKeyArn: DR_KEY,
  xrayReplicaBucketName: REPLICA,
  drClusterName: 'dms-production-dr',
  drVerifyExecutionRoleArn: 'arn:aws:iam::123456789012:role/dms-production-dr-verify-execution',
  drVerifyLogGroupName: '/dms/production/dr-drill',
};
const ENDPOINTS = ['vpce-ecrapi', 'vpce-ecrdkr', 'vpce-logs', 'vpce-secrets', 'vpce-s3'];
const XRAY_KEYS = Array.from({ length: 10 }, (_, index) => `patients/p${index}/visits/v${index}/xrays/x${index}.png`);

interface RegionMocks {
  ec2: AwsClientStub<EC2Client>;
  backup: AwsClientStub<BackupClient>;
  s3: AwsClientStub<S3Client>;
}

function useRegionMocks(): RegionMocks {
  const mocks = {} as RegionMocks;
  beforeEach(() => Object.assign(mocks, { ec2: mockClient(EC2Client), backup: mockClient(BackupClient), s3: mockClient(S3Client) }));
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.restore();
  });
  return mocks;
}

const copyInstance = (status: string, pendingPassword = false) => ({
  DBInstanceIdentifier: DRILL_ID,
  DBInstanceStatus: status,
  Endpoint: { Address: `${DRILL_ID}.cdefghij.${DR}.rds.amazonaws.com`, Port: 5433 },
  PendingModifiedValues: pendingPassword ? { MasterUserPassword: '****' } : {},
});

/** Every answer healthy; a test breaks the one step it is about. */
function healthyRegionDrill(aws: AwsMocks, region: RegionMocks): void {
  region.backup
    .on(ListRecoveryPointsByBackupVaultCommand)
    .resolvesOnce({ RecoveryPoints: [{ RecoveryPointArn: `arn:aws:rds:${DR}:123456789012:snapshot:awsbackup:copyjob-older`, Status: 'COMPLETED', CreationDate: new Date('2025-03-09T05:00:00Z') }], NextToken: 'page-2' })
    .resolves({
      RecoveryPoints: [
        { RecoveryPointArn: NEWEST_COPY, Status: 'COMPLETED', CreationDate: COPY_TIME },
        { RecoveryPointArn: `arn:aws:rds:${DR}:123456789012:snapshot:awsbackup:copyjob-running`, Status: 'CREATING', CreationDate: new Date('2025-03-10T09:00:00Z') },
      ],
    });
  aws.rds.on(DescribeDBSnapshotsCommand).resolves({
    DBSnapshots: [{ DBSnapshotIdentifier: 'awsbackup:copyjob-newest', Status: 'available', Encrypted: true, KmsKeyId: DR_KEY, Port: 5433, MasterUsername: 'dms_admin', SnapshotCreateTime: COPY_TIME, SnapshotDatabaseTime: DATA_TIME }],
  });
  aws.ecs.on(DescribeTaskDefinitionCommand).resolves({
    taskDefinition: {
      cpu: '256',
      memory: '512',
      runtimePlatform: { cpuArchitecture: 'X86_64', operatingSystemFamily: 'LINUX' },
      containerDefinitions: [
        {
          name: 'drill-verify',
          image: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/${IMAGE}`,
          command: ['node', 'dist/api/cli.js', 'drill:verify'],
          user: '1000:1000',
          readonlyRootFilesystem: true,
          environment: [
            { name: 'NODE_ENV', value: 'production' },
            { name: 'DATABASE_URL', value: 'postgres://dms_app@dms-production.abcdefgh.eu-west-1.rds.amazonaws.com:5433/dms?sslmode=verify-full' },
          ],
          secrets: [{ name: 'PGPASSWORD', valueFrom: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-production/db-app-password-XyZ123' }],
          logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/dms/production/api', 'awslogs-stream-prefix': 'drill-verify' } },
        },
      ],
    },
  });
  region.ec2.on(DescribeAvailabilityZonesCommand).resolves({ AvailabilityZones: [{ ZoneName: `${DR}a` }, { ZoneName: `${DR}b` }, { ZoneName: `${DR}c` }] });
  region.ec2.on(CreateVpcCommand).resolves({ Vpc: { VpcId: 'vpc-drill' } });
  region.ec2.on(ModifyVpcAttributeCommand).resolves({});
  region.ec2.on(CreateSubnetCommand).resolvesOnce({ Subnet: { SubnetId: 'subnet-drill-1' } }).resolves({ Subnet: { SubnetId: 'subnet-drill-2' } });
  region.ec2.on(DescribeRouteTablesCommand).resolves({ RouteTables: [{ RouteTableId: 'rtb-main' }] });
  region.ec2.on(CreateSecurityGroupCommand).resolvesOnce({ GroupId: 'sg-task' }).resolves({ GroupId: 'sg-db' });
  region.ec2.on(AuthorizeSecurityGroupIngressCommand).resolves({ Return: true });
  let endpoint = 0;
  region.ec2.on(CreateVpcEndpointCommand).callsFake(() => ({ VpcEndpoint: { VpcEndpointId: ENDPOINTS[endpoint++] } }));
  region.ec2
    .on(DescribeVpcEndpointsCommand)
    .resolvesOnce({ VpcEndpoints: ENDPOINTS.map((id) => ({ VpcEndpointId: id, State: 'Pending' })) })
    .resolves({ VpcEndpoints: ENDPOINTS.map((id) => ({ VpcEndpointId: id, State: 'Available' })) });
  aws.rds.on(CreateDBSubnetGroupCommand).resolves({ DBSubnetGroup: { DBSubnetGroupName: DRILL_ID } });
  aws.secrets.on(CreateSecretCommand).resolves({ ARN: SECRET_ARN, Name: `dms-production-dr-drill-${DRILL_ID}` });
  aws.rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({ DBInstance: copyInstance('creating') });
  aws.rds
    .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID })
    .resolvesOnce({ DBInstances: [copyInstance('creating')] })
    .resolvesOnce({ DBInstances: [copyInstance('available')] })
    .resolvesOnce({ DBInstances: [copyInstance('resetting-master-credentials', true)] })
    .resolvesOnce({ DBInstances: [copyInstance('available')] })
    .resolvesOnce({ DBInstances: [copyInstance('deleting')] })
    .rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DRILL_ID} not found`, $metadata: {} }));
  aws.rds.on(ModifyDBInstanceCommand).resolves({ DBInstance: copyInstance('available', true) });
  aws.ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { taskDefinitionArn: TASK_DEFINITION } });
  aws.ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK, lastStatus: 'PROVISIONING' }], failures: [] });
  aws.ecs
    .on(DescribeTasksCommand)
    .resolvesOnce({ tasks: [{ taskArn: TASK, lastStatus: 'RUNNING' }] })
    .resolves({ tasks: [{ taskArn: TASK, lastStatus: 'STOPPED', stoppedReason: 'Essential container in task exited', containers: [{ name: 'drill-verify', exitCode: 0 }] }] });
  aws.logs.on(GetLogEventsCommand).resolves({ events: [{ message: VERIFY_LINE }] });
  region.s3.on(ListObjectsV2Command).resolves({ Contents: XRAY_KEYS.map((Key) => ({ Key })) });
  region.s3.on(HeadObjectCommand).resolves({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: DR_KEY, ContentLength: 2_000_000 });
  region.s3.on(GetObjectCommand).resolves({ Body: { transformToByteArray: () => Promise.resolve(new Uint8Array([0x89])) } as never });
  // Clean-up.
  aws.ecs.on(StopTaskCommand).resolves({});
  aws.ecs.on(DeregisterTaskDefinitionCommand).resolves({});
  aws.rds.on(DeleteDBInstanceCommand).resolves({ DBInstance: copyInstance('deleting') });
  aws.secrets.on(DeleteSecretCommand).resolves({});
  aws.rds.on(DeleteDBSubnetGroupCommand).resolves({});
  region.ec2.on(DeleteVpcEndpointsCommand).resolves({ Unsuccessful: [] });
  region.ec2.on(DeleteSecurityGroupCommand).resolves({});
  region.ec2.on(DeleteSubnetCommand).resolves({});
  region.ec2.on(DeleteVpcCommand).resolves({});
}

const ARGS = () => ['dr-drill', '--region-loss', '--stack', 'production', '--outputs', outputsFile(DR_OUTPUTS)];

/** Every call of every mocked client, in the order sent. */
/** The part of a client stub these helpers read. */
interface Recorded {
  calls(): unknown[];
  commandCalls(command: unknown): unknown[];
}
type RecordedCall = { callId: number; args: [{ input: unknown }]; exception?: unknown; returnValue?: unknown };

function order(aws: AwsMocks, region: RegionMocks): string[] {
  return ([...Object.values(aws), ...Object.values(region)] as unknown as Recorded[])
    .flatMap((mock) => mock.calls() as RecordedCall[])
    .sort((a, b) => a.callId - b.callId)
    .map((call) => call.args[0].constructor.name.replace(/Command$/, ''));
}

const inputsOf = <T>(mock: unknown, command: unknown): T[] => ((mock as Recorded).commandCalls(command) as RecordedCall[]).map((call) => call.args[0].input as T);

/** How many calls of `command` succeeded (a creation that threw created nothing). */
async function succeeded(mock: unknown, command: unknown): Promise<number> {
  const calls = (mock as Recorded).commandCalls(command) as RecordedCall[];
  const outcomes = await Promise.allSettled(calls.map((call) => (call.exception === undefined ? Promise.resolve(call.returnValue) : Promise.reject(call.exception))));
  return outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
}

/** What the drill created and did not delete, by id: the clean-up must cover every creation. */
async function leftovers(aws: AwsMocks, region: RegionMocks): Promise<string[]> {
  const { ec2 } = region;
  const count = succeeded;
  const created = [
    ...['vpc-drill'].slice(0, await count(ec2, CreateVpcCommand)),
    ...['subnet-drill-1', 'subnet-drill-2'].slice(0, await count(ec2, CreateSubnetCommand)),
    ...['sg-task', 'sg-db'].slice(0, await count(ec2, CreateSecurityGroupCommand)),
    ...ENDPOINTS.slice(0, await count(ec2, CreateVpcEndpointCommand)),
    ...[`subnet-group:${DRILL_ID}`].slice(0, await count(aws.rds, CreateDBSubnetGroupCommand)),
    ...[SECRET_ARN].slice(0, await count(aws.secrets, CreateSecretCommand)),
    ...[`db:${DRILL_ID}`].slice(0, await count(aws.rds, RestoreDBInstanceFromDBSnapshotCommand)),
    ...[TASK_DEFINITION].slice(0, await count(aws.ecs, RegisterTaskDefinitionCommand)),
  ];
  const deleted = new Set<string>([
    ...inputsOf<{ VpcId: string }>(region.ec2, DeleteVpcCommand).map((input) => input.VpcId),
    ...inputsOf<{ SubnetId: string }>(region.ec2, DeleteSubnetCommand).map((input) => input.SubnetId),
    ...inputsOf<{ GroupId: string }>(region.ec2, DeleteSecurityGroupCommand).map((input) => input.GroupId),
    ...inputsOf<{ VpcEndpointIds: string[] }>(region.ec2, DeleteVpcEndpointsCommand).flatMap((input) => input.VpcEndpointIds),
    ...inputsOf<{ DBSubnetGroupName: string }>(aws.rds, DeleteDBSubnetGroupCommand).map((input) => `subnet-group:${input.DBSubnetGroupName}`),
    ...inputsOf<{ SecretId: string }>(aws.secrets, DeleteSecretCommand).map((input) => input.SecretId),
    ...inputsOf<{ DBInstanceIdentifier: string }>(aws.rds, DeleteDBInstanceCommand).map((input) => `db:${input.DBInstanceIdentifier}`),
    ...inputsOf<{ taskDefinition: string }>(aws.ecs, DeregisterTaskDefinitionCommand).map((input) => input.taskDefinition),
  ]);
  return created.filter((id) => !deleted.has(id));
}

describe('ops dr-drill --region-loss: the sequence in the DR region', () => {
  const aws = useAwsMocks();
  const region = useRegionMocks();

  it('restores the newest completed copy into a throw-away network, verifies it, samples the X-ray replica, then deletes it all in reverse', async () => {
    healthyRegionDrill(aws, region);
    const run = await runCli(ARGS());
    assert.equal(run.code, 0, `${run.stderr}\n${run.stdout}`);
    assert.deepEqual(order(aws, region), [
      'ListRecoveryPointsByBackupVault', 'ListRecoveryPointsByBackupVault', 'DescribeDBSnapshots', 'DescribeTaskDefinition',
      'DescribeAvailabilityZones', 'CreateVpc', 'ModifyVpcAttribute', 'CreateSubnet', 'CreateSubnet', 'DescribeRouteTables',
      'CreateSecurityGroup', 'CreateSecurityGroup', 'AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupIngress',
      'CreateVpcEndpoint', 'CreateVpcEndpoint', 'CreateVpcEndpoint', 'CreateVpcEndpoint', 'CreateVpcEndpoint', 'CreateDBSubnetGroup',
      'CreateSecret', 'RestoreDBInstanceFromDBSnapshot', 'DescribeDBInstances', 'DescribeDBInstances', 'ModifyDBInstance', 'DescribeDBInstances', 'DescribeDBInstances',
      'RegisterTaskDefinition', 'DescribeVpcEndpoints', 'DescribeVpcEndpoints', 'RunTask', 'DescribeTasks', 'DescribeTasks', 'GetLogEvents',
      'ListObjectsV2', ...Array.from({ length: 5 }, () => ['HeadObject', 'GetObject']).flat(),
      // Clean-up, newest first: the task is stopped already, so no StopTask.
      'DeregisterTaskDefinition', 'DeleteDBInstance', 'DescribeDBInstances', 'DescribeDBInstances', 'DeleteSecret', 'DeleteDBSubnetGroup',
      'DeleteVpcEndpoints', 'DeleteSecurityGroup', 'DeleteSecurityGroup', 'DeleteSubnet', 'DeleteSubnet', 'DeleteVpc',
    ]);
    assert.deepEqual(await leftovers(aws, region), []);
    assert.match(run.stdout, /result\s+PASS/);
  });

  it('restores the copy by its identifier, private and single-AZ, into the drill network and the database group, under the copy\'s (DR) key', async () => {
    healthyRegionDrill(aws, region);
    await runCli(ARGS());
    assert.deepEqual(inputsOf(aws.rds, DescribeDBSnapshotsCommand), [{ DBSnapshotIdentifier: 'awsbackup:copyjob-newest' }]);
    const [restore] = inputsOf<Record<string, unknown>>(aws.rds, RestoreDBInstanceFromDBSnapshotCommand);
    assert.deepEqual(restore, {
      DBInstanceIdentifier: DRILL_ID,
      DBSnapshotIdentifier: 'awsbackup:copyjob-newest',
      DBSubnetGroupName: DRILL_ID,
      VpcSecurityGroupIds: ['sg-db'],
      DBInstanceClass: 'db.t4g.medium',
      PubliclyAccessible: false,
      DeletionProtection: false,
      MultiAZ: false,
      BackupRetentionPeriod: 0,
      Tags: [
        { Key: 'dms:drill', Value: 'true' },
        { Key: 'dms:drill-started', Value: '2025-03-10T09:15:00Z' },
        { Key: 'dms:drill-kind', Value: 'region-loss' },
      ],
    });
    assert.deepEqual(inputsOf(region.backup, ListRecoveryPointsByBackupVaultCommand)[0], {
      BackupVaultName: VAULT,
      ByResourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:dms-production',
      ByResourceType: 'RDS',
      NextToken: undefined,
    });
    assert.deepEqual(inputsOf(region.ec2, AuthorizeSecurityGroupIngressCommand).map((input) => input), [
      { GroupId: 'sg-task', IpPermissions: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: 'sg-task' }] }] },
      { GroupId: 'sg-db', IpPermissions: [{ IpProtocol: 'tcp', FromPort: 5433, ToPort: 5433, UserIdGroupPairs: [{ GroupId: 'sg-task' }] }] },
    ]);
  });

  it('runs the same verify container with the replicated image, the drill secret and the DR log group, and never prints the password', async () => {
    healthyRegionDrill(aws, region);
    const run = await runCli(ARGS());
    const [secret] = inputsOf<{ SecretString: string; KmsKeyId: string; Name: string }>(aws.secrets, CreateSecretCommand);
    assert.equal(secret?.KmsKeyId, DR_KEY);
    assert.match(secret?.Name ?? '', /^dms-production-dr-drill-/);
    assert.ok((secret?.SecretString.length ?? 0) >= 32);
    assert.deepEqual(inputsOf(aws.rds, ModifyDBInstanceCommand), [{ DBInstanceIdentifier: DRILL_ID, MasterUserPassword: secret?.SecretString, ApplyImmediately: true }]);
    assert.ok(!run.stdout.includes(secret!.SecretString) && !run.stderr.includes(secret!.SecretString), 'password printed');
    const [registered] = inputsOf<{ containerDefinitions: Record<string, unknown>[]; executionRoleArn: string; taskRoleArn?: string }>(aws.ecs, RegisterTaskDefinitionCommand);
    const container = registered?.containerDefinitions[0];
    assert.equal(container?.['image'], `123456789012.dkr.ecr.${DR}.amazonaws.com/${IMAGE}`);
    assert.deepEqual(container?.['secrets'], [{ name: 'PGPASSWORD', valueFrom: SECRET_ARN }]);
    assert.deepEqual(container?.['environment'], [{ name: 'NODE_ENV', value: 'production' }]);
    assert.deepEqual(container?.['logConfiguration'], { logDriver: 'awslogs', options: { 'awslogs-group': '/dms/production/dr-drill', 'awslogs-region': DR, 'awslogs-stream-prefix': 'dr-verify' } });
    assert.equal(container?.['readonlyRootFilesystem'], true);
    assert.equal(registered?.executionRoleArn, DR_OUTPUTS.drVerifyExecutionRoleArn);
    assert.equal(registered?.taskRoleArn, undefined);
    const [runTask] = inputsOf<{ cluster: string; networkConfiguration: unknown; overrides: { containerOverrides: { environment: { name: string; value: string }[] }[] } }>(aws.ecs, RunTaskCommand);
    assert.equal(runTask?.cluster, 'dms-production-dr');
    assert.deepEqual(runTask?.networkConfiguration, { awsvpcConfiguration: { subnets: ['subnet-drill-1', 'subnet-drill-2'], securityGroups: ['sg-task'], assignPublicIp: 'DISABLED' } });
    assert.deepEqual(runTask?.overrides.containerOverrides[0]?.environment, [
      { name: 'DATABASE_URL', value: `postgres://dms_app@${DRILL_ID}.cdefghij.${DR}.rds.amazonaws.com:5433/dms?sslmode=verify-full` },
      { name: 'DATABASE_REPLICA_URLS', value: '' },
      { name: 'DRILL_APP_ROLE_RESET_BY', value: 'dms_admin' },
    ]);
    assert.match(run.stdout, /row counts\s+patients=1200, visits=5400, audit_logs=88000/);
  });

  it('checks a sample of X-rays spread over the replica: each exists under the DR key and decrypts; the report names no key', async () => {
    healthyRegionDrill(aws, region);
    const run = await runCli(ARGS());
    assert.deepEqual(inputsOf<{ Key: string }>(region.s3, HeadObjectCommand).map((input) => input.Key), sampleKeys(XRAY_KEYS, 5));
    assert.deepEqual(inputsOf<{ Range: string }>(region.s3, GetObjectCommand).map((input) => input.Range), Array(5).fill('bytes=0-0'));
    assert.match(run.stdout, /X-ray replica\s+5 of 10 listed objects exist, use the DR key and decrypt/);
    assert.ok(!run.stdout.includes('patients/p'), 'object keys name patients');
  });

  it('refuses before creating anything when the DR vault has no completed copy', async () => {
    healthyRegionDrill(aws, region);
    region.backup.on(ListRecoveryPointsByBackupVaultCommand).resolves({ RecoveryPoints: [{ RecoveryPointArn: NEWEST_COPY, Status: 'PARTIAL', CreationDate: COPY_TIME }] });
    const empty = await runCli(ARGS());
    assert.notEqual(empty.code, 0);
    assert.match(empty.stderr, /holds no completed copy of dms-production/);
    assert.equal(region.ec2.commandCalls(CreateVpcCommand).length, 0);
  });

  it('refuses before creating anything when the copy is not encrypted with the DR key', async () => {
    healthyRegionDrill(aws, region);
    aws.rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: 'awsbackup:copyjob-newest', Status: 'available', Encrypted: true, KmsKeyId: 'arn:aws:kms:eu-central-1:123456789012:key/other' }] });
    const wrongKey = await runCli(ARGS());
    assert.notEqual(wrongKey.code, 0);
    assert.match(wrongKey.stderr, /not with drKmsKeyArn/);
    assert.equal(region.ec2.commandCalls(CreateVpcCommand).length, 0);
  });
});

describe('ops dr-drill --region-loss: RTO and RPO', () => {
  it('RPO is the drill start minus the data\'s time; RTO the drill start to verified; the restore its own span', () => {
    const times = {
      startedAt: new Date('2025-03-10T09:15:00Z'),
      restoreRequestedAt: new Date('2025-03-10T09:19:30Z'),
      availableAt: new Date('2025-03-10T09:47:30Z'),
      verifiedAt: new Date('2025-03-10T10:02:00Z'),
      dataAsOf: new Date('2025-03-10T05:01:00Z'),
    };
    assert.deepEqual(recoveryMeasures(times), { rtoMs: 47 * 60_000, restoreMs: 28 * 60_000, rpoMs: (4 * 60 + 14) * 60_000 });
    assert.deepEqual(recoveryMeasures({ ...times, availableAt: undefined, verifiedAt: undefined }), { rpoMs: (4 * 60 + 14) * 60_000 }, 'an unverified drill has no RTO');
    assert.deepEqual(measureRows(times).map(([label]) => label), ['restore', 'RTO', 'RPO']);
  });

  const aws = useAwsMocks();
  const region = useRegionMocks();

  it('reports the RPO of the restored copy and an RTO as long as the fake clock ran to the verify', async () => {
    healthyRegionDrill(aws, region);
    const clock = fakeClock();
    let verifiedAt: Date | undefined;
    const stopped = aws.ecs.on(DescribeTasksCommand);
    stopped.resolvesOnce({ tasks: [{ taskArn: TASK, lastStatus: 'RUNNING' }] }).callsFake(() => {
      verifiedAt = clock.now();
      return { tasks: [{ taskArn: TASK, lastStatus: 'STOPPED', containers: [{ name: 'drill-verify', exitCode: 0 }] }] };
    });
    const run = await runCli(ARGS(), { clock });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`RPO\\s+${formatDuration(T0.getTime() - DATA_TIME.getTime())} \\(drill start 2025-03-10T09:15:00Z vs data as of 2025-03-10T05:01:00Z\\)`));
    assert.ok(verifiedAt && verifiedAt > T0);
    assert.match(run.stdout, new RegExp(`RTO\\s+${formatDuration(verifiedAt.getTime() - T0.getTime())} \\(drill start`));
  });
});

describe('ops dr-drill --region-loss: clean-up when any step fails', () => {
  const aws = useAwsMocks();
  const region = useRegionMocks();
  const failures: [string, () => void][] = [
    ['the second subnet', () => region.ec2.on(CreateSubnetCommand).resolvesOnce({ Subnet: { SubnetId: 'subnet-drill-1' } }).rejects(new Error('InsufficientFreeAddressesInSubnet'))],
    ['the third endpoint', () => {
      let count = 0;
      region.ec2.on(CreateVpcEndpointCommand).callsFake(() => {
        if (count === 2) throw new Error('VpcEndpointLimitExceeded');
        return { VpcEndpoint: { VpcEndpointId: ENDPOINTS[count++] } };
      });
    }],
    ['the drill secret', () => aws.secrets.on(CreateSecretCommand).rejects(new Error('AccessDeniedException'))],
    ['the restore call', () => aws.rds.on(RestoreDBInstanceFromDBSnapshotCommand).rejects(Object.assign(new Error('StorageQuotaExceeded'), { $metadata: { httpStatusCode: 400 } }))],
    ['the restore itself', () => aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID }).resolvesOnce({ DBInstances: [copyInstance('incompatible-restore')] }).resolvesOnce({ DBInstances: [copyInstance('deleting')] }).rejects(new DBInstanceNotFoundFault({ message: 'gone', $metadata: {} }))],
    ['registering the verify task', () => aws.ecs.on(RegisterTaskDefinitionCommand).rejects(new Error('ClientException'))],
    ['the endpoints never becoming available', () => region.ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: ENDPOINTS.map((id) => ({ VpcEndpointId: id, State: 'Failed' })) })],
    ['RunTask', () => aws.ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: 'RESOURCE:ENI' }] })],
    ['verify exiting 1', () => aws.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ taskArn: TASK, lastStatus: 'STOPPED', containers: [{ name: 'drill-verify', exitCode: 1 }] }] })],
    ['an empty X-ray replica', () => region.s3.on(ListObjectsV2Command).resolves({ Contents: [] })],
    ['an X-ray under another key', () => region.s3.on(HeadObjectCommand).resolves({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/source' })],
  ];

  for (const [step, breakIt] of failures) {
    it(`${step} fails: exit 1, FAIL in the report, and everything created so far is deleted`, async () => {
      healthyRegionDrill(aws, region);
      breakIt();
      const run = await runCli(ARGS());
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /result\s+FAIL: /);
      assert.deepEqual(await leftovers(aws, region), []);
      assert.match(run.stdout, /clean-up\s+everything the drill created is deleted/);
    });
  }

  it('a verify task still running when the drill stops is stopped first', async () => {
    healthyRegionDrill(aws, region);
    aws.ecs.on(DescribeTasksCommand).rejects(new Error('ThrottlingException'));
    const run = await runCli(ARGS());
    assert.equal(run.code, 1);
    assert.deepEqual(inputsOf(aws.ecs, StopTaskCommand), [{ cluster: 'dms-production-dr', task: TASK, reason: `dr-drill clean-up of ${DRILL_ID}` }]);
    assert.deepEqual(await leftovers(aws, region), []);
  });

  it('an interruption while the copy restores still deletes everything, once', async () => {
    healthyRegionDrill(aws, region);
    const controller = new AbortController();
    aws.rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DRILL_ID })
      .callsFakeOnce(() => {
        controller.abort(new Error('interrupted by SIGINT'));
        return { DBInstances: [copyInstance('creating')] };
      })
      .resolvesOnce({ DBInstances: [copyInstance('deleting')] })
      .rejects(new DBInstanceNotFoundFault({ message: 'gone', $metadata: {} }));
    const run = await runCli(ARGS(), { signal: controller.signal });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /FAIL: wait for the restore: .*SIGINT/);
    assert.equal(aws.rds.commandCalls(DeleteDBInstanceCommand).length, 1);
    assert.equal(region.ec2.commandCalls(DeleteVpcCommand).length, 1);
    assert.deepEqual(await leftovers(aws, region), []);
  });

  it('waits out EC2 refusing to delete a group still used by an endpoint\'s interface', async () => {
    healthyRegionDrill(aws, region);
    const busy = Object.assign(new Error('resource sg-task has a dependent object'), { name: 'DependencyViolation', $metadata: { httpStatusCode: 400 } });
    region.ec2.on(DeleteSecurityGroupCommand, { GroupId: 'sg-task' }).rejectsOnce(busy).rejectsOnce(busy).resolves({});
    const clock = fakeClock();
    const run = await runCli(ARGS(), { clock });
    assert.equal(run.code, 0, run.stdout);
    assert.equal(inputsOf<{ GroupId: string }>(region.ec2, DeleteSecurityGroupCommand).filter((input) => input.GroupId === 'sg-task').length, 3);
  });

  it('a clean-up step that keeps failing is reported with the command to finish it by hand, and the drill fails', async () => {
    healthyRegionDrill(aws, region);
    region.ec2.on(DeleteVpcCommand).rejects(Object.assign(new Error('UnauthorizedOperation'), { name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } }));
    const run = await runCli(ARGS());
    assert.equal(run.code, 1);
    assert.match(run.stdout, /clean-up FAILED\s+VPC vpc-drill .*by hand: aws ec2 delete-vpc --region eu-central-1 --vpc-id vpc-drill/);
    assert.match(run.stdout, /result\s+FAIL: clean-up failed/);
  });
});

describe('ops dr-drill --region-loss --dry-run', () => {
  const aws = useAwsMocks();
  const region = useRegionMocks();

  it('prints every call, clean-up included, with its parameters, and sends none', async () => {
    const run = await runCli([...ARGS(), '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(totalCalls(aws) + Object.values(region).reduce((sum, mock) => sum + mock.calls().length, 0), 0);
    for (const operation of ['ListRecoveryPointsByBackupVault', 'CreateVpc', 'CreateVpcEndpoint', 'CreateSecret', 'RestoreDBInstanceFromDBSnapshot', 'RegisterTaskDefinition', 'RunTask', 'HeadObject', 'GetObject', 'DeleteDBInstance', 'DeleteVpc']) {
      assert.match(run.stdout, new RegExp(`\\d+\\. [a-z0-9]+ \\(${operation === 'DescribeTaskDefinition' ? 'eu-west-1' : DR}\\) ${operation}`), operation);
    }
    assert.match(run.stdout, /"DBSubnetGroupName": "dms-drill-production-\d{12}"|"DBSubnetGroupName":"dms-drill-production-\d{12}"/);
    assert.match(run.stdout, /never printed/);
  });

  it('refuses --region-loss with flags of the in-region drill', async () => {
    const run = await runCli([...ARGS(), '--snapshot', 'rds:dms-production-2025-03-10-03-10']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--region-loss/);
  });
});
