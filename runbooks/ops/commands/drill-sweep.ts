import { DescribeSecurityGroupsCommand, DescribeSubnetsCommand, DescribeVpcEndpointsCommand, DescribeVpcsCommand, type SecurityGroup } from '@aws-sdk/client-ec2';
import { DescribeTasksCommand, ListTasksCommand, StopTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { DeleteDBInstanceCommand, DescribeDBInstancesCommand, type DBInstance, type RDSClient } from '@aws-sdk/client-rds';
import { ListSecretsCommand, type SecretListEntry, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { awsErrorName } from '../lib/aws.js';
import { defineCommand, stackShortName } from '../lib/command.js';
import { DRILL_KEEP_TAG, DRILL_STARTED_TAG, DRILL_TAG, VERIFY_TASK_STARTED_BY } from '../lib/drill.js';
import { dryRunOption, sendChange } from '../lib/dry-run.js';
import type { OpsContext } from '../lib/context.js';
import { describeError } from '../lib/errors.js';
import { loadOutputs, optionalOutput, requireOutputs } from '../lib/outputs.js';
import {
  DRILL_KIND_TAG, deleteDbSubnetGroup, deleteDrillSecret, deleteEndpoints, deleteSecurityGroup, deleteSubnet, deleteVpc, drillSecretName, isHeldByADependency,
} from '../lib/region-drill.js';
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

const tagValue = (tags: readonly { Key?: string; Value?: string }[] | undefined, key: string): string | undefined => tags?.find((tag) => tag.Key === key)?.Value;

/** A drill-started tag as a time, if it is one. */
function startedAt(tags: readonly { Key?: string; Value?: string }[] | undefined): Date | undefined {
  const started = tagValue(tags, DRILL_STARTED_TAG);
  return started && !Number.isNaN(Date.parse(started)) ? new Date(started) : undefined;
}

/**
 * Every secret whose name starts with `prefix`, all pages, with its tags. The `name` filter is a
 * case-sensitive prefix match (Secrets Manager API Reference, Filter); the names are checked here too.
 */
async function secretsNamed(secrets: SecretsManagerClient, prefix: string): Promise<SecretListEntry[]> {
  const found: SecretListEntry[] = [];
  let nextToken: string | undefined;
  do {
    const page = await secrets.send(new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [prefix] }], NextToken: nextToken }));
    found.push(...(page.SecretList ?? []).filter((secret) => secret.Name?.startsWith(prefix)));
    nextToken = page.NextToken;
  } while (nextToken);
  return found;
}


/**
 * The groups in an order EC2 deletes them in: "a security group ... referenced by another security
 * group in the same VPC" fails with DependencyViolation (EC2 API Reference, DeleteSecurityGroup), and
 * the drill's database group admits its task group. So a group goes before those its rules name.
 */
function referencingFirst(groups: SecurityGroup[]): SecurityGroup[] {
  const left = [...groups];
  const ordered: SecurityGroup[] = [];
  const names = (group: SecurityGroup) => [...(group.IpPermissions ?? []), ...(group.IpPermissionsEgress ?? [])]
    .flatMap((permission) => permission.UserIdGroupPairs ?? []).map((pair) => pair.GroupId).filter((id) => id !== group.GroupId);
  while (left.length > 0) {
    const named = new Set(left.flatMap(names));
    // A cycle of references has no such group: then any, and the next run finishes after EC2 says which.
    const next = left.find((group) => !named.has(group.GroupId)) ?? left[0]!;
    ordered.push(next);
    left.splice(left.indexOf(next), 1);
  }
  return ordered;
}

/** Where drills leave things: a region, the cluster their verify tasks run in, and whether the region-loss drill builds its network there. */
interface Place {
  region: string;
  cluster: string;
  drillNetworks: boolean;
}

/** One sweep over every place: its settings, and what it found and did. */
interface Sweep {
  olderThanMs: number;
  dryRun: boolean;
  includeKept: boolean;
  now: number;
  /** `dms-drill-<stack>-`: a drill instance's name (and a region-loss drill's network's and subnet group's). */
  prefix: string;
  /** `dms-<stack>-dr-drill-dms-drill-<stack>-`: a region-loss drill's secret's name. */
  secretPrefix: string;
  /** The stack's primary and replica: never deleted, whatever their tags. */
  ownDatabases: Set<string>;
  progress: Progress;
  /** region, kind, id, age, action: one row per task, instance, network or secret found. */
  rows: (string | number)[][];
  failures: number;
  /** Networks whose teardown waits on something EC2 is still deleting: the next run finishes them. */
  unfinished: number;
}

async function sweepPlace(ctx: OpsContext, sweep: Sweep, { region, cluster, drillNetworks }: Place): Promise<void> {
  const clients = ctx.aws(region);
  /** A stop or delete: sent, or under --dry-run printed (undefined). */
  const change = <C extends { input: object }>(service: string, command: C, send: (command: C) => Promise<unknown>) => sendChange(ctx, sweep.dryRun, { service, command, send });
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
      const sent = await change('ecs', new StopTaskCommand({ cluster, task: task.taskArn, reason: 'drill-sweep: verify task outlived its drill' }), (command) => clients.ecs().send(command));
      sweep.rows.push([region, 'ecs task', id, age.text, sent ? 'stopped' : 'would stop (dry run)']);
    } catch (error) {
      sweep.failures++;
      sweep.rows.push([region, 'ecs task', id, age.text, `FAILED to stop: ${describeError(error)}`]);
    }
  }

  sweep.progress.step(`listing DB instances in ${region} tagged ${DRILL_TAG}=true`);
  const instances = await allInstances(clients.rds());
  const drills = instances.filter(
    (instance) => tagValue(instance.TagList, DRILL_TAG) === 'true' && instance.DBInstanceIdentifier?.startsWith(sweep.prefix) && !sweep.ownDatabases.has(instance.DBInstanceIdentifier),
  );
  for (const instance of drills) {
    const id = instance.DBInstanceIdentifier ?? '?';
    const age = ageOf(startedAt(instance.TagList) ?? instance.InstanceCreateTime);
    let action: string;
    if (instance.DBInstanceStatus === 'deleting') action = 'already deleting';
    else if (age.ms < sweep.olderThanMs) action = 'left (younger than --older-than)';
    else if (tagValue(instance.TagList, DRILL_KEEP_TAG) === 'true' && !sweep.includeKept) action = 'left (kept with --keep; --include-kept deletes it)';
    else {
      try {
        const sent = await change('rds', new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }), (command) => clients.rds().send(command));
        action = sent ? 'deletion requested' : 'would delete (dry run)';
      } catch (error) {
        sweep.failures++;
        action = `FAILED to delete: ${describeError(error)}`;
      }
    }
    sweep.rows.push([region, 'rds instance', id, age.text, action]);
  }
  if (!drillNetworks) return;

  // A region-loss drill's network and secret outlive a killed drill, and go only once its instance
  // (which lives in that network and is reached with that secret) is gone, deleting included.
  const instanceIds = new Set(instances.map((instance) => instance.DBInstanceIdentifier));
  const ec2 = clients.ec2();

  sweep.progress.step(`listing VPCs in ${region} tagged ${DRILL_KIND_TAG.Key}=${DRILL_KIND_TAG.Value}`);
  const vpcs = (await ec2.send(new DescribeVpcsCommand({
    Filters: [{ Name: `tag:${DRILL_KIND_TAG.Key}`, Values: [DRILL_KIND_TAG.Value] }, { Name: 'tag:Name', Values: [`${sweep.prefix}*`] }],
  }))).Vpcs ?? [];
  for (const vpc of vpcs) {
    const drillId = tagValue(vpc.Tags, 'Name');
    // EC2's `tag:<key>` filter takes `*` wildcards (EC2 API Reference, Filter); the stack's own name is checked here too.
    if (!vpc.VpcId || !drillId?.startsWith(sweep.prefix) || tagValue(vpc.Tags, DRILL_KIND_TAG.Key) !== DRILL_KIND_TAG.Value) continue;
    const age = ageOf(startedAt(vpc.Tags));
    const row = (action: string) => sweep.rows.push([region, 'drill network', `${drillId} (${vpc.VpcId})`, age.text, action]);
    if (age.ms < sweep.olderThanMs) {
      row('left (younger than --older-than)');
      continue;
    }
    if (instanceIds.has(drillId)) {
      row(`left while its instance ${drillId} exists: run drill-sweep again once it is deleted`);
      continue;
    }
    const inVpc = [{ Name: 'vpc-id', Values: [vpc.VpcId] }];
    try {
      // Newest first, as the drill builds it: endpoints (their interfaces hold the groups and subnets), the DB subnet group, groups, subnets, the VPC.
      const endpointIds = ((await ec2.send(new DescribeVpcEndpointsCommand({ Filters: inVpc }))).VpcEndpoints ?? [])
        .filter((endpoint) => !['deleting', 'deleted'].includes((endpoint.State ?? '').toLowerCase()))
        .map((endpoint) => endpoint.VpcEndpointId!);
      if (endpointIds.length > 0) await change('ec2', deleteEndpoints(endpointIds), (command) => ec2.send(command));
      await change('rds', deleteDbSubnetGroup(drillId), (command) => clients.rds().send(command)).catch((error: unknown) => {
        if (awsErrorName(error) !== 'DBSubnetGroupNotFoundFault') throw error;
      });
      const groups = referencingFirst(((await ec2.send(new DescribeSecurityGroupsCommand({ Filters: inVpc }))).SecurityGroups ?? []).filter((group) => group.GroupName !== 'default'));
      for (const group of groups) await change('ec2', deleteSecurityGroup(group.GroupId!), (command) => ec2.send(command));
      const subnets = (await ec2.send(new DescribeSubnetsCommand({ Filters: inVpc }))).Subnets ?? [];
      for (const subnet of subnets) await change('ec2', deleteSubnet(subnet.SubnetId!), (command) => ec2.send(command));
      const sent = await change('ec2', deleteVpc(vpc.VpcId), (command) => ec2.send(command));
      row(sent ? `deleted (${endpointIds.length} endpoint(s), ${groups.length} security group(s), ${subnets.length} subnet(s), its DB subnet group)` : 'would delete (dry run)');
    } catch (error) {
      if (isHeldByADependency(error)) {
        sweep.unfinished++;
        row(`deleting: EC2 is still releasing its endpoints' interfaces (${describeError(error)}); run drill-sweep again in a few minutes`);
      } else {
        sweep.failures++;
        row(`FAILED to delete: ${describeError(error)}`);
      }
    }
  }

  sweep.progress.step(`listing secrets in ${region} named ${sweep.secretPrefix}…`);
  for (const secret of await secretsNamed(clients.secrets(), sweep.secretPrefix)) {
    const drillId = secret.Name!.slice(secret.Name!.indexOf(sweep.prefix));
    const age = ageOf(startedAt(secret.Tags) ?? secret.CreatedDate);
    const row = (action: string) => sweep.rows.push([region, 'drill secret', secret.Name!, age.text, action]);
    if (age.ms < sweep.olderThanMs) row('left (younger than --older-than)');
    else if (instanceIds.has(drillId)) row(`left while its instance ${drillId} exists`);
    else {
      try {
        const sent = await change('secretsmanager', deleteDrillSecret(secret.ARN ?? secret.Name!), (command) => clients.secrets().send(command));
        row(sent ? 'deleted (without recovery: it held the deleted copy\'s password)' : 'would delete (dry run)');
      } catch (error) {
        sweep.failures++;
        row(`FAILED to delete: ${describeError(error)}`);
      }
    }
  }
}

export const drillSweep = defineCommand({
  name: 'drill-sweep',
  summary: 'find DR drill leftovers of the stack by their dms:drill tags: stop verify tasks, delete drill instances, a region-loss drill\'s network and secret',
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
    'except --keep ones unless --include-kept. In the DR region it then tears down each region-loss drill network',
    '(a VPC tagged dms:drill-kind=region-loss, named dms-drill-<stack>-…) older than --older-than whose instance is gone:',
    'its VPC endpoints, DB subnet group, security groups, subnets and VPC, and deletes the drill\'s secret',
    '(dms-<stack>-dr-drill-…) without recovery. A network left while its instance is still deleting, or whose',
    'endpoints EC2 is still releasing, is finished by the next run.',
    'Exit 1 when a stop or delete failed, or a network is not gone yet.',
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
      { region: outputs.region, cluster: outputs.clusterName, drillNetworks: false },
      ...(drRegion && drCluster && drRegion !== outputs.region ? [{ region: drRegion, cluster: drCluster, drillNetworks: true }] : []),
    ];
    const prefix = `dms-drill-${stackShortName(options.stack).toLowerCase()}-`;
    const sweep: Sweep = {
      olderThanMs,
      dryRun: options['dry-run'],
      includeKept: options['include-kept'],
      now: ctx.clock.now().getTime(),
      prefix,
      secretPrefix: drillSecretName(options.stack, prefix),
      ownDatabases: new Set([outputs.dbInstanceIdentifier, optionalOutput(loaded, 'dbReplicaIdentifier')].filter((id) => id !== undefined)),
      progress: new Progress(ctx),
      rows: [],
      failures: 0,
      unfinished: 0,
    };
    for (const place of places) await sweepPlace(ctx, sweep, place);

    const found = (kind: string) => sweep.rows.filter((row) => row[1] === kind).length;
    if (sweep.rows.length > 0) printTable(ctx, ['region', 'kind', 'id', 'age', 'action'], sweep.rows);
    printSummary(ctx, `drill-sweep: ${options.stack}`, [
      ['regions', places.map((place) => place.region).join(', ')],
      ['older than', formatDuration(olderThanMs)],
      ['found', `${found('rds instance')} drill instance(s), ${found('ecs task')} verify task(s), ${found('drill network')} drill network(s), ${found('drill secret')} drill secret(s)`],
      ['result', sweep.failures > 0 ? `FAIL: ${sweep.failures} could not be stopped or deleted`
        : sweep.unfinished > 0 ? `NOT FINISHED: ${sweep.unfinished} network(s) still being released; run drill-sweep again in a few minutes`
          : sweep.dryRun ? 'dry run: nothing sent' : 'done'],
    ]);
    return sweep.failures > 0 || sweep.unfinished > 0 ? 1 : 0;
  },
});
