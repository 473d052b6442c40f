import assert from 'node:assert/strict';
import { DescribeTasksCommand, ListTasksCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { DBSubnetGroupNotFoundFault, DeleteDBInstanceCommand, DeleteDBSubnetGroupCommand, DescribeDBInstancesCommand, InvalidDBInstanceStateFault, type DBInstance } from '@aws-sdk/client-rds';
import {
  DeleteSecurityGroupCommand, DeleteSubnetCommand, DeleteVpcCommand, DeleteVpcEndpointsCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand, DescribeVpcsCommand, EC2Client, type Vpc,
} from '@aws-sdk/client-ec2';
import { DeleteSecretCommand, ListSecretsCommand } from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { outputsFile, runCli, STACK_ARGS, T0, totalCalls, useAwsMocks } from './support.js';

const HOUR = 3_600_000;
const ago = (hours: number): Date => new Date(T0.getTime() - hours * HOUR);

function instance(id: string, startedHoursAgo: number, extraTags: Record<string, string> = { 'dms:drill': 'true' }, status = 'available'): DBInstance {
  return {
    DBInstanceIdentifier: id,
    DBInstanceStatus: status,
    InstanceCreateTime: ago(startedHoursAgo),
    TagList: Object.entries({ ...extraTags, 'dms:drill-started': ago(startedHoursAgo).toISOString() }).map(([Key, Value]) => ({ Key, Value })),
  };
}

const TASK = (id: string, startedHoursAgo: number) => ({ taskArn: `arn:aws:ecs:eu-west-1:123456789012:task/dms-production/${id}`, startedAt: ago(startedHoursAgo), lastStatus: 'RUNNING' });

function deleted(aws: ReturnType<typeof useAwsMocks>): string[] {
  return aws.rds.commandCalls(DeleteDBInstanceCommand).map((call) => call.args[0].input.DBInstanceIdentifier ?? '');
}

describe('ops drill-sweep: leftovers of interrupted drills, found by their dms:drill tag', () => {
  const aws = useAwsMocks();
  let ec2: AwsClientStub<EC2Client>;
  beforeEach(() => {
    ec2 = mockClient(EC2Client);
  });
  afterEach(() => ec2.restore());

  function region(): void {
    aws.rds
      .on(DescribeDBInstancesCommand)
      .resolvesOnce({
        DBInstances: [
          instance('dms-production', 900, {}),
          instance('dms-drill-production-202503092000', 13),
          instance('dms-drill-production-202503100830', 1),
        ],
        Marker: 'page-2',
      })
      .resolves({
        DBInstances: [
          instance('dms-drill-production-202503081000', 47, { 'dms:drill': 'true', 'dms:drill-keep': 'true' }),
          instance('dms-drill-staging-202503090000', 33),
          instance('dms-drill-production-202503070000', 57, {}),
          instance('dms-drill-production-202503060000', 80, { 'dms:drill': 'true' }, 'deleting'),
        ],
      });
    aws.ecs.on(ListTasksCommand).resolves({ taskArns: ['arn:aws:ecs:eu-west-1:123456789012:task/dms-production/old1', 'arn:aws:ecs:eu-west-1:123456789012:task/dms-production/new1'] });
    aws.ecs.on(DescribeTasksCommand).resolves({ tasks: [TASK('old1', 5), TASK('new1', 0.5)] });
    aws.ecs.on(StopTaskCommand).resolves({});
    aws.rds.on(DeleteDBInstanceCommand).resolves({});
  }

  it("deletes this stack's tagged drill instances older than 3h and stops old verify tasks; leaves young, kept, untagged and other stacks' ones", async () => {
    region();
    const run = await runCli(['drill-sweep', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.rds.commandCalls(DescribeDBInstancesCommand).map((call) => call.args[0].input.Marker), [undefined, 'page-2']);
    assert.deepEqual(aws.ecs.commandCalls(ListTasksCommand)[0]?.args[0].input, { cluster: 'dms-production', startedBy: 'dms-ops-dr-drill', desiredStatus: 'RUNNING', nextToken: undefined });
    assert.deepEqual(aws.rds.commandCalls(DeleteDBInstanceCommand).map((call) => call.args[0].input), [
      { DBInstanceIdentifier: 'dms-drill-production-202503092000', SkipFinalSnapshot: true, DeleteAutomatedBackups: true },
    ]);
    assert.deepEqual(aws.ecs.commandCalls(StopTaskCommand).map((call) => call.args[0].input.task), ['arn:aws:ecs:eu-west-1:123456789012:task/dms-production/old1']);
    assert.match(run.stdout, /dms-drill-production-202503100830\s+1h\s+left \(younger than --older-than\)/);
    assert.match(run.stdout, /dms-drill-production-202503081000\s+1d23h\s+left \(kept with --keep/);
    assert.match(run.stdout, /dms-drill-production-202503060000\s+3d08h\s+already deleting/);
    assert.doesNotMatch(run.stdout, /staging|202503070000|dms-production\s/);
  });

  it('with --include-kept and --older-than 30m also deletes kept and younger drills', async () => {
    region();
    const run = await runCli(['drill-sweep', ...STACK_ARGS, '--include-kept', '--older-than', '30m']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(deleted(aws), ['dms-drill-production-202503092000', 'dms-drill-production-202503100830', 'dms-drill-production-202503081000']);
    assert.equal(aws.ecs.commandCalls(StopTaskCommand).length, 2);
  });

  it('never deletes the stack\'s own primary or replica, even tagged as a drill', async () => {
    aws.rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance('dms-drill-production-202503010000', 200)] });
    aws.ecs.on(ListTasksCommand).resolves({ taskArns: [] });
    const outputs = outputsFile({ dbReplicaIdentifier: 'dms-drill-production-202503010000' });
    const run = await runCli(['drill-sweep', '--stack', 'production', '--outputs', outputs]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(deleted(aws), []);
  });

  it('--dry-run reads, prints each delete and stop it would send, and sends none', async () => {
    region();
    const run = await runCli(['drill-sweep', ...STACK_ARGS, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(deleted(aws), []);
    assert.equal(aws.ecs.commandCalls(StopTaskCommand).length, 0);
    assert.match(run.stdout, /dry run, not sent: rds DeleteDBInstance\n\s+\{\n\s+"DBInstanceIdentifier": "dms-drill-production-202503092000"/);
    assert.match(run.stdout, /dry run, not sent: ecs StopTask/);
    assert.match(run.stdout, /would delete \(dry run\)/);
  });

  it('goes on after a failed delete, and exits 1 naming it', async () => {
    region();
    aws.rds.on(DeleteDBInstanceCommand).rejects(new InvalidDBInstanceStateFault({ message: 'Instance is currently creating', $metadata: {} }));
    const run = await runCli(['drill-sweep', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.equal(aws.ecs.commandCalls(StopTaskCommand).length, 1);
    assert.match(run.stdout, /FAILED to delete: .*Instance is currently creating/);
    assert.match(run.stdout, /result\s+FAIL: 1 could not be stopped or deleted/);
  });

  it("also sweeps the DR region, where the region-loss drill restores and verifies in the DR cluster", async () => {
    const regionOf = async (getClient: () => { config: { region: () => Promise<string> } }) => getClient().config.region();
    aws.rds.on(DescribeDBInstancesCommand).callsFake(async (_input, getClient) => ({
      DBInstances: (await regionOf(getClient)) === 'us-west-2' ? [instance('dms-drill-production-202503092100', 12, { 'dms:drill': 'true', 'dms:drill-kind': 'region-loss' })] : [],
    }));
    aws.ecs.on(ListTasksCommand).callsFake(async (input: { cluster: string }) => ({ taskArns: input.cluster === 'dms-production-dr' ? ['arn:aws:ecs:us-west-2:123456789012:task/dms-production-dr/dr1'] : [] }));
    aws.ecs.on(DescribeTasksCommand).resolves({ tasks: [{ ...TASK('dr1', 4), taskArn: 'arn:aws:ecs:us-west-2:123456789012:task/dms-production-dr/dr1' }] });
    aws.ecs.on(StopTaskCommand).resolves({});
    aws.rds.on(DeleteDBInstanceCommand).resolves({});
    ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [] });
    aws.secrets.on(ListSecretsCommand).resolves({ SecretList: [] });
    const outputs = outputsFile({ drRegion: 'us-west-2', drClusterName: 'dms-production-dr' });
    const run = await runCli(['drill-sweep', '--stack', 'production', '--outputs', outputs]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await ec2.commandCalls(DescribeVpcsCommand)[0]!.thisValue.config.region(), 'us-west-2', 'networks are looked for in the DR region only');
    assert.equal(ec2.commandCalls(DescribeVpcsCommand).length, 1);
    const deletes = aws.rds.commandCalls(DeleteDBInstanceCommand);
    assert.deepEqual(deletes.map((call) => call.args[0].input.DBInstanceIdentifier), ['dms-drill-production-202503092100']);
    assert.equal(await deletes[0]!.thisValue.config.region(), 'us-west-2');
    const stops = aws.ecs.commandCalls(StopTaskCommand);
    assert.deepEqual(stops.map((call) => call.args[0].input.cluster), ['dms-production-dr']);
    assert.equal(await stops[0]!.thisValue.config.region(), 'us-west-2');
    assert.match(run.stdout, /regions\s+eu-west-1, us-west-2/);
  });

  describe('after a killed region-loss drill: its network and secret in the DR region, once its instance is gone', () => {
    const DR = { drRegion: 'us-west-2', drClusterName: 'dms-production-dr' };
    const OLD = 'dms-drill-production-202503092000';
    const DELETING = 'dms-drill-production-202503100900';
    const YOUNG = 'dms-drill-production-202503101030';
    const tags = (name: string, startedHoursAgo: number) => [
      { Key: 'dms:drill', Value: 'true' }, { Key: 'dms:drill-started', Value: ago(startedHoursAgo).toISOString() },
      { Key: 'dms:drill-kind', Value: 'region-loss' }, { Key: 'Name', Value: name },
    ];
    const vpc = (id: string, name: string, startedHoursAgo: number): Vpc => ({ VpcId: id, Tags: tags(name, startedHoursAgo) });
    const secret = (drillId: string, startedHoursAgo: number) => ({
      Name: `dms-production-dr-drill-${drillId}`, ARN: `arn:aws:secretsmanager:us-west-2:123456789012:secret:dms-production-dr-drill-${drillId}-AbCdEf`,
      Tags: tags(drillId, startedHoursAgo),
    });
    const inVpc = (input: { Filters?: { Name?: string; Values?: string[] }[] }) => input.Filters?.find((filter) => filter.Name === 'vpc-id')?.Values?.[0];
    // As the SDK throws it: EC2's errors carry the code as their name, and $metadata.
    const stillInUse = () => Object.assign(new Error('resource sg-task has a dependent object'), { name: 'DependencyViolation', $metadata: {} });

    /** The DR region as a killed drill left it: one old network and secret, one whose instance is still deleting, one young, one of another stack. */
    function leftovers(): void {
      aws.rds.on(DescribeDBInstancesCommand).callsFake(async (_input, getClient) => ({
        DBInstances: (await getClient().config.region()) === 'us-west-2' ? [instance(DELETING, 12, { 'dms:drill': 'true' }, 'deleting')] : [],
      }));
      aws.ecs.on(ListTasksCommand).resolves({ taskArns: [] });
      ec2.on(DescribeVpcsCommand).resolves({
        Vpcs: [vpc('vpc-old', OLD, 13), vpc('vpc-busy', DELETING, 12), vpc('vpc-young', YOUNG, 1), vpc('vpc-staging', 'dms-drill-staging-202503090000', 20)],
      });
      ec2.on(DescribeVpcEndpointsCommand).callsFake(async (input) => ({
        VpcEndpoints: inVpc(input) === 'vpc-old' ? [{ VpcEndpointId: 'vpce-logs', State: 'Available' }, { VpcEndpointId: 'vpce-s3', State: 'Available' }, { VpcEndpointId: 'vpce-gone', State: 'Deleted' }] : [],
      }));
      ec2.on(DescribeSecurityGroupsCommand).callsFake(async (input) => ({
        // As the drill made them: the database group admits the task group, so EC2 refuses the task group while that rule stands.
        SecurityGroups: inVpc(input) === 'vpc-old' ? [
          { GroupId: 'sg-default', GroupName: 'default' },
          { GroupId: 'sg-task', GroupName: `${OLD}-task`, IpPermissionsEgress: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] },
          { GroupId: 'sg-db', GroupName: `${OLD}-db`, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, UserIdGroupPairs: [{ GroupId: 'sg-task' }] }] },
        ] : [],
      }));
      ec2.on(DescribeSubnetsCommand).callsFake(async (input) => ({ Subnets: inVpc(input) === 'vpc-old' ? [{ SubnetId: 'subnet-1' }, { SubnetId: 'subnet-2' }] : [] }));
      ec2.on(DeleteVpcEndpointsCommand).resolves({});
      ec2.on(DeleteSecurityGroupCommand).resolves({});
      ec2.on(DeleteSubnetCommand).resolves({});
      ec2.on(DeleteVpcCommand).resolves({});
      aws.rds.on(DeleteDBSubnetGroupCommand).resolves({});
      aws.secrets.on(ListSecretsCommand).resolves({ SecretList: [secret(OLD, 13), secret(DELETING, 12), secret(YOUNG, 1)] });
      aws.secrets.on(DeleteSecretCommand).resolves({});
    }

    /** The deletions sent, in order, as `operation id`. */
    const deletions = () => [...Object.values(aws), ec2]
      .flatMap((mock) => mock.calls())
      .sort((a, b) => a.callId - b.callId)
      .map((call) => call.args[0] as { constructor: { name: string }; input: Record<string, unknown> })
      .filter((command) => command.constructor.name.startsWith('Delete'))
      .map(({ constructor, input }) => `${constructor.name.replace(/Command$/, '')} ${JSON.stringify(Object.values(input)[0])}`);

    it('tears down the old network newest part first (a group before the groups its rules name), deletes its secret, and leaves the ones whose instance is still deleting, the young one and other stacks\'', async () => {
      leftovers();
      const run = await runCli(['drill-sweep', '--stack', 'production', '--outputs', outputsFile(DR)]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(deletions(), [
        'DeleteVpcEndpoints ["vpce-logs","vpce-s3"]',
        `DeleteDBSubnetGroup "${OLD}"`,
        'DeleteSecurityGroup "sg-db"',
        'DeleteSecurityGroup "sg-task"',
        'DeleteSubnet "subnet-1"',
        'DeleteSubnet "subnet-2"',
        'DeleteVpc "vpc-old"',
        `DeleteSecret "arn:aws:secretsmanager:us-west-2:123456789012:secret:dms-production-dr-drill-${OLD}-AbCdEf"`,
      ]);
      assert.equal(aws.secrets.commandCalls(DeleteSecretCommand)[0]!.args[0].input.ForceDeleteWithoutRecovery, true);
      assert.equal(await ec2.commandCalls(DeleteVpcCommand)[0]!.thisValue.config.region(), 'us-west-2');
      assert.equal(await aws.rds.commandCalls(DeleteDBSubnetGroupCommand)[0]!.thisValue.config.region(), 'us-west-2');
      assert.deepEqual(ec2.commandCalls(DescribeVpcsCommand)[0]!.args[0].input.Filters, [
        { Name: 'tag:dms:drill-kind', Values: ['region-loss'] }, { Name: 'tag:Name', Values: ['dms-drill-production-*'] },
      ]);
      assert.deepEqual(aws.secrets.commandCalls(ListSecretsCommand)[0]!.args[0].input.Filters, [{ Key: 'name', Values: ['dms-production-dr-drill-dms-drill-production-'] }]);
      assert.match(run.stdout, new RegExp(`${DELETING} \\(vpc-busy\\)\\s+12h\\s+left while its instance ${DELETING} exists`));
      assert.match(run.stdout, new RegExp(`${YOUNG} \\(vpc-young\\)\\s+1h\\s+left \\(younger than --older-than\\)`));
      assert.match(run.stdout, /deleted \(2 endpoint\(s\), 2 security group\(s\), 2 subnet\(s\), its DB subnet group\)/);
      assert.match(run.stdout, /found\s+1 drill instance\(s\), 0 verify task\(s\), 3 drill network\(s\), 3 drill secret\(s\)/);
      assert.doesNotMatch(run.stdout, /staging/);
    });

    it('stops at a part EC2 still holds, exits 1 saying to run again, and the next run finishes the network', async () => {
      leftovers();
      ec2.on(DeleteSecurityGroupCommand).rejectsOnce(stillInUse());
      const first = await runCli(['drill-sweep', '--stack', 'production', '--outputs', outputsFile(DR)]);
      assert.equal(first.code, 1);
      assert.match(first.stdout, /deleting: EC2 is still releasing its endpoints' interfaces .*run drill-sweep again in a few minutes/);
      assert.match(first.stdout, /result\s+NOT FINISHED: 1 network\(s\) still being released/);
      assert.equal(ec2.commandCalls(DeleteSubnetCommand).length, 0);
      assert.equal(ec2.commandCalls(DeleteVpcCommand).length, 0);
      assert.equal(aws.secrets.commandCalls(DeleteSecretCommand).length, 1, 'the secret does not wait for the network');

      // Minutes later: the endpoints are gone and their subnet group too.
      ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: [{ VpcEndpointId: 'vpce-logs', State: 'Deleting' }] });
      aws.rds.on(DeleteDBSubnetGroupCommand).rejects(new DBSubnetGroupNotFoundFault({ message: `DB subnet group '${OLD}' not found.`, $metadata: {} }));
      aws.secrets.on(ListSecretsCommand).resolves({ SecretList: [] });
      const second = await runCli(['drill-sweep', '--stack', 'production', '--outputs', outputsFile(DR)]);
      assert.equal(second.code, 0, second.stdout);
      assert.equal(ec2.commandCalls(DeleteVpcEndpointsCommand).length, 1, 'no second delete of deleted endpoints');
      assert.deepEqual(ec2.commandCalls(DeleteVpcCommand).map((call) => call.args[0].input.VpcId), ['vpc-old']);
      assert.match(second.stdout, /result\s+done/);
    });

    it('--dry-run prints the teardown it would send and sends none', async () => {
      leftovers();
      const run = await runCli(['drill-sweep', '--stack', 'production', '--outputs', outputsFile(DR), '--dry-run']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(deletions(), []);
      assert.match(run.stdout, /dry run, not sent: ec2 DeleteVpcEndpoints/);
      assert.match(run.stdout, /dry run, not sent: ec2 DeleteVpc\n\s+\{"VpcId":"vpc-old"\}/);
      assert.match(run.stdout, /dry run, not sent: secretsmanager DeleteSecret/);
    });
  });

  it('refuses a malformed --older-than before any call', async () => {
    const run = await runCli(['drill-sweep', ...STACK_ARGS, '--older-than', 'soon']);
    assert.equal(run.code, 2);
    assert.equal(totalCalls(aws), 0);
  });
});
