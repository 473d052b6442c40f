// The region-loss drill's AWS calls, built in one place so the dry-run plan and the real drill send
// the same parameters: commands/dr-drill-region-loss.ts runs them, regionDrillPlan() lists them.
// Everything but one read (the verify task definition, to run the same container) is sent to the
// DR region: the drill proves what is left when the stack's region is gone.
import { ListRecoveryPointsByBackupVaultCommand } from '@aws-sdk/client-backup';
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
  ModifyVpcAttributeCommand,
  type Tag as Ec2Tag,
  type TagSpecification,
  type ResourceType,
} from '@aws-sdk/client-ec2';
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import {
  DeregisterTaskDefinitionCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  type ContainerDefinition,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import {
  CreateDBSubnetGroupCommand,
  DeleteDBInstanceCommand,
  DeleteDBSubnetGroupCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  type Tag,
} from '@aws-sdk/client-rds';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateSecretCommand, DeleteSecretCommand } from '@aws-sdk/client-secrets-manager';
import { APP_ROLE_RESET_VARIABLE, DRILL_STARTED_TAG, DRILL_TAG, runVerifyTaskIn, type PlannedCall } from './drill.js';
import { awsErrorName } from './aws.js';
import { stackShortName } from './command.js';
import { OpsError } from './errors.js';
import type { StackOutputs } from './outputs.js';
import { formatDuration, isoSeconds } from './time.js';

export type RegionDrillOutputs = Pick<
  StackOutputs,
  | 'region'
  | 'dbInstanceIdentifier'
  | 'dbKmsKeyArn'
  | 'dbInstanceClass'
  | 'drillVerifyTaskDefinitionArn'
  | 'drRegion'
  | 'drBackupVaultName'
  | 'drKmsKeyArn'
  | 'xrayReplicaBucketName'
  | 'drClusterName'
  | 'drVerifyExecutionRoleArn'
  | 'drVerifyLogGroupName'
>;

export interface RegionDrill {
  stack: string;
  outputs: RegionDrillOutputs;
  /** `dms-drill-<stack>-<yyyymmddhhmm>`: the restored instance, its subnet group, the drill's secret and task family. */
  drillId: string;
  startedAt: Date;
  availableTimeoutMs: number;
  /** How many replicated X-ray objects to check (exist, encrypted with the DR key, decrypt). */
  xraySamples: number;
}

/** The throw-away network: a /16 no stack uses, two private subnets (an RDS subnet group needs two AZs), no internet path. */
export const DRILL_VPC_CIDR = '10.254.0.0/16';
export const DRILL_SUBNET_CIDRS = ['10.254.0.0/24', '10.254.1.0/24'] as const;
/** What a Fargate task without internet needs: image pull (ECR API, registry, S3 layers), logs, its secret. */
export const INTERFACE_ENDPOINT_SERVICES = ['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager'] as const;
/** Key prefix of X-ray objects in the buckets (CONTRACT §3). */
export const XRAY_PREFIX = 'patients/';
export const ENDPOINT_POLL_MS = 15_000;
export const ENDPOINT_TIMEOUT_MS = 15 * 60_000;

/** The moments the drill measures; RTO and RPO follow from them. */
export interface DrillTimes {
  /** The drill started: in a real loss, the moment someone decided to recover. */
  startedAt: Date;
  restoreRequestedAt: Date;
  availableAt?: Date;
  verifiedAt?: Date;
  /** The newest transaction in the restored copy. */
  dataAsOf: Date;
}

export interface RecoveryMeasures {
  /** Drill start to a verified database in the DR region (network, restore, verify): the RTO a real loss would see before deploying the API. */
  rtoMs?: number;
  /** Restore request to an available instance. */
  restoreMs?: number;
  /** Drill start minus the data's time: what a loss right now would lose. */
  rpoMs: number;
}

export function recoveryMeasures(times: DrillTimes): RecoveryMeasures {
  return {
    ...(times.verifiedAt ? { rtoMs: times.verifiedAt.getTime() - times.startedAt.getTime() } : {}),
    ...(times.availableAt ? { restoreMs: times.availableAt.getTime() - times.restoreRequestedAt.getTime() } : {}),
    rpoMs: times.startedAt.getTime() - times.dataAsOf.getTime(),
  };
}

/** The report's RTO/RPO rows. */
export function measureRows(times: DrillTimes): [string, string][] {
  const measures = recoveryMeasures(times);
  return [
    ...(measures.restoreMs !== undefined ? [['restore', `${formatDuration(measures.restoreMs)} (request to available)`] as [string, string]] : []),
    ...(measures.rtoMs !== undefined ? [['RTO', `${formatDuration(measures.rtoMs)} (drill start ${isoSeconds(times.startedAt)} to verified ${isoSeconds(times.verifiedAt!)})`] as [string, string]] : []),
    ['RPO', `${formatDuration(measures.rpoMs)} (drill start ${isoSeconds(times.startedAt)} vs data as of ${isoSeconds(times.dataAsOf)})`],
  ];
}

const arnParts = (drill: RegionDrill) => {
  const [, partition = 'aws', , , account = ''] = drill.outputs.dbKmsKeyArn.split(':');
  return { partition, account };
};

/** The primary instance's ARN: AWS Backup lists a copy under the resource it was taken of. */
export function primaryDatabaseArn(drill: RegionDrill): string {
  const { partition, account } = arnParts(drill);
  return `arn:${partition}:rds:${drill.outputs.region}:${account}:db:${drill.outputs.dbInstanceIdentifier}`;
}

/** An RDS recovery point's ARN is the snapshot's; restore calls take the identifier after `snapshot:` (`awsbackup:copyjob-…`). */
export function snapshotIdentifierOf(recoveryPointArn: string): string {
  const identifier = recoveryPointArn.split(':snapshot:')[1];
  if (!identifier) throw new OpsError(`recovery point ${recoveryPointArn} is not an RDS snapshot`);
  return identifier;
}

/** The verify image as ECR replicated it to the DR region: same repository and digest, the DR region's registry. */
export function imageInRegion(image: string, region: string): string {
  const match = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?\/(.+)$/.exec(image);
  if (!match) throw new OpsError(`verify image ${image} is not in an ECR registry: nothing replicates it to ${region}`);
  return `${match[1]}.dkr.ecr.${region}.amazonaws.com${match[3] ?? ''}/${match[4]}`;
}

/** What tells a region-loss drill's network and secret from anything else in the DR region (drill-sweep finds a killed drill's by it). */
export const DRILL_KIND_TAG = { Key: 'dms:drill-kind', Value: 'region-loss' } as const;

export function regionDrillTags(drill: RegionDrill): Tag[] {
  return [
    { Key: DRILL_TAG, Value: 'true' },
    { Key: DRILL_STARTED_TAG, Value: isoSeconds(drill.startedAt) },
    { ...DRILL_KIND_TAG },
  ];
}

const tagging = (drill: RegionDrill, resourceType: ResourceType, name: string): TagSpecification[] => [
  { ResourceType: resourceType, Tags: [...(regionDrillTags(drill) as Ec2Tag[]), { Key: 'Name', Value: name }] },
];

export const listRecoveryPoints = (drill: RegionDrill, nextToken?: string): ListRecoveryPointsByBackupVaultCommand =>
  new ListRecoveryPointsByBackupVaultCommand({ BackupVaultName: drill.outputs.drBackupVaultName, ByResourceArn: primaryDatabaseArn(drill), ByResourceType: 'RDS', NextToken: nextToken });

export const describeZones = (): DescribeAvailabilityZonesCommand =>
  new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }, { Name: 'zone-type', Values: ['availability-zone'] }] });

export const createVpc = (drill: RegionDrill): CreateVpcCommand => new CreateVpcCommand({ CidrBlock: DRILL_VPC_CIDR, TagSpecifications: tagging(drill, 'vpc', drill.drillId) });
/** Interface endpoints answer under the services' own names only with DNS host names on. */
export const enableDnsHostnames = (vpcId: string): ModifyVpcAttributeCommand => new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } });
export const createSubnet = (drill: RegionDrill, vpcId: string, index: number, zone: string): CreateSubnetCommand =>
  new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: DRILL_SUBNET_CIDRS[index], AvailabilityZone: zone, TagSpecifications: tagging(drill, 'subnet', `${drill.drillId}-${index + 1}`) });
export const mainRouteTable = (vpcId: string): DescribeRouteTablesCommand =>
  new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'association.main', Values: ['true'] }] });
export const createSecurityGroup = (drill: RegionDrill, vpcId: string, role: 'task' | 'db'): CreateSecurityGroupCommand =>
  new CreateSecurityGroupCommand({
    GroupName: `${drill.drillId}-${role}`,
    Description: role === 'task' ? 'dr-drill verify task and the endpoints it uses' : 'dr-drill restored database: the verify task only',
    VpcId: vpcId,
    TagSpecifications: tagging(drill, 'security-group', `${drill.drillId}-${role}`),
  });
/** The task's group reaches the endpoints (HTTPS within the group); the database's admits the task's group on the database port. */
export const allowFromGroup = (groupId: string, sourceGroupId: string, port: number): AuthorizeSecurityGroupIngressCommand =>
  new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [{ IpProtocol: 'tcp', FromPort: port, ToPort: port, UserIdGroupPairs: [{ GroupId: sourceGroupId }] }] });
export const createInterfaceEndpoint = (drill: RegionDrill, vpcId: string, service: string, subnetIds: string[], groupId: string): CreateVpcEndpointCommand =>
  new CreateVpcEndpointCommand({
    VpcId: vpcId,
    ServiceName: `com.amazonaws.${drill.outputs.drRegion}.${service}`,
    VpcEndpointType: 'Interface',
    SubnetIds: subnetIds,
    SecurityGroupIds: [groupId],
    PrivateDnsEnabled: true,
    TagSpecifications: tagging(drill, 'vpc-endpoint', `${drill.drillId}-${service}`),
  });
export const createS3Endpoint = (drill: RegionDrill, vpcId: string, routeTableId: string): CreateVpcEndpointCommand =>
  new CreateVpcEndpointCommand({
    VpcId: vpcId,
    ServiceName: `com.amazonaws.${drill.outputs.drRegion}.s3`,
    VpcEndpointType: 'Gateway',
    RouteTableIds: [routeTableId],
    TagSpecifications: tagging(drill, 'vpc-endpoint', `${drill.drillId}-s3`),
  });
export const describeEndpoints = (endpointIds: string[]): DescribeVpcEndpointsCommand => new DescribeVpcEndpointsCommand({ VpcEndpointIds: endpointIds });

export const createDbSubnetGroup = (drill: RegionDrill, subnetIds: string[]): CreateDBSubnetGroupCommand =>
  new CreateDBSubnetGroupCommand({ DBSubnetGroupName: drill.drillId, DBSubnetGroupDescription: `dr-drill ${drill.drillId} (deleted with it)`, SubnetIds: subnetIds, Tags: regionDrillTags(drill) });

/** The restored copy's master password: a fresh random one, held only in this secret (DR key) and never printed. */
export const createDrillSecret = (drill: RegionDrill, secretName: string, password: string): CreateSecretCommand =>
  new CreateSecretCommand({
    Name: secretName,
    Description: `dr-drill ${drill.drillId}: master password of the restored copy (deleted with it)`,
    KmsKeyId: drill.outputs.drKmsKeyArn,
    SecretString: password,
    Tags: regionDrillTags(drill),
  });

/**
 * The copy lands in the throw-away network, private, single-AZ, without backups or deletion
 * protection. No parameter group: the stack's lives in the lost region; the engine default of
 * PostgreSQL 15 and later forces TLS already (rds.force_ssl=1). No KMS key either: the restore keeps
 * the copy's, the DR key, which the drill checks before restoring.
 */
export const restoreCopy = (drill: RegionDrill, snapshotIdentifier: string, securityGroupId: string): RestoreDBInstanceFromDBSnapshotCommand =>
  new RestoreDBInstanceFromDBSnapshotCommand({
    DBInstanceIdentifier: drill.drillId,
    DBSnapshotIdentifier: snapshotIdentifier,
    DBSubnetGroupName: drill.drillId,
    VpcSecurityGroupIds: [securityGroupId],
    DBInstanceClass: drill.outputs.dbInstanceClass,
    PubliclyAccessible: false,
    DeletionProtection: false,
    MultiAZ: false,
    BackupRetentionPeriod: 0,
    Tags: regionDrillTags(drill),
  });

export const setMasterPassword = (drill: RegionDrill, password: string): ModifyDBInstanceCommand =>
  new ModifyDBInstanceCommand({ DBInstanceIdentifier: drill.drillId, MasterUserPassword: password, ApplyImmediately: true });

/** The verify task definition's settings the DR copy of it keeps. */
export type VerifyDefinition = Pick<TaskDefinition, 'cpu' | 'memory' | 'runtimePlatform' | 'volumes'>;

/**
 * The primary's verify container, in the DR region: the replicated image, the drill's secret as
 * PGPASSWORD, the DR log group; no task role (verify needs no AWS access) and nothing from the
 * lost region.
 */
export function registerVerifyTask(drill: RegionDrill, definition: VerifyDefinition, container: ContainerDefinition, secretArn: string): RegisterTaskDefinitionCommand {
  const { outputs } = drill;
  return new RegisterTaskDefinitionCommand({
    family: drill.drillId,
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    cpu: definition.cpu,
    memory: definition.memory,
    runtimePlatform: definition.runtimePlatform,
    volumes: definition.volumes,
    executionRoleArn: outputs.drVerifyExecutionRoleArn,
    containerDefinitions: [
      {
        ...container,
        image: container.image ? imageInRegion(container.image, outputs.drRegion) : container.image,
        dependsOn: undefined,
        environment: (container.environment ?? []).filter((variable) => !['DATABASE_URL', 'DATABASE_REPLICA_URLS', APP_ROLE_RESET_VARIABLE].includes(variable.name ?? '')),
        secrets: [{ name: 'PGPASSWORD', valueFrom: secretArn }],
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': outputs.drVerifyLogGroupName, 'awslogs-region': outputs.drRegion, 'awslogs-stream-prefix': 'dr-verify' } },
      },
    ],
    tags: regionDrillTags(drill).map((tag) => ({ key: tag.Key, value: tag.Value })),
  });
}

export function runDrVerifyTask(drill: RegionDrill, taskDefinitionArn: string, container: Pick<ContainerDefinition, 'name' | 'command'>, network: { subnetIds: string[]; groupId: string }, databaseUrl: string, resetAppRoleBy?: string): RunTaskCommand {
  const placement = { cluster: drill.outputs.drClusterName, taskDefinition: taskDefinitionArn, subnetIds: network.subnetIds, securityGroupId: network.groupId };
  return runVerifyTaskIn(placement, drill.drillId, container, databaseUrl, resetAppRoleBy);
}

export const describeCopy = (snapshotIdentifier: string): DescribeDBSnapshotsCommand => new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotIdentifier });
export const describeCopyInstance = (drill: RegionDrill): DescribeDBInstancesCommand => new DescribeDBInstancesCommand({ DBInstanceIdentifier: drill.drillId });
export const describeVerifyDefinition = (drill: RegionDrill): DescribeTaskDefinitionCommand => new DescribeTaskDefinitionCommand({ taskDefinition: drill.outputs.drillVerifyTaskDefinitionArn });
export const describeTask = (drill: RegionDrill, taskArn: string): DescribeTasksCommand => new DescribeTasksCommand({ cluster: drill.outputs.drClusterName, tasks: [taskArn] });
export const stopTask = (drill: RegionDrill, taskArn: string): StopTaskCommand => new StopTaskCommand({ cluster: drill.outputs.drClusterName, task: taskArn, reason: `dr-drill clean-up of ${drill.drillId}` });
export const readLog = (drill: RegionDrill, stream: string): GetLogEventsCommand => new GetLogEventsCommand({ logGroupName: drill.outputs.drVerifyLogGroupName, logStreamName: stream, startFromHead: true });

export const listXrays = (drill: RegionDrill): ListObjectsV2Command => new ListObjectsV2Command({ Bucket: drill.outputs.xrayReplicaBucketName, Prefix: XRAY_PREFIX, MaxKeys: 1000 });
export const headXray = (drill: RegionDrill, key: string): HeadObjectCommand => new HeadObjectCommand({ Bucket: drill.outputs.xrayReplicaBucketName, Key: key });
/** One byte is enough: S3 decrypts the object's data key with KMS before it returns any byte. */
export const readXrayByte = (drill: RegionDrill, key: string): GetObjectCommand => new GetObjectCommand({ Bucket: drill.outputs.xrayReplicaBucketName, Key: key, Range: 'bytes=0-0' });

/** Spread over the listing, so the sample is not only the lexically first patient. */
export function sampleKeys(keys: readonly string[], count: number): string[] {
  if (keys.length <= count) return [...keys];
  return Array.from({ length: count }, (_, index) => keys[Math.floor((index * keys.length) / count)] as string);
}

export const deleteCopy = (drill: RegionDrill): DeleteDBInstanceCommand => new DeleteDBInstanceCommand({ DBInstanceIdentifier: drill.drillId, SkipFinalSnapshot: true, DeleteAutomatedBackups: true });
/**
 * EC2 and RDS refuse a deletion while something still depends on what it deletes (an endpoint's
 * interfaces in a subnet or group, an instance in its subnet group): it goes within minutes.
 */
const HELD_BY_A_DEPENDENCY = new Set(['DependencyViolation', 'InvalidDBSubnetGroupStateFault', 'InvalidDBInstanceStateFault', 'InvalidDBInstanceState']);
export const isHeldByADependency = (error: unknown): boolean => HELD_BY_A_DEPENDENCY.has(awsErrorName(error) ?? '');

/** The drill's DB subnet group is named for the drill (`createDbSubnetGroup`). */
export const deleteDbSubnetGroup = (drillId: string): DeleteDBSubnetGroupCommand => new DeleteDBSubnetGroupCommand({ DBSubnetGroupName: drillId });
export const deleteDrillSecret = (secretId: string): DeleteSecretCommand => new DeleteSecretCommand({ SecretId: secretId, ForceDeleteWithoutRecovery: true });
export const deregisterVerifyTask = (taskDefinitionArn: string): DeregisterTaskDefinitionCommand => new DeregisterTaskDefinitionCommand({ taskDefinition: taskDefinitionArn });
export const deleteEndpoints = (endpointIds: string[]): DeleteVpcEndpointsCommand => new DeleteVpcEndpointsCommand({ VpcEndpointIds: endpointIds });
export const deleteSecurityGroup = (groupId: string): DeleteSecurityGroupCommand => new DeleteSecurityGroupCommand({ GroupId: groupId });
export const deleteSubnet = (subnetId: string): DeleteSubnetCommand => new DeleteSubnetCommand({ SubnetId: subnetId });
export const deleteVpc = (vpcId: string): DeleteVpcCommand => new DeleteVpcCommand({ VpcId: vpcId });

/** The drill's secret: named for the drill, inside the prefix the DR verify execution role may read. */
export const drillSecretName = (stack: string, drillId: string): string => `dms-${stackShortName(stack)}-dr-drill-${drillId}`;

/** Every call the drill would make, in order, with placeholders for what only the run learns. */
export function regionDrillPlan(drill: RegionDrill): PlannedCall[] {
  const dr = drill.outputs.drRegion;
  const vpc = '<VpcId from CreateVpc>';
  const subnets = ['<SubnetId 1>', '<SubnetId 2>'];
  const taskGroup = '<GroupId of the task group>';
  const dbGroup = '<GroupId of the database group>';
  const secret = '<ARN from CreateSecret>';
  const definition = '<taskDefinitionArn from RegisterTaskDefinition>';
  const endpoints = ['<VpcEndpointId of each endpoint>'];
  const placeholderContainer: ContainerDefinition = { name: '<verify container of drillVerifyTaskDefinitionArn>', image: `123456789012.dkr.ecr.${drill.outputs.region}.amazonaws.com/<its repository>@<its digest>`, command: ['<its command, which runs drill:verify>'] };
  return [
    { service: `backup (${dr})`, command: listRecoveryPoints(drill), note: 'every page; the newest COMPLETED copy of the primary in the DR vault' },
    { service: `rds (${dr})`, command: describeCopy('<awsbackup:copyjob-… of that recovery point>'), note: 'must be available and encrypted with drKmsKeyArn; its data time is the RPO' },
    { service: `ecs (${drill.outputs.region})`, command: describeVerifyDefinition(drill), note: 'the only call to the stack region: the verify container to run in the DR region' },
    { service: `ec2 (${dr})`, command: describeZones(), note: 'the first two available zones' },
    { service: `ec2 (${dr})`, command: createVpc(drill), note: 'the throw-away network: no internet gateway, no NAT; from here on any failure tears everything down' },
    { service: `ec2 (${dr})`, command: enableDnsHostnames(vpc), note: 'so the interface endpoints answer under the services\' names' },
    ...subnets.map((_, index) => ({ service: `ec2 (${dr})`, command: createSubnet(drill, vpc, index, `<zone ${index + 1}>`), note: 'private' })),
    { service: `ec2 (${dr})`, command: mainRouteTable(vpc), note: 'for the S3 gateway endpoint' },
    { service: `ec2 (${dr})`, command: createSecurityGroup(drill, vpc, 'task'), note: '' },
    { service: `ec2 (${dr})`, command: createSecurityGroup(drill, vpc, 'db'), note: '' },
    { service: `ec2 (${dr})`, command: allowFromGroup(taskGroup, taskGroup, 443), note: 'the task reaches the endpoints' },
    { service: `ec2 (${dr})`, command: allowFromGroup(dbGroup, taskGroup, 0), note: 'the task reaches the database, on the snapshot\'s port (shown 0 here)' },
    ...INTERFACE_ENDPOINT_SERVICES.map((service) => ({ service: `ec2 (${dr})`, command: createInterfaceEndpoint(drill, vpc, service, subnets, taskGroup), note: '' })),
    { service: `ec2 (${dr})`, command: createS3Endpoint(drill, vpc, '<RouteTableId of the main route table>'), note: 'image layers' },
    { service: `rds (${dr})`, command: createDbSubnetGroup(drill, subnets), note: '' },
    { service: `secretsmanager (${dr})`, command: createDrillSecret(drill, drillSecretName(drill.stack, drill.drillId), '<random; never printed>'), note: 'the copy\'s master password' },
    { service: `rds (${dr})`, command: restoreCopy(drill, '<awsbackup:copyjob-…>', dbGroup), note: 'single-AZ, private, no backups' },
    { service: `rds (${dr})`, command: describeCopyInstance(drill), note: `until available (up to ${formatDuration(drill.availableTimeoutMs)})` },
    { service: `rds (${dr})`, command: setMasterPassword(drill, '<the secret\'s value; never printed>'), note: 'the copy has the passwords of its backup' },
    { service: `rds (${dr})`, command: describeCopyInstance(drill), note: 'until the change is applied' },
    { service: `ecs (${dr})`, command: registerVerifyTask(drill, { cpu: '<cpu>', memory: '<memory>' }, placeholderContainer, secret), note: 'the replicated image, the drill secret, the DR log group' },
    { service: `ec2 (${dr})`, command: describeEndpoints(endpoints), note: `until every endpoint is available (up to ${formatDuration(ENDPOINT_TIMEOUT_MS)})` },
    {
      service: `ecs (${dr})`,
      command: runDrVerifyTask(drill, definition, placeholderContainer, { subnetIds: subnets, groupId: taskGroup }, '<DATABASE_URL of the verify container, moved to the copy>', '<master user, when verify signs in as the app role>'),
      note: 'drill:verify: row counts, the audit chain end to end',
    },
    { service: `ecs (${dr})`, command: describeTask(drill, '<task arn>'), note: 'until STOPPED; exit code 0 = verified' },
    { service: `logs (${dr})`, command: readLog(drill, '<dr-verify/<container>/<task id>>'), note: 'the JSON line drill:verify printed' },
    { service: `s3 (${dr})`, command: listXrays(drill), note: `the replica's X-rays; ${drill.xraySamples} spread over the listing are checked` },
    { service: `s3 (${dr})`, command: headXray(drill, '<sampled key>'), note: 'exists, SSE-KMS with drKmsKeyArn' },
    { service: `s3 (${dr})`, command: readXrayByte(drill, '<sampled key>'), note: 'decrypts' },
    { service: `ecs (${dr})`, command: stopTask(drill, '<task arn>'), note: 'clean-up, only if the task is still running' },
    { service: `ecs (${dr})`, command: deregisterVerifyTask(definition), note: 'clean-up' },
    { service: `rds (${dr})`, command: deleteCopy(drill), note: 'clean-up: always, also after a failure or an interruption' },
    { service: `rds (${dr})`, command: describeCopyInstance(drill), note: 'clean-up: until it is gone (its subnet group and security group cannot go before)' },
    { service: `secretsmanager (${dr})`, command: deleteDrillSecret(secret), note: 'clean-up: no recovery window' },
    { service: `rds (${dr})`, command: deleteDbSubnetGroup(drill.drillId), note: 'clean-up' },
    { service: `ec2 (${dr})`, command: deleteEndpoints(endpoints), note: 'clean-up' },
    { service: `ec2 (${dr})`, command: deleteSecurityGroup(dbGroup), note: 'clean-up (retried while the endpoints\' and the task\'s interfaces go)' },
    { service: `ec2 (${dr})`, command: deleteSecurityGroup(taskGroup), note: 'clean-up' },
    ...subnets.map((subnet) => ({ service: `ec2 (${dr})`, command: deleteSubnet(subnet), note: 'clean-up' })),
    { service: `ec2 (${dr})`, command: deleteVpc(vpc), note: 'clean-up' },
  ];
}
