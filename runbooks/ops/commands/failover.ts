// Failover to the read replica, as one command: promote it, point the API at it, prove it serves.
//
// The API gets its database endpoints from its task definition's environment (DATABASE_URL,
// DATABASE_REPLICA_URLS, set by infra/service.ts). The command registers a new revision of the
// service's running task definition with the promoted instance as DATABASE_URL and no replica, and
// moves the service to it, rather than introducing an SSM parameter the tasks read at start: the
// change is then a revision anyone can read in ECS (`describe-task-definition`), the deployment
// circuit breaker rolls back a revision that does not start, `rollback` can return to the previous
// one, and nothing new sits in the request path of a normal start. The stack's config is then made
// to agree (see the next steps the command prints), or the next `pulumi up` registers the old
// endpoints again: the report prints the `dms:database.failovers` change that makes it durable.
import {
  DescribeDBInstancesCommand,
  PromoteReadReplicaCommand,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import {
  DescribeTaskDefinitionCommand,
  RegisterTaskDefinitionCommand,
  type ContainerDefinition,
  type ECSClient,
  type RegisterTaskDefinitionCommandInput,
  type Tag,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import { instanceIdentifier } from '../../../infra/database.js';
import { awsErrorName } from '../lib/aws.js';
import { defineCommand } from '../lib/command.js';
import type { OpsContext } from '../lib/context.js';
import { dryRunOption, sendChange } from '../lib/dry-run.js';
import { deployAndSettle, describeService, familyRevisionOf, rolloutTimeoutMs, timeoutOption, type ServiceRef } from '../lib/ecs.js';
import { describeError, OpsError } from '../lib/errors.js';
import { loadOutputs, optionalOutput, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary, type SummaryRow } from '../lib/report.js';
import { parseDuration } from '../lib/time.js';
import { waitFor } from '../lib/wait.js';

export const PROMOTION_POLL_MS = 30_000;
/** RDS shows the instance as it was for a moment after PromoteReadReplica is accepted. */
const PROMOTION_SETTLE_MS = 60_000;
const READY_TIMEOUT_MS = 10_000;
/** What RDS gives a promoted instance when the primary cannot be read (its own default is 1 day). */
export const FALLBACK_BACKUP_RETENTION_DAYS = 7;

/** One step of the failover and how it ended: the report lists every step, done or not. */
interface Step {
  name: string;
  state: 'done' | 'skipped' | 'FAILED' | 'not started' | 'dry run';
  detail: string;
}

async function describeInstance(rds: RDSClient, identifier: string): Promise<DBInstance | undefined> {
  try {
    return (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }))).DBInstances?.[0];
  } catch (error) {
    if (awsErrorName(error) === 'DBInstanceNotFoundFault' || awsErrorName(error) === 'DBInstanceNotFound') return undefined;
    throw error;
  }
}

/** `postgres://user@host:port/db?…` with the host and port replaced; user, database and TLS settings kept. */
export function repointUrl(url: string, host: string, port: number): string {
  const match = /^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)([^/:?#]+)(?::\d+)?([/?#].*)?$/.exec(url);
  if (!match) throw new OpsError('DATABASE_URL of the running task definition is not a postgres:// URL with a host');
  return `${match[1]}${host}:${port}${match[3] ?? ''}`;
}

const environmentValue = (container: ContainerDefinition, name: string) => container.environment?.find((variable) => variable.name === name)?.value;

/** The container that carries DATABASE_URL (the API's only container). */
function apiContainer(definition: TaskDefinition): ContainerDefinition {
  const containers = (definition.containerDefinitions ?? []).filter((container) => environmentValue(container, 'DATABASE_URL') !== undefined);
  if (containers.length !== 1) throw new OpsError(`task definition ${definition.taskDefinitionArn} has ${containers.length} containers with DATABASE_URL; expected one`);
  return containers[0]!;
}

/** The running revision with the database endpoints replaced: everything else is registered as it was. */
function repointedRevision(definition: TaskDefinition, tags: Tag[] | undefined, host: string, port: number): RegisterTaskDefinitionCommandInput {
  const container = apiContainer(definition);
  const databaseUrl = repointUrl(environmentValue(container, 'DATABASE_URL') ?? '', host, port);
  const environment = (container.environment ?? []).map((variable) => {
    if (variable.name === 'DATABASE_URL') return { name: variable.name, value: databaseUrl };
    // The old replica is the new primary; there is no replica until one is created again.
    if (variable.name === 'DATABASE_REPLICA_URLS') return { name: variable.name, value: '' };
    return variable;
  });
  const input: RegisterTaskDefinitionCommandInput = {
    family: definition.family,
    taskRoleArn: definition.taskRoleArn,
    executionRoleArn: definition.executionRoleArn,
    networkMode: definition.networkMode,
    containerDefinitions: (definition.containerDefinitions ?? []).map((candidate) => (candidate === container ? { ...candidate, environment } : candidate)),
    volumes: definition.volumes,
    placementConstraints: definition.placementConstraints,
    requiresCompatibilities: definition.requiresCompatibilities,
    cpu: definition.cpu,
    memory: definition.memory,
    pidMode: definition.pidMode,
    ipcMode: definition.ipcMode,
    proxyConfiguration: definition.proxyConfiguration,
    ephemeralStorage: definition.ephemeralStorage,
    runtimePlatform: definition.runtimePlatform,
    ...(tags && tags.length > 0 ? { tags } : {}),
  };
  // Fields the running revision does not set stay unset (and out of the dry run's printout).
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined)) as RegisterTaskDefinitionCommandInput;
}

/** Already pointing at `host` with no replica: a re-run after the deployment step has nothing to change. */
function alreadyRepointed(definition: TaskDefinition, host: string, port: number): boolean {
  const container = apiContainer(definition);
  const url = environmentValue(container, 'DATABASE_URL') ?? '';
  return url === repointUrl(url, host, port) && (environmentValue(container, 'DATABASE_REPLICA_URLS') ?? '') === '';
}

async function readiness(apiUrl: string): Promise<{ ok: boolean; detail: string }> {
  const response = await fetch(`${apiUrl}/health/ready`, { signal: AbortSignal.timeout(READY_TIMEOUT_MS) });
  const text = await response.text();
  let body: { status?: string; dependencies?: Record<string, string> } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not the API's JSON (a load balancer error page): the status line says enough.
  }
  const dependencies = body.dependencies ? Object.entries(body.dependencies).map(([name, state]) => `${name} ${state}`).join(', ') : 'no dependencies reported';
  // The primary probe fails on a standby in recovery: `primary up` means it accepts writes.
  const ok = response.status === 200 && body.dependencies?.['primary'] === 'up' && body.dependencies['primary-pool'] === 'up';
  return { ok, detail: `HTTP ${response.status} ${body.status ?? ''} (${dependencies})`.replace('  ', ' ') };
}

/**
 * What makes the failover durable: the stack's `dms:database.failovers` raised by one makes the
 * program declare the promoted instance as the primary and a new replica of it (infra/database.ts).
 */
function nextSteps(stack: string, failovers: number, primary: string, replica: string, endpoint: string): SummaryRow[] {
  const newReplica = instanceIdentifier(`dms-${stack}`, failovers + 2);
  return [
    ['next 1', `no \`pulumi up\` or \`pulumi refresh\` of ${stack} before next 2: with dms:database.failovers at ${failovers} the program still names ${primary} as the primary and ${replica} as its replica, and would put the old endpoints back`],
    [
      'next 2',
      `make it durable, in working hours with the backup engineer: \`pulumi config set --path dms:database.failovers ${failovers + 1} -s ${stack}\` and commit the stack file; \`npm run plan -- --stack ${stack}\` must show ${replica} as the primary (${endpoint}) and a new replica ${newReplica}; then \`pulumi up --refresh -s ${stack}\` (the refresh records the promotion, so the update does not promote ${replica} again)`,
    ],
    ['next 3', `until next 2 is done rds-replica-missing stays in ALARM (P2), reports are served by the primary and the scheduled jobs still connect to ${primary}`],
    ['next 4', `keep ${primary} until the incident review is closed: after next 2 the stack forgets it without deleting it; record the replica's lag at promotion as the data lost`],
  ];
}

export const failover = defineCommand({
  name: 'failover',
  summary: 'promote the read replica, point the API at it (new task definition revision), and verify it serves and accepts writes',
  options: {
    force: { type: 'boolean', description: 'fail over even though the primary is available (it loses whatever the replica had not received)' },
    'promotion-timeout': { type: 'string', valueName: 'duration', description: 'how long to wait for the promoted instance to be available (default 1h)' },
    timeout: timeoutOption,
    'dry-run': dryRunOption,
  },
  details: [
    'Steps: DescribeDBInstances of the primary and the replica (refused: no replica in the stack or the replica is not',
    'available; a primary that is available, unless --force); PromoteReadReplica with the primary\'s backup retention',
    `(${FALLBACK_BACKUP_RETENTION_DAYS} days when the primary cannot be read), then DescribeDBInstances every 30 s until it is available and`,
    'no longer a replica; DescribeServices and DescribeTaskDefinition of the running revision, RegisterTaskDefinition of',
    'the same revision with DATABASE_URL on the promoted endpoint (user, database, TLS kept) and DATABASE_REPLICA_URLS',
    'empty, UpdateService to it and a wait until that deployment is COMPLETED; GET <apiUrl>/health/ready must answer',
    "200 with the primary up (the API's primary probe fails on a standby, so this proves it accepts writes).",
    'A re-run resumes: an instance already promoted and a service already on the endpoint are not changed again.',
    'Every step is in the report, done or not; a failed step exits 1 and says what is left to do.',
    'Example: npm run ops -- failover --stack production --dry-run',
  ],
  async run({ options }, ctx) {
    const promotionTimeoutMs = parseDuration(options['promotion-timeout'] ?? '1h', 'promotion-timeout');
    const timeoutMs = rolloutTimeoutMs(options.timeout);
    const loaded = await loadOutputs(options.stack, options.outputs, ctx);
    const outputs = requireOutputs(loaded, ['region', 'apiUrl', 'clusterName', 'serviceName', 'dbInstanceIdentifier']);
    const replicaId = optionalOutput(loaded, 'dbReplicaIdentifier');
    // Stacks last updated before the output existed have had no failover the program knows of.
    const failovers = optionalOutput(loaded, 'dbFailovers') ?? 0;
    if (replicaId === undefined) throw new OpsError(`stack ${options.stack} has no read replica (no dbReplicaIdentifier output): nothing to fail over to`);
    const dryRun = options['dry-run'];
    const clients = ctx.aws(outputs.region);
    const rds = clients.rds();
    const ecs = clients.ecs();
    const ref: ServiceRef = { cluster: outputs.clusterName, service: outputs.serviceName };
    const progress = new Progress(ctx);
    const steps: Step[] = ['check', 'promote', 'wait for the promoted instance', 'repoint the service', 'verify'].map((name) => ({ name, state: 'not started', detail: '' }));
    const step = (name: string) => steps.find((candidate) => candidate.name === name)!;
    let endpoint = '';

    const report = (result: string): void => {
      printSummary(ctx, `failover: ${options.stack}`, [
        ['primary', outputs.dbInstanceIdentifier],
        ['replica', replicaId],
        ...steps.map((entry): SummaryRow => [entry.name, `${entry.state}${entry.detail ? `: ${entry.detail}` : ''}`]),
        ['result', result],
        ...(endpoint && !dryRun ? nextSteps(options.stack, failovers, outputs.dbInstanceIdentifier, replicaId, endpoint) : []),
        ...(dryRun ? [['dry run', 'the calls above were printed, none was sent'] as const] : []),
      ]);
    };

    let current = 'check';
    try {
      const primary = await describeInstance(rds, outputs.dbInstanceIdentifier);
      let replica = await describeInstance(rds, replicaId);
      if (!replica) throw new OpsError(`replica ${replicaId} does not exist: nothing to fail over to`);
      const promoted = !replica.ReadReplicaSourceDBInstanceIdentifier;
      if (!promoted && replica.DBInstanceStatus !== 'available') throw new OpsError(`replica ${replicaId} is ${replica.DBInstanceStatus ?? 'in an unknown state'}, not available: it cannot be promoted now`);
      if (!promoted && primary?.DBInstanceStatus === 'available' && !options.force) {
        throw new OpsError(
          `primary ${outputs.dbInstanceIdentifier} is available: a failover would lose what the replica has not received. Follow runbooks/database.md#connectivity-loss; pass --force only if the primary must be abandoned anyway`,
        );
      }
      const retention = primary?.BackupRetentionPeriod ?? FALLBACK_BACKUP_RETENTION_DAYS;
      step('check').state = 'done';
      step('check').detail = `primary ${primary ? primary.DBInstanceStatus : 'not found'}; replica ${replica.DBInstanceStatus}${promoted ? ', already promoted' : `, replicating from ${replica.ReadReplicaSourceDBInstanceIdentifier}`}`;

      current = 'promote';
      if (promoted) {
        step('promote').state = 'skipped';
        step('promote').detail = `${replicaId} is already a standalone instance`;
      } else {
        progress.step(`promoting ${replicaId} (backup retention ${retention} days)`);
        const sent = await sendChange(ctx, dryRun, {
          service: 'rds',
          command: new PromoteReadReplicaCommand({ DBInstanceIdentifier: replicaId, BackupRetentionPeriod: retention }),
          send: (command) => rds.send(command),
          note: 'from here on the replica is a standalone instance; replication from the primary ends',
        });
        step('promote').state = sent ? 'done' : 'dry run';
        step('promote').detail = `PromoteReadReplica ${replicaId}, backup retention ${retention} days${primary ? '' : ' (primary unreadable: default)'}`;
      }

      current = 'wait for the promoted instance';
      if (dryRun) {
        step(current).state = 'dry run';
      } else {
        replica = await waitFor(ctx, progress, {
          what: `${replicaId} to be a standalone available instance`,
          intervalMs: PROMOTION_POLL_MS,
          timeoutMs: promotionTimeoutMs,
          initialDelayMs: promoted ? 0 : PROMOTION_SETTLE_MS,
          check: async () => {
            const instance = await describeInstance(rds, replicaId);
            if (!instance) throw new OpsError(`${replicaId} disappeared while it was being promoted`);
            if (instance.DBInstanceStatus === 'available' && !instance.ReadReplicaSourceDBInstanceIdentifier) return { done: true, value: instance };
            return { done: false, status: `${instance.DBInstanceStatus ?? 'unknown'}${instance.ReadReplicaSourceDBInstanceIdentifier ? ', still a replica' : ''}` };
          },
        });
        step(current).state = 'done';
      }
      const host = replica.Endpoint?.Address;
      const port = replica.Endpoint?.Port;
      if (!host || !port) throw new OpsError(`${replicaId} reports no endpoint`);
      endpoint = `${host}:${port}`;
      if (!dryRun) step(current).detail = `${replicaId} available at ${endpoint}`;

      current = 'repoint the service';
      const service = await describeService(ecs, ref);
      const described = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: service.taskDefinition, include: ['TAGS'] }));
      const running = described.taskDefinition;
      if (!running?.taskDefinitionArn) throw new OpsError(`DescribeTaskDefinition of ${service.taskDefinition} returned nothing`);
      const { family, revision } = familyRevisionOf(running.taskDefinitionArn);
      if (alreadyRepointed(running, host, port)) {
        step(current).state = 'skipped';
        step(current).detail = `${family}:${revision} already uses ${endpoint} with no replica`;
      } else {
        progress.step(`registering ${family} with DATABASE_URL on ${endpoint} and no replica`);
        const registered = await sendChange(ctx, dryRun, {
          service: 'ecs',
          command: new RegisterTaskDefinitionCommand(repointedRevision(running, described.tags, host, port)),
          send: (command) => ecs.send(command),
          note: `${family}:${revision} with DATABASE_URL on ${endpoint} and DATABASE_REPLICA_URLS empty`,
        });
        const target = registered?.response.taskDefinition?.taskDefinitionArn;
        if (registered && !target) throw new OpsError('RegisterTaskDefinition returned no task definition ARN');
        const next = target ? familyRevisionOf(target) : { family, revision: Number.NaN };
        const deployment = await deployAndSettle(ctx, progress, ecs, ref, { taskDefinition: target ?? `${family}:<new revision>` }, timeoutMs, dryRun);
        step(current).state = deployment ? 'done' : 'dry run';
        step(current).detail = deployment
          ? `${family}:${revision} -> ${next.family}:${next.revision}, deployment ${deployment.id ?? ''} COMPLETED with ${deployment.runningCount ?? 0} task(s)`
          : `${family}:${revision} -> a new revision on ${endpoint}`;
      }

      current = 'verify';
      if (dryRun) {
        step(current).state = 'dry run';
        step(current).detail = `would GET ${outputs.apiUrl}/health/ready`;
        report('dry run: nothing changed');
        return 0;
      }
      const ready = await readiness(outputs.apiUrl);
      if (!ready.ok) throw new OpsError(`${outputs.apiUrl}/health/ready: ${ready.detail}`);
      step(current).state = 'done';
      step(current).detail = `${outputs.apiUrl}/health/ready ${ready.detail}`;
      report(`the API serves from ${replicaId} and it accepts writes`);
      return 0;
    } catch (error) {
      step(current).state = 'FAILED';
      step(current).detail = describeError(error);
      report(`FAILED at "${current}": fix the cause, then run failover again (it resumes; steps already done are skipped)`);
      ctx.io.err(`error: failover stopped at "${current}": ${describeError(error)}`);
      return 1;
    }
  },
});
