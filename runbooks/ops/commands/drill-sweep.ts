import { DescribeTasksCommand, ListTasksCommand, StopTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { DeleteDBInstanceCommand, DescribeDBInstancesCommand, type DBInstance, type RDSClient } from '@aws-sdk/client-rds';
import { defineCommand, stackShortName } from '../lib/command.js';
import { DRILL_KEEP_TAG, DRILL_STARTED_TAG, DRILL_TAG, VERIFY_TASK_STARTED_BY } from '../lib/drill.js';
import { dryRunOption, sendChange } from '../lib/dry-run.js';
import type { OpsContext } from '../lib/context.js';
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

/** Where drills leave things: a region and the cluster their verify tasks run in. */
interface Place {
  region: string;
  cluster: string;
}

/** One sweep over every place: its settings, and what it found and did. */
interface Sweep {
  olderThanMs: number;
  dryRun: boolean;
  includeKept: boolean;
  now: number;
  /** `dms-drill-<stack>-`: a drill instance's name. */
  prefix: string;
  /** The stack's primary and replica: never deleted, whatever their tags. */
  ownDatabases: Set<string>;
  progress: Progress;
  /** region, kind, id, age, action: one row per task or instance found. */
  rows: (string | number)[][];
  failures: number;
}

async function sweepPlace(ctx: OpsContext, sweep: Sweep, { region, cluster }: Place): Promise<void> {
  const clients = ctx.aws(region);
  /** How long ago a task or instance started (Infinity, 'unknown', when it does not say): only the old ones are swept. */
  const ageOf = (started: Date | undefined) => {
    const ms = started ? sweep.now - started.getTime() : Infinity;
    return { ms, text: started ? formatDuration(ms) : 'unknown' };
  };
  sweep.progress.step(`listing verify tasks of ${cluster} (${region}) started by ${VERIFY_TASK_STARTED_BY}`);
  for (const task of await runningVerifyTasks(clients.ecs(), cluster)) {
    const age = ageOf(task.startedAt ?? task.createdAt);
    const id = task.taskArn?.split('/').at(-1) ?? '?';
    if (age.ms < sweep.olderThanMs) {
      sweep.rows.push([region, 'ecs task', id, age.text, 'left running (younger than --older-than)']);
      continue;
    }
    try {
      const sent = await sendChange(ctx, sweep.dryRun, {
        service: 'ecs',
        command: new StopTaskCommand({ cluster, task: task.taskArn, reason: 'drill-sweep: verify task outlived its drill' }),
        send: (command) => clients.ecs().send(command),
      });
      sweep.rows.push([region, 'ecs task', id, age.text, sent ? 'stopped' : 'would stop (dry run)']);
    } catch (error) {
      sweep.failures++;
      sweep.rows.push([region, 'ecs task', id, age.text, `FAILED to stop: ${describeError(error)}`]);
    }
  }

  sweep.progress.step(`listing DB instances in ${region} tagged ${DRILL_TAG}=true`);
  const drills = (await allInstances(clients.rds())).filter(
    (instance) => tagValue(instance, DRILL_TAG) === 'true' && instance.DBInstanceIdentifier?.startsWith(sweep.prefix) && !sweep.ownDatabases.has(instance.DBInstanceIdentifier),
  );
  for (const instance of drills) {
    const id = instance.DBInstanceIdentifier ?? '?';
    const startedTag = tagValue(instance, DRILL_STARTED_TAG);
    const age = ageOf(startedTag && !Number.isNaN(Date.parse(startedTag)) ? new Date(startedTag) : instance.InstanceCreateTime);
    let action: string;
    if (instance.DBInstanceStatus === 'deleting') action = 'already deleting';
    else if (age.ms < sweep.olderThanMs) action = 'left (younger than --older-than)';
    else if (tagValue(instance, DRILL_KEEP_TAG) === 'true' && !sweep.includeKept) action = 'left (kept with --keep; --include-kept deletes it)';
    else {
      try {
        const sent = await sendChange(ctx, sweep.dryRun, {
          service: 'rds',
          command: new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }),
          send: (command) => clients.rds().send(command),
        });
        action = sent ? 'deletion requested' : 'would delete (dry run)';
      } catch (error) {
        sweep.failures++;
        action = `FAILED to delete: ${describeError(error)}`;
      }
    }
    sweep.rows.push([region, 'rds instance', id, age.text, action]);
  }
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
    'In the stack\'s region, and in the DR region (drRegion, drClusterName) where the region-loss drill runs:',
    'lists the DB instances (all pages) and takes those tagged dms:drill=true whose id is dms-drill-<stack>-…,',
    'never the stack\'s primary or replica. Stops the cluster\'s verify tasks (started by dms-ops-dr-drill) older than',
    '--older-than, then deletes each drill instance older than that (no final snapshot, automated backups too),',
    'except --keep ones unless --include-kept. Exit 1 when a stop or delete failed.',
    'Example: npm run ops -- drill-sweep --stack production --dry-run',
  ],
  async run({ options }, ctx) {
    const olderThanMs = parseDuration(options['older-than'] ?? DEFAULT_OLDER_THAN, 'older-than');
    const loaded = await loadOutputs(options.stack, options.outputs, ctx);
    const outputs = requireOutputs(loaded, ['region', 'clusterName', 'dbInstanceIdentifier']);
    // The region-loss drill restores and verifies in the DR region, with its own cluster there.
    const drRegion = optionalOutput(loaded, 'drRegion');
    const drCluster = optionalOutput(loaded, 'drClusterName');
    const places: Place[] = [
      { region: outputs.region, cluster: outputs.clusterName },
      ...(drRegion && drCluster && drRegion !== outputs.region ? [{ region: drRegion, cluster: drCluster }] : []),
    ];
    const sweep: Sweep = {
      olderThanMs,
      dryRun: options['dry-run'],
      includeKept: options['include-kept'],
      now: ctx.clock.now().getTime(),
      prefix: `dms-drill-${stackShortName(options.stack).toLowerCase()}-`,
      ownDatabases: new Set([outputs.dbInstanceIdentifier, optionalOutput(loaded, 'dbReplicaIdentifier')].filter((id) => id !== undefined)),
      progress: new Progress(ctx),
      rows: [],
      failures: 0,
    };
    for (const place of places) await sweepPlace(ctx, sweep, place);

    const found = (kind: string) => sweep.rows.filter((row) => row[1] === kind).length;
    if (sweep.rows.length > 0) printTable(ctx, ['region', 'kind', 'id', 'age', 'action'], sweep.rows);
    printSummary(ctx, `drill-sweep: ${options.stack}`, [
      ['regions', places.map((place) => place.region).join(', ')],
      ['older than', formatDuration(olderThanMs)],
      ['found', `${found('rds instance')} drill instance(s), ${found('ecs task')} verify task(s)`],
      ['result', sweep.failures > 0 ? `FAIL: ${sweep.failures} could not be stopped or deleted` : sweep.dryRun ? 'dry run: nothing sent' : 'done'],
    ]);
    return sweep.failures > 0 ? 1 : 0;
  },
});
