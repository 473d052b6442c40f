import type { ECSClient } from '@aws-sdk/client-ecs';
import { DBInstanceNotFoundFault, InvalidDBInstanceStateFault, type DBInstance, type RDSClient } from '@aws-sdk/client-rds';
import type { AwsClients } from '../lib/aws.js';
import { defineCommand, parseInteger, stackShortName } from '../lib/command.js';
import type { OpsContext } from '../lib/context.js';
import {
  alignDrillInstance,
  deleteDrillInstance,
  describeInstance,
  describeNamedSnapshot,
  describeVerifyTask,
  describeVerifyTaskDefinition,
  type Drill,
  DRILL_TASK_POLL_MS,
  DRILL_VERIFY_TIMEOUT_MS,
  drillDatabaseUrl,
  drillPermissions,
  drillPlan,
  type DrillSource,
  getSecret,
  keptMonitoring,
  printPlan,
  readVerifyLog,
  restoreCommand,
  rowCountsOf,
  runVerifyTask,
  sendRestore,
  stopVerifyTask,
  type VerifyContainer,
  verifyContainerOf,
  verifyDatabaseUser,
  verifyLogStream,
  verifyOutputOf,
  waitForDrillInstance,
} from '../lib/drill.js';
import { describeError, OpsError, UsageError } from '../lib/errors.js';
import { loadOutputs, optionalOutput, requireOutputs } from '../lib/outputs.js';
import { simulatePermissions } from '../lib/permissions.js';
import { latestAutomatedSnapshot } from '../lib/rds.js';
import { Progress, printSummary, type SummaryRow } from '../lib/report.js';
import { compactUtcMinute, formatDuration, isoSeconds, parseDuration } from '../lib/time.js';
import { waitFor } from '../lib/wait.js';
import { DATABASE_PORT } from '../../../infra/database.js';
import { regionDrillPlan, type RegionDrill } from '../lib/region-drill.js';
import { printRegionDrillPlan, RegionLossDrillRun } from './dr-drill-region-loss.js';

/** Clean-up waits this long in all for an instance RDS will not delete yet (still creating, backing up). */
const DELETE_RETRY_MS = 30_000;
const DELETE_ATTEMPTS = 40;
/** Log events can reach CloudWatch a little after the task stops. */
const LOG_READ_ATTEMPTS = 3;
const LOG_READ_RETRY_MS = 5_000;

/** A restored, resolved source: what was restored and the moment its data is from. */
interface ResolvedSource {
  description: string;
  snapshotIdentifier: string;
  dataAsOf: Date;
}

interface VerifyResult {
  exitCode: number | undefined;
  stoppedReason: string | undefined;
  output: Record<string, unknown> | undefined;
  outputNote: string;
}

function rdsInstanceIdProblem(id: string): string | undefined {
  if (id.length > 63) return 'is longer than 63 characters';
  if (!/^[a-z][a-z0-9-]*$/.test(id)) return 'may hold only lower-case letters, digits and hyphens';
  if (/--|-$/.test(id)) return 'may not hold two hyphens in a row or end with one';
  return undefined;
}

function parsePointInTime(text: string, now: Date): Date {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text.trim())) {
    throw new UsageError(`--point-in-time must be ISO 8601 with a zone, e.g. 2025-03-01T04:30:00Z, not "${text}"`);
  }
  const time = new Date(text.trim());
  if (Number.isNaN(time.getTime())) throw new UsageError(`--point-in-time "${text}" is not a real date`);
  if (time > now) throw new UsageError(`--point-in-time ${isoSeconds(time)} is in the future (now ${isoSeconds(now)})`);
  return time;
}

class DrillRun {
  private readonly clients: AwsClients;
  private readonly rds: RDSClient;
  private readonly ecs: ECSClient;
  private readonly progress: Progress;
  private readonly rows: SummaryRow[] = [];
  /** The verify task once RunTask started it, until it is seen STOPPED or stopped by the clean-up. */
  private runningTask: string | undefined;

  constructor(
    private readonly drill: Drill,
    private readonly ctx: OpsContext,
  ) {
    this.clients = ctx.aws(drill.outputs.region);
    this.rds = this.clients.rds();
    this.ecs = this.clients.ecs();
    this.progress = new Progress(ctx);
  }

  /** Checks before anything is created: a failure here leaves nothing behind. */
  private async preflight(): Promise<{ primary: DBInstance; source: ResolvedSource; container: VerifyContainer; passRoles: string[] }> {
    const { outputs } = this.drill;
    this.progress.step(`reading primary ${outputs.dbInstanceIdentifier}`);
    const primary = (await this.rds.send(describeInstance(outputs.dbInstanceIdentifier))).DBInstances?.[0];
    if (!primary) throw new OpsError(`primary ${outputs.dbInstanceIdentifier} not found`);
    const source = await this.resolveSource(primary);
    this.progress.step(`reading verify task definition ${outputs.drillVerifyTaskDefinitionArn}`);
    const definition = (await this.ecs.send(describeVerifyTaskDefinition(this.drill))).taskDefinition;
    const container = verifyContainerOf(definition?.containerDefinitions ?? [], outputs.drillVerifyTaskDefinitionArn);
    const passRoles = [definition?.executionRoleArn, definition?.taskRoleArn].filter((role): role is string => role !== undefined);
    return { primary, source, container, passRoles };
  }

  /** The secrets the drill will read: the verify user's password secret, and the master secret when needed. */
  private secretsToRead(primary: DBInstance, container: VerifyContainer): string[] {
    const masterSecret = primary.MasterUserSecret?.SecretArn;
    const appLogin = verifyDatabaseUser(container) !== primary.MasterUsername;
    const passwordSecret = appLogin ? container.passwordSecret?.split(':').slice(0, 7).join(':') : undefined;
    return [passwordSecret, !appLogin || this.drill.keep ? masterSecret : undefined].filter((arn): arn is string => arn !== undefined);
  }

  /** Simulates every later call for the operator's identity; a denied one stops the drill before anything is created. */
  private async checkPermissions(primary: DBInstance, container: VerifyContainer, passRoles: string[]): Promise<void> {
    const required = drillPermissions(this.drill, { secrets: this.secretsToRead(primary, container), passRoles, container });
    this.progress.step(`checking your permissions for ${required.length} later calls (iam SimulatePrincipalPolicy)`);
    const report = await simulatePermissions(this.clients.sts(), this.clients.iam(), required);
    if (report.denied.length > 0) {
      const denied = report.denied.map((entry) => `${entry.action} on ${entry.resource} (${entry.decision})`).join('; ');
      throw new OpsError(
        `${report.principal} may not make every call of the drill, which would fail after the restore: ${denied}. Grant them, or pass --skip-permission-check if a condition the simulation cannot see allows them`,
      );
    }
  }

  private checkEncryption(what: string, encrypted: boolean | undefined, kmsKeyId: string | undefined): void {
    // The restored instance inherits this key (neither restore call takes one): PHI must stay under the stack's key.
    if (!encrypted) throw new OpsError(`${what} is not encrypted; refusing to restore PHI from it`);
    if (kmsKeyId !== this.drill.outputs.dbKmsKeyArn) {
      throw new OpsError(`${what} is encrypted with ${kmsKeyId ?? 'an unknown key'}, not the stack's dbKmsKeyArn ${this.drill.outputs.dbKmsKeyArn}`);
    }
  }

  private async resolveSource(primary: DBInstance): Promise<ResolvedSource> {
    const { source, outputs } = this.drill;
    if (source.kind === 'point-in-time') {
      this.checkEncryption(`primary ${outputs.dbInstanceIdentifier}`, primary.StorageEncrypted, primary.KmsKeyId);
      const latest = primary.LatestRestorableTime;
      if (source.restoreTime === 'latest') {
        if (!latest) throw new OpsError(`primary ${outputs.dbInstanceIdentifier} reports no latest restorable time: are its automated backups on?`);
        // RDS restores to the latest restorable time as of the request, at or a little after this one.
        return { description: `latest restorable time of ${outputs.dbInstanceIdentifier} (${isoSeconds(latest)} when read)`, snapshotIdentifier: '', dataAsOf: latest };
      }
      if (latest && source.restoreTime > latest) {
        throw new UsageError(`--point-in-time ${isoSeconds(source.restoreTime)} is after the latest restorable time ${isoSeconds(latest)}`);
      }
      return { description: `point in time ${isoSeconds(source.restoreTime)} of ${outputs.dbInstanceIdentifier}`, snapshotIdentifier: '', dataAsOf: source.restoreTime };
    }
    this.progress.step(source.snapshotIdentifier ? `reading snapshot ${source.snapshotIdentifier}` : `finding the newest automated snapshot of ${outputs.dbInstanceIdentifier}`);
    const snapshot = source.snapshotIdentifier
      ? (await this.rds.send(describeNamedSnapshot(source.snapshotIdentifier))).DBSnapshots?.[0]
      : await latestAutomatedSnapshot(this.rds, outputs.dbInstanceIdentifier);
    if (!snapshot?.DBSnapshotIdentifier || !snapshot.SnapshotCreateTime) {
      throw new OpsError(source.snapshotIdentifier ? `snapshot ${source.snapshotIdentifier} not found` : `${outputs.dbInstanceIdentifier} has no available automated snapshot`);
    }
    if (snapshot.Status !== 'available') throw new OpsError(`snapshot ${snapshot.DBSnapshotIdentifier} is ${snapshot.Status ?? 'in an unknown state'}, not available`);
    this.checkEncryption(`snapshot ${snapshot.DBSnapshotIdentifier}`, snapshot.Encrypted, snapshot.KmsKeyId);
    // The data's time: SnapshotCreateTime is when this copy was made (a copied snapshot's is the
    // copy's); SnapshotDatabaseTime is the newest transaction in it.
    const dataAsOf = snapshot.SnapshotDatabaseTime ?? snapshot.OriginalSnapshotCreateTime ?? snapshot.SnapshotCreateTime;
    return {
      description: `snapshot ${snapshot.DBSnapshotIdentifier} (${snapshot.SnapshotType ?? 'manual'}, taken ${isoSeconds(snapshot.SnapshotCreateTime)}, data as of ${isoSeconds(dataAsOf)})`,
      snapshotIdentifier: snapshot.DBSnapshotIdentifier,
      dataAsOf,
    };
  }

  private waitAvailable(): Promise<DBInstance> {
    return waitForDrillInstance(this.ctx, this.progress, this.rds, this.drill.drillId, this.drill.availableTimeoutMs);
  }

  /**
   * A secret's current value as ECS injects it: `arn…:secret:name-AbCdEf` is the whole string,
   * `arn…:secret:name-AbCdEf:password::` one key of its JSON.
   */
  private async readPassword(valueFrom: string): Promise<string> {
    const parts = valueFrom.split(':');
    const secretArn = parts.slice(0, 7).join(':');
    const jsonKey = parts[7];
    const secret = await this.clients.secrets().send(getSecret(secretArn));
    let password: unknown = secret.SecretString;
    if (jsonKey) {
      try {
        password = (JSON.parse(secret.SecretString ?? '') as Record<string, unknown>)[jsonKey];
      } catch {
        password = undefined;
      }
    }
    if (typeof password !== 'string' || password === '') throw new OpsError(`secret ${secretArn} has no ${jsonKey ? `"${jsonKey}" field` : 'value'}`);
    return password;
  }

  /**
   * The restored copy has the passwords of its restore point; RDS rotates the managed master secret
   * (weekly by default) and the app password is rotated by runbooks/secret-rotation.md. The copy's
   * master user gets today's password of the user verify signs in as: the master secret's when
   * that is the master user; else the verify task's own PGPASSWORD (the app password), and
   * drill:verify resets the app role to it through the master user before signing in as it.
   */
  private async drillMasterPassword(primary: DBInstance, container: VerifyContainer): Promise<{ password?: string; resetAppRoleBy?: string; row: string }> {
    const user = verifyDatabaseUser(container);
    if (user === primary.MasterUsername) {
      const secretArn = primary.MasterUserSecret?.SecretArn;
      if (!secretArn) return { row: 'primary has no RDS-managed master secret: restored password kept' };
      this.progress.step("reading the primary's current master password");
      return { password: await this.readPassword(`${secretArn}:password::`), row: `set from ${secretArn} (value not shown)` };
    }
    if (!container.passwordSecret || !primary.MasterUsername) return { row: `verify logs in as ${user} without a PGPASSWORD secret to reset it to: restored passwords kept` };
    this.progress.step(`reading today's ${user} password (${container.passwordSecret.split(':').slice(0, 7).join(':')})`);
    return {
      password: await this.readPassword(container.passwordSecret),
      resetAppRoleBy: primary.MasterUsername,
      row: `set to the verify task's ${user} password (value not shown); drill:verify resets ${user} to it as ${primary.MasterUsername}`,
    };
  }

  /** A kept copy whose master password is the app password gets the primary's master password back, so it can be promoted. */
  private async restoreKeptMasterPassword(primary: DBInstance): Promise<{ ok: boolean; text: string }> {
    const secretArn = primary.MasterUserSecret?.SecretArn;
    if (!secretArn) return { ok: false, text: `the primary has no RDS-managed master secret: set ${this.drill.drillId}'s master password by hand before promoting it` };
    try {
      const password = await this.readPassword(`${secretArn}:password::`);
      await this.rds.send(alignDrillInstance(this.drill, { MasterUserPassword: password }));
      return { ok: true, text: `being set from ${secretArn} (value not shown)` };
    } catch (error) {
      return { ok: false, text: `FAILED to set it from ${secretArn} (${describeError(error)}): set it by hand before promoting the copy` };
    }
  }

  /** One ModifyDBInstance for the current master password and a kept copy's monitoring, then wait until applied. */
  private async alignInstance(primary: DBInstance, container: VerifyContainer): Promise<string | undefined> {
    const master = await this.drillMasterPassword(primary, container);
    this.rows.push(['master password', master.row]);
    const monitoring = keptMonitoring(this.drill, primary);
    if (this.drill.keep) {
      const settings = Object.keys(monitoring).length > 0 ? Object.keys(monitoring).join(', ') : 'the primary has neither Performance Insights nor enhanced monitoring';
      this.rows.push(['kept copy', `restored with the primary's Multi-AZ, backups, log exports and IAM auth; ${settings}`]);
    }
    if (master.password === undefined && Object.keys(monitoring).length === 0) return undefined;
    this.progress.step(`modifying ${this.drill.drillId}: ${[master.password !== undefined ? 'master password' : '', ...Object.keys(monitoring)].filter(Boolean).join(', ')}`);
    await this.rds.send(alignDrillInstance(this.drill, { ...(master.password !== undefined ? { MasterUserPassword: master.password } : {}), ...monitoring }));
    await waitFor(this.ctx, this.progress, {
      what: `the change to ${this.drill.drillId}`,
      intervalMs: DRILL_TASK_POLL_MS,
      initialDelayMs: DRILL_TASK_POLL_MS,
      timeoutMs: DRILL_VERIFY_TIMEOUT_MS,
      check: async () => {
        const instance = (await this.rds.send(describeInstance(this.drill.drillId))).DBInstances?.[0];
        const pending = instance?.PendingModifiedValues?.MasterUserPassword !== undefined;
        const status = instance?.DBInstanceStatus ?? 'not visible';
        return status === 'available' && !pending ? { done: true, value: undefined } : { done: false, status: pending ? `${status}, password pending` : status };
      },
    });
    return master.resetAppRoleBy;
  }

  private async verify(instance: DBInstance, container: VerifyContainer, resetAppRoleBy: string | undefined): Promise<VerifyResult> {
    const { drill } = this;
    const databaseUrl = drillDatabaseUrl(container, instance.Endpoint?.Address ?? '', instance.Endpoint?.Port ?? DATABASE_PORT);
    this.progress.step(`running drill:verify in ${drill.outputs.clusterName} as ${verifyDatabaseUser(container)} against ${databaseUrl.host}`);
    const started = await this.ecs.send(runVerifyTask(drill, container, databaseUrl.toString(), resetAppRoleBy));
    const taskArn = started.tasks?.[0]?.taskArn;
    if (!taskArn) throw new OpsError(`RunTask started no task: ${started.failures?.map((failure) => `${failure.arn ?? ''} ${failure.reason ?? ''}`.trim()).join('; ') || 'no reason given'}`);
    this.runningTask = taskArn;
    const stopped = await waitFor(this.ctx, this.progress, {
      what: `verify task ${taskArn.split('/').at(-1)}`,
      intervalMs: DRILL_TASK_POLL_MS,
      timeoutMs: DRILL_VERIFY_TIMEOUT_MS,
      check: async () => {
        const task = (await this.ecs.send(describeVerifyTask(drill, taskArn))).tasks?.[0];
        return task?.lastStatus === 'STOPPED' ? { done: true, value: task } : { done: false, status: task?.lastStatus ?? 'not visible yet' };
      },
    });
    this.runningTask = undefined;
    const exitCode = stopped.containers?.find((candidate) => candidate.name === container.name)?.exitCode;
    const read = await this.readVerifyOutput(container, taskArn);
    return { exitCode, stoppedReason: stopped.stoppedReason, ...read };
  }

  /** Best effort: the exit code decides the drill; the printed JSON only adds row counts to the report. */
  private async readVerifyOutput(container: VerifyContainer, taskArn: string): Promise<Pick<VerifyResult, 'output' | 'outputNote'>> {
    const stream = verifyLogStream(container, taskArn);
    if (!container.logGroup || !stream) return { output: undefined, outputNote: 'the verify container does not log with awslogs and a stream prefix' };
    let lastProblem = 'no JSON line in the log stream';
    for (let attempt = 1; attempt <= LOG_READ_ATTEMPTS; attempt++) {
      try {
        const output = verifyOutputOf((await this.clients.logs().send(readVerifyLog(container.logGroup, stream))).events);
        if (output) return { output, outputNote: `${container.logGroup} ${stream}` };
      } catch (error) {
        lastProblem = describeError(error);
      }
      if (attempt < LOG_READ_ATTEMPTS) await this.ctx.clock.sleep(LOG_READ_RETRY_MS);
    }
    return { output: undefined, outputNote: `not read (${lastProblem})` };
  }

  /** Stops a verify task the drill left running (timeout, interruption, a failed poll); never throws. */
  private async stopRunningTask(): Promise<{ ok: boolean; text: string } | undefined> {
    const taskArn = this.runningTask;
    if (taskArn === undefined) return undefined;
    this.runningTask = undefined;
    const taskId = taskArn.split('/').at(-1);
    try {
      this.progress.step(`stopping verify task ${taskId}`);
      await this.ecs.send(stopVerifyTask(this.drill, taskArn));
      return { ok: true, text: `verify task ${taskId} stopped` };
    } catch (error) {
      return { ok: false, text: `FAILED to stop verify task ${taskId} (${describeError(error)}); stop it by hand: aws ecs stop-task --region ${this.drill.outputs.region} --cluster ${this.drill.outputs.clusterName} --task ${taskArn}` };
    }
  }

  /** Deletes the drill instance, waiting out states RDS cannot delete from; never throws. */
  private async deleteInstance(): Promise<{ ok: boolean; text: string }> {
    const { drillId } = this.drill;
    for (let attempt = 1; attempt <= DELETE_ATTEMPTS; attempt++) {
      try {
        this.progress.step(`deleting ${drillId} (no final snapshot, automated backups too)`);
        await this.rds.send(deleteDrillInstance(this.drill));
        return { ok: true, text: `${drillId} deletion requested (no final snapshot, automated backups deleted)` };
      } catch (error) {
        if (error instanceof DBInstanceNotFoundFault) return { ok: true, text: `${drillId} already gone` };
        if (!(error instanceof InvalidDBInstanceStateFault) || attempt === DELETE_ATTEMPTS) {
          return { ok: false, text: `FAILED to delete ${drillId} (${describeError(error)}); delete it by hand: ${manualDeleteCommand(this.drill)}` };
        }
        this.progress.step(`${drillId} cannot be deleted yet (${error.message.split('\n')[0]}); retrying`);
        // No abort signal here: clean-up must go on after Ctrl-C.
        await this.ctx.clock.sleep(DELETE_RETRY_MS);
      }
    }
    return { ok: false, text: `FAILED to delete ${drillId}` };
  }

  /**
   * Whether a restore call that threw may still have created the instance: a 4xx answer means RDS
   * refused it; a timeout, a reset connection or a 5xx leaves it open, so look.
   */
  private async restoreMayHaveStarted(error: unknown): Promise<boolean> {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== undefined && status >= 400 && status < 500) return false;
    try {
      return ((await this.rds.send(describeInstance(this.drill.drillId))).DBInstances?.length ?? 0) > 0;
    } catch (probeError) {
      return !(probeError instanceof DBInstanceNotFoundFault);
    }
  }

  async run(): Promise<number> {
    const { drill } = this;
    const { primary, source, container, passRoles } = await this.preflight();
    if (drill.checkPermissions) await this.checkPermissions(primary, container, passRoles);
    this.rows.push(['drill instance', `${drill.drillId} (${drill.outputs.dbInstanceClass}, ${drill.outputs.region})`], ['source', source.description]);
    // Interrupted before the restore: nothing exists yet, so nothing may be created.
    this.ctx.signal.throwIfAborted();

    this.progress.step(`restoring ${source.description} as ${drill.drillId}`);
    const requestedAt = this.ctx.clock.now();
    const restoreError = await sendRestore(this.rds, restoreCommand(drill, source.snapshotIdentifier, primary)).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (restoreError !== undefined && !(await this.restoreMayHaveStarted(restoreError))) throw restoreError;
    this.rows.push(['restore requested', isoSeconds(requestedAt)]);

    // The restore was accepted (or may have been): from here every exit path deletes the instance,
    // and --keep keeps one that became available.
    let step = 'restore';
    let failure: string | undefined;
    let verifiedAt: Date | undefined;
    let availableAt: Date | undefined;
    let resetAppRoleBy: string | undefined;
    try {
      if (restoreError !== undefined) throw restoreError;
      step = 'wait for the restore';
      const instance = await this.waitAvailable();
      availableAt = this.ctx.clock.now();
      this.rows.push(['available', `${isoSeconds(availableAt)} (${formatDuration(availableAt.getTime() - requestedAt.getTime())} after the request)`]);
      step = 'align the master password';
      resetAppRoleBy = await this.alignInstance(primary, container);
      step = 'verify from inside the VPC';
      const result = await this.verify(instance, container, resetAppRoleBy);
      this.rows.push(['verify task', `exit ${result.exitCode ?? 'none'}${result.stoppedReason ? ` (${result.stoppedReason})` : ''}`]);
      this.rows.push(['verify output', result.output ? JSON.stringify(result.output).slice(0, 400) : result.outputNote]);
      const counts = result.output ? rowCountsOf(result.output) : undefined;
      if (counts) this.rows.push(['row counts', counts]);
      if (result.exitCode !== 0) throw new OpsError(`drill:verify exited ${result.exitCode ?? 'without an exit code'}${result.stoppedReason ? `: ${result.stoppedReason}` : ''}`);
      verifiedAt = this.ctx.clock.now();
    } catch (error) {
      failure = `${step}: ${describeError(error)}`;
    }

    const stoppedTask = await this.stopRunningTask();
    if (stoppedTask) this.rows.push(['verify task clean-up', stoppedTask.text]);
    // --keep keeps whatever became available, verified or not: a failed verify of a point-in-time
    // restore must not cost the 15-60 minutes of a P1 restore. A restore that never became usable goes.
    const kept = drill.keep && availableAt !== undefined;
    if (kept && resetAppRoleBy) {
      const masterReset = await this.restoreKeptMasterPassword(primary);
      this.rows.push(['kept master password', masterReset.text]);
    }
    const instanceCleanup = kept
      ? { ok: true, text: `KEPT (--keep${verifiedAt ? '' : ', NOT verified'}): delete it when done: ${manualDeleteCommand(drill)}` }
      : await this.deleteInstance();
    const cleanup = { ok: instanceCleanup.ok && (stoppedTask?.ok ?? true), text: instanceCleanup.text };
    if (verifiedAt) {
      this.rows.push(['verified', isoSeconds(verifiedAt)]);
      this.rows.push(['RTO', `${formatDuration(verifiedAt.getTime() - requestedAt.getTime())} (restore request to verified)`]);
    }
    this.rows.push(['RPO', `${formatDuration(drill.startedAt.getTime() - source.dataAsOf.getTime())} (drill start ${isoSeconds(drill.startedAt)} vs data as of ${isoSeconds(source.dataAsOf)})`]);
    this.rows.push(['clean-up', cleanup.text]);
    const passed = failure === undefined && cleanup.ok;
    this.rows.push(['result', passed ? 'PASS' : `FAIL: ${failure ?? 'clean-up failed'}`]);
    printSummary(this.ctx, `dr-drill report: ${drill.stack}`, this.rows);
    return passed ? 0 : 1;
  }
}

/** The drill's instance id from the stack name and the start minute; refused when it cannot be an RDS identifier. */
function drillIdentifier(stack: string, startedAt: Date): string {
  const drillId = `dms-drill-${stackShortName(stack).toLowerCase()}-${compactUtcMinute(startedAt)}`;
  const idProblem = rdsInstanceIdProblem(drillId);
  if (idProblem) throw new UsageError(`drill instance id ${drillId} ${idProblem}; the stack name cannot form an RDS identifier`);
  return drillId;
}

async function runRegionLoss(
  options: { stack: string; outputs: string | undefined; snapshot: string | undefined; 'point-in-time': string | undefined; keep: boolean; 'dry-run': boolean; timeout: string | undefined; 'xray-samples': string | undefined },
  ctx: OpsContext,
  startedAt: Date,
): Promise<number> {
  for (const flag of ['snapshot', 'point-in-time'] as const) {
    if (options[flag] !== undefined) throw new UsageError(`--${flag} is for the in-region drill: --region-loss restores the newest copy in the DR vault`);
  }
  if (options.keep) throw new UsageError('--keep is for the in-region drill: --region-loss always deletes what it creates');
  const loaded = await loadOutputs(options.stack, options.outputs, ctx);
  const outputs = requireOutputs(loaded, [
    'region',
    'dbInstanceIdentifier',
    'dbKmsKeyArn',
    'dbInstanceClass',
    'drillVerifyTaskDefinitionArn',
    'drRegion',
    'drBackupVaultName',
    'drKmsKeyArn',
    'xrayReplicaBucketName',
    'drClusterName',
    'drVerifyExecutionRoleArn',
    'drVerifyLogGroupName',
  ]);
  const drill: RegionDrill = {
    stack: options.stack,
    outputs,
    drillId: drillIdentifier(options.stack, startedAt),
    startedAt,
    availableTimeoutMs: parseDuration(options.timeout ?? '2h', 'timeout'),
    xraySamples: options['xray-samples'] === undefined ? 5 : parseInteger(options['xray-samples'], 'xray-samples', 1, 100),
  };
  if (options['dry-run']) {
    printRegionDrillPlan(ctx, drill, regionDrillPlan(drill));
    return 0;
  }
  return new RegionLossDrillRun(drill, ctx).run();
}

function manualDeleteCommand(drill: Drill): string {
  return `aws rds delete-db-instance --region ${drill.outputs.region} --db-instance-identifier ${drill.drillId} --skip-final-snapshot --delete-automated-backups`;
}

export const drDrill = defineCommand({
  name: 'dr-drill',
  summary: 'restore the database into a private drill instance, verify it from inside the VPC, report RTO/RPO, delete it',
  options: {
    snapshot: { type: 'string', valueName: 'id', description: 'restore this snapshot (default: the newest automated snapshot of the primary)' },
    'point-in-time': {
      type: 'string',
      valueName: 'iso|latest',
      description: 'restore the primary as of this time instead (e.g. 2025-03-01T04:30:00Z), or `latest`: its latest restorable time',
    },
    keep: { type: 'boolean', description: 'leave the restored instance running once it is available, even if verify fails (you delete it)' },
    'region-loss': {
      type: 'boolean',
      description: "treat the stack's region as lost: restore the newest copy in the DR vault into a throw-away network in the DR region, verify it, check the X-ray replica, delete it all",
    },
    'xray-samples': { type: 'string', valueName: 'n', description: 'with --region-loss: how many replicated X-rays to check (default 5)' },
    'dry-run': { type: 'boolean', description: 'print every AWS call with its parameters and send none (needs no credentials)' },
    timeout: { type: 'string', valueName: 'duration', description: 'how long to wait for the restored instance (default 2h)' },
    'skip-permission-check': {
      type: 'boolean',
      description: 'do not simulate your IAM permissions for every later call before restoring (when a policy condition the simulator cannot see allows them)',
    },
  },
  details: [
    'Steps: read the primary and the snapshot (must be encrypted with dbKmsKeyArn); restore it as',
    'dms-drill-<stack>-<yyyymmddhhmm> into the stack\'s DB subnet group, security group, parameter group and class,',
    'private, without deletion protection, tagged dms:drill=true, single-AZ with no backups of its own (--keep: the',
    'primary\'s Multi-AZ, backups, log exports, IAM auth, Performance Insights and monitoring); wait until available; set',
    'its master password to today\'s password of the verify task\'s user (its PGPASSWORD secret, or the master secret);',
    'run the drillVerifyTaskDefinitionArn task (drill:verify resets the app role through the master user, then checks row',
    'counts and the audit chain as its own database user) in the private subnets against it; report',
    'RTO (restore request to verified) and RPO (drill start vs the data\'s time); delete it without a final snapshot',
    'unless --keep. Any failure after the restore was accepted, an interruption included (SIGINT, SIGHUP, SIGTERM, a',
    'closed stdout), stops a running verify task and deletes the instance, once; --keep keeps an available instance',
    'even when verify fails. Exit 0 only when verified and cleaned up.',
    'Example: npm run ops -- dr-drill --stack production --dry-run',
    '',
    '--region-loss (quarterly): the stack region is treated as lost. Lists the DR vault (drBackupVaultName in drRegion) for',
    'the newest COMPLETED copy of the primary (must be encrypted with drKmsKeyArn); creates a throw-away VPC there (two',
    'private subnets, no internet, endpoints for ECR, S3, Logs and Secrets Manager), a DB subnet group, a secret with a',
    'random master password; restores the copy single-AZ and private; registers the verify container with the image ECR',
    'replicated to the DR region and runs drill:verify in drClusterName; checks --xray-samples objects of',
    'xrayReplicaBucketName (exist, SSE-KMS with drKmsKeyArn, decrypt); reports RTO (drill start to verified) and RPO',
    "(drill start vs the copy's data time); deletes everything it created, newest first, also after a failure or an",
    'interruption. Only the verify task definition is read from the stack region.',
    'Example: npm run ops -- dr-drill --region-loss --stack production --dry-run',
  ],
  async run({ options }, ctx) {
    const startedAt = ctx.clock.now();
    if (options['region-loss']) return runRegionLoss(options, ctx, startedAt);
    if (options['xray-samples'] !== undefined) throw new UsageError('--xray-samples goes with --region-loss');
    if (options.snapshot !== undefined && options['point-in-time'] !== undefined) throw new UsageError('give --snapshot or --point-in-time, not both');
    if (options.snapshot !== undefined && !/^([A-Za-z][A-Za-z0-9:-]{0,254}|arn:aws[\w-]*:rds:[\w-]+:\d{12}:snapshot:[A-Za-z][A-Za-z0-9:-]*)$/.test(options.snapshot)) {
      throw new UsageError(`--snapshot "${options.snapshot}" is not a DB snapshot identifier or ARN`);
    }
    const pointInTime = options['point-in-time'];
    const source: DrillSource = pointInTime !== undefined
      ? { kind: 'point-in-time', restoreTime: pointInTime.trim() === 'latest' ? 'latest' : parsePointInTime(pointInTime, startedAt) }
      : { kind: 'snapshot', snapshotIdentifier: options.snapshot };
    const availableTimeoutMs = parseDuration(options.timeout ?? '2h', 'timeout');

    const loaded = await loadOutputs(options.stack, options.outputs, ctx);
    const outputs = requireOutputs(loaded, [
      'region',
      'dbInstanceIdentifier',
      'dbSubnetGroupName',
      'dbSecurityGroupId',
      'dbParameterGroupName',
      'dbKmsKeyArn',
      'dbInstanceClass',
      'clusterName',
      'drillVerifyTaskDefinitionArn',
      'privateSubnetIds',
      'serviceSecurityGroupId',
    ]);
    const drillId = drillIdentifier(options.stack, startedAt);
    for (const existing of [outputs.dbInstanceIdentifier, optionalOutput(loaded, 'dbReplicaIdentifier')]) {
      if (existing?.toLowerCase() === drillId) throw new UsageError(`drill instance id ${drillId} is the stack's own database ${existing}; refusing`);
    }
    const drill: Drill = { stack: options.stack, outputs, drillId, startedAt, source, keep: options.keep, availableTimeoutMs, checkPermissions: !options['skip-permission-check'] };

    if (options['dry-run']) {
      printPlan(ctx, drill, drillPlan(drill));
      return 0;
    }
    return new DrillRun(drill, ctx).run();
  },
});
