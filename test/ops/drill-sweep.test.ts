import assert from 'node:assert/strict';
import { DescribeTasksCommand, ListTasksCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { DeleteDBInstanceCommand, DescribeDBInstancesCommand, InvalidDBInstanceStateFault, type DBInstance } from '@aws-sdk/client-rds';
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
    const outputs = outputsFile({ drRegion: 'us-west-2', drClusterName: 'dms-production-dr' });
    const run = await runCli(['drill-sweep', '--stack', 'production', '--outputs', outputs]);
    assert.equal(run.code, 0, run.stderr);
    const deletes = aws.rds.commandCalls(DeleteDBInstanceCommand);
    assert.deepEqual(deletes.map((call) => call.args[0].input.DBInstanceIdentifier), ['dms-drill-production-202503092100']);
    assert.equal(await deletes[0]!.thisValue.config.region(), 'us-west-2');
    const stops = aws.ecs.commandCalls(StopTaskCommand);
    assert.deepEqual(stops.map((call) => call.args[0].input.cluster), ['dms-production-dr']);
    assert.equal(await stops[0]!.thisValue.config.region(), 'us-west-2');
    assert.match(run.stdout, /regions\s+eu-west-1, us-west-2/);
  });

  it('refuses a malformed --older-than before any call', async () => {
    const run = await runCli(['drill-sweep', ...STACK_ARGS, '--older-than', 'soon']);
    assert.equal(run.code, 2);
    assert.equal(totalCalls(aws), 0);
  });
});
