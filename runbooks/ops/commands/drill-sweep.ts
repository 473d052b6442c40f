import { DescribeTasksCommand, ListTasksCommand, StopTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { DeleteDBInstanceCommand, DescribeDBInstancesCommand, type DBInstance, type RDSClient } from '@aws-sdk/client-rds';
import { defineCommand, stackShortName } from '../lib/command.js';
import { DRILL_KEEP_TAG, DRILL_STARTED_TAG, DRILL_TAG, VERIFY_TASK_STARTED_BY } from '../lib/drill.js';
import { dryRunOption, sendChange } from '../lib/dry-run.js';
import { describeError } from '../lib/errors.js';
import { loadOutputs, optionalOutput, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary, printTable } from '../lib/report.js';
import { formatDuration, parseDuration } from '../lib/time.js';

/** A drill waits up to 2h for its restore and 30m for verify: younger leftovers may be a drill still running. */
const DEFAULT_OLDER_THAN = '3h';

/** Every instance of the region, all pages: DescribeDBInstances cannot filter by tag. */
async function allInstances(rds: RDSClient): Promise<DBInstance[]> {
  const instances: DBInstance[] = [];
  let marker: string | undefined;
  do {
    const page = await rds.send(new DescribeDBInstancesCommand({ Marker: marker }));
    instances.push(...(page.DBInstances ?? []));
    marker = page.Marker;
  } while (marker);
  return instances;
}

/** Verify tasks still running in the cluster (RunTask's startedBy), with their start times. */
async function runningVerifyTasks(ecs: ECSClient, cluster: string): Promise<Task[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ecs.send(new ListTasksCommand({ cluster, startedBy: VERIFY_TASK_STARTED_BY, desiredStatus: 'RUNNING', nextToken }));
    arns.push(...(page.taskArns ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  const tasks: Task[] = [];
  // DescribeTasks takes at most 100 tasks per call.
  for (let start = 0; start < arns.length; start += 100) {
    tasks.push(...((await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns.slice(start, start + 100) }))).tasks ?? []));
  }
  return tasks;
}

function tagValue(instance: DBInstance, key: string): string | undefined {
  return instance.TagList?.find((tag) => tag.Key === key)?.Value;
}

export const drillSweep = defineCommand({
  name: 'drill-sweep',
  summary: 'find DR drill leftovers of the stack by their dms:drill tag: stop verify tasks, delete drill instances',
  options: {
    'older-than': { type: 'string', valueName: 'duration', description: `only leftovers started at least this long ago (default ${DEFAULT_OLDER_THAN}: a younger one may be a drill still running)` },
    'include-kept': { type: 'boolean', description: 'also delete instances a drill kept with --keep (tagged dms:drill-keep)' },
    'dry-run': dryRunOption,
  },
  details: [
    'Lists the region\'s DB instances (all pages) and takes those tagged dms:drill=true whose id is dms-drill-<stack>-…,',
    'never the stack\'s primary or replica. Stops the cluster\'s verify tasks (started by dms-ops-dr-drill) older than',
    '--older-than, then deletes each drill instance older than that (no final snapshot, automated backups too),',
    'except --keep ones unless --include-kept. Exit 1 when a stop or delete failed.',
    'Example: npm run ops -- drill-sweep --stack production --dry-run',
  ],
  async run({ options }, ctx) {
    const olderThanMs = parseDuration(options['older-than'] ?? DEFAULT_OLDER_THAN, 'older-than');
    const dryRun = options['dry-run'];
    const loaded = await loadOutputs(options.stack, options.outputs, ctx);
    const outputs = requireOutputs(loaded, ['region', 'clusterName', 'dbInstanceIdentifier']);
    const ownDatabases = new Set([outputs.dbInstanceIdentifier, optionalOutput(loaded, 'dbReplicaIdentifier')].filter((id) => id !== undefined));
    const clients = ctx.aws(outputs.region);
    const progress = new Progress(ctx);
    const now = ctx.clock.now().getTime();
    const prefix = `dms-drill-${stackShortName(options.stack).toLowerCase()}-`;
    const rows: (string | number)[][] = [];
    let failures = 0;

    progress.step(`listing verify tasks of ${outputs.clusterName} started by ${VERIFY_TASK_STARTED_BY}`);
    for (const task of await runningVerifyTasks(clients.ecs(), outputs.clusterName)) {
      const started = task.startedAt ?? task.createdAt;
      const age = started ? now - started.getTime() : Infinity;
      const id = task.taskArn?.split('/').at(-1) ?? '?';
      if (age < olderThanMs) {
        rows.push(['ecs task', id, formatDuration(age), 'left running (younger than --older-than)']);
        continue;
      }
      try {
        const sent = await sendChange(ctx, dryRun, {
          service: 'ecs',
          command: new StopTaskCommand({ cluster: outputs.clusterName, task: task.taskArn, reason: 'drill-sweep: verify task outlived its drill' }),
          send: (command) => clients.ecs().send(command),
        });
        rows.push(['ecs task', id, started ? formatDuration(age) : 'unknown', sent ? 'stopped' : 'would stop (dry run)']);
      } catch (error) {
        failures++;
        rows.push(['ecs task', id, started ? formatDuration(age) : 'unknown', `FAILED to stop: ${describeError(error)}`]);
      }
    }

    progress.step(`listing DB instances tagged ${DRILL_TAG}=true`);
    const drills = (await allInstances(clients.rds())).filter(
      (instance) => tagValue(instance, DRILL_TAG) === 'true' && instance.DBInstanceIdentifier?.startsWith(prefix) && !ownDatabases.has(instance.DBInstanceIdentifier),
    );
    for (const instance of drills) {
      const id = instance.DBInstanceIdentifier ?? '?';
      const startedTag = tagValue(instance, DRILL_STARTED_TAG);
      const started = startedTag && !Number.isNaN(Date.parse(startedTag)) ? new Date(startedTag) : instance.InstanceCreateTime;
      const age = started ? now - started.getTime() : Infinity;
      const ageText = started ? formatDuration(age) : 'unknown';
      let action: string;
      if (instance.DBInstanceStatus === 'deleting') action = 'already deleting';
      else if (age < olderThanMs) action = 'left (younger than --older-than)';
      else if (tagValue(instance, DRILL_KEEP_TAG) === 'true' && !options['include-kept']) action = 'left (kept with --keep; --include-kept deletes it)';
      else {
        try {
          const sent = await sendChange(ctx, dryRun, {
            service: 'rds',
            command: new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }),
            send: (command) => clients.rds().send(command),
          });
          action = sent ? 'deletion requested' : 'would delete (dry run)';
        } catch (error) {
          failures++;
          action = `FAILED to delete: ${describeError(error)}`;
        }
      }
      rows.push(['rds instance', id, ageText, action]);
    }

    if (rows.length > 0) printTable(ctx, ['kind', 'id', 'age', 'action'], rows);
    printSummary(ctx, `drill-sweep: ${options.stack}`, [
      ['region', outputs.region],
      ['older than', formatDuration(olderThanMs)],
      ['found', `${drills.length} drill instance(s), ${rows.length - drills.length} verify task(s)`],
      ['result', failures > 0 ? `FAIL: ${failures} could not be stopped or deleted` : dryRun ? 'dry run: nothing sent' : 'done'],
    ]);
    return failures > 0 ? 1 : 0;
  },
});
