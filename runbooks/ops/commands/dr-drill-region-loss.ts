// `dr-drill --region-loss`: the stack's region is gone; what is left in the DR region is restored
// into a throw-away network there and verified like the in-region drill, the replicated X-rays are
// checked, RTO and RPO are reported, and everything the drill created is deleted, also when a step
// fails or the operator's session ends (lib/session.ts turns each of those into one abort).
import type { RecoveryPointByBackupVault } from '@aws-sdk/client-backup';
import type { ContainerDefinition, TaskDefinition } from '@aws-sdk/client-ecs';
import { DBInstanceNotFoundFault, type DBInstance, type DBSnapshot } from '@aws-sdk/client-rds';
import { randomBytes } from 'node:crypto';
import { DATABASE_PORT } from '../../../infra/database.js';
import { awsErrorName, type AwsClients } from '../lib/aws.js';
import type { OpsContext } from '../lib/context.js';
import {
  DRILL_AVAILABLE_POLL_MS,
  DRILL_TASK_POLL_MS,
  DRILL_VERIFY_TIMEOUT_MS,
  drillDatabaseUrl,
  type PlannedCall,
  rowCountsOf,
  verifyContainerOf,
  verifyDatabaseUser,
  verifyOutputOf,
  waitForDrillInstance,
} from '../lib/drill.js';
import { describeError, OpsError } from '../lib/errors.js';
import {
  allowFromGroup,
  createDbSubnetGroup,
  createDrillSecret,
  createInterfaceEndpoint,
  createS3Endpoint,
  createSecurityGroup,
  createSubnet,
  createVpc,
  deleteCopy,
  deleteDbSubnetGroup,
  deleteDrillSecret,
  deleteEndpoints,
  deleteSecurityGroup,
  deleteSubnet,
  deleteVpc,
  deregisterVerifyTask,
  describeCopy,
  describeCopyInstance,
  describeEndpoints,
  describeTask,
  describeVerifyDefinition,
  describeZones,
  drillSecretName,
  isHeldByADependency,
  enableDnsHostnames,
  ENDPOINT_POLL_MS,
  ENDPOINT_TIMEOUT_MS,
  headXray,
  INTERFACE_ENDPOINT_SERVICES,
  listRecoveryPoints,
  listXrays,
  mainRouteTable,
  measureRows,
  readLog,
  readXrayByte,
  registerVerifyTask,
  restoreCopy,
  runDrVerifyTask,
  sampleKeys,
  setMasterPassword,
  snapshotIdentifierOf,
  stopTask,
  type DrillTimes,
  type RegionDrill,
} from '../lib/region-drill.js';
import { formatParameters, Progress, printSummary, type SummaryRow } from '../lib/report.js';
import { isoSeconds } from '../lib/time.js';
import { waitFor } from '../lib/wait.js';

/** EC2 refuses to delete a group, subnet or VPC while an interface (an endpoint's, the task's) still uses it: they go within minutes. */
const DEPENDENCY_RETRY_MS = 30_000;
const DEPENDENCY_ATTEMPTS = 30;
const DELETE_WAIT_MS = 45 * 60_000;
const LOG_READ_ATTEMPTS = 3;
const LOG_READ_RETRY_MS = 5_000;

/** One created thing and how to remove it; clean-up runs them newest first, each once, none able to stop the others. */
interface Undo {
  what: string;
  run(): Promise<void>;
  /** The command an operator runs when the drill could not. */
  byHand: string;
}

interface Restorable {
  recoveryPointArn: string;
  snapshotIdentifier: string;
  snapshot: DBSnapshot;
  dataAsOf: Date;
}

export class RegionLossDrillRun {
  private readonly dr: AwsClients;
  private readonly home: AwsClients;
  private readonly progress: Progress;
  private readonly rows: SummaryRow[] = [];
  private readonly undo: Undo[] = [];

  constructor(
    private readonly drill: RegionDrill,
    private readonly ctx: OpsContext,
  ) {
    this.dr = ctx.aws(drill.outputs.drRegion);
    this.home = ctx.aws(drill.outputs.region);
    this.progress = new Progress(ctx);
  }

  private get region(): string {
    return this.drill.outputs.drRegion;
  }

  /** The newest completed copy of the primary in the DR vault, checked before anything is created. */
  private async newestCopy(): Promise<Restorable> {
    const { outputs } = this.drill;
    this.progress.step(`listing copies of ${outputs.dbInstanceIdentifier} in ${outputs.drBackupVaultName} (${this.region})`);
    const points: RecoveryPointByBackupVault[] = [];
    let token: string | undefined;
    do {
      const page = await this.dr.backup().send(listRecoveryPoints(this.drill, token));
      points.push(...(page.RecoveryPoints ?? []));
      token = page.NextToken;
    } while (token);
    const newest = points
      .filter((point) => point.Status === 'COMPLETED' && point.RecoveryPointArn && point.CreationDate)
      .sort((a, b) => (b.CreationDate?.getTime() ?? 0) - (a.CreationDate?.getTime() ?? 0))[0];
    if (!newest?.RecoveryPointArn || !newest.CreationDate) {
      throw new OpsError(`${outputs.drBackupVaultName} in ${this.region} holds no completed copy of ${outputs.dbInstanceIdentifier}: the copy rule has not run, or every copy failed (runbooks/backup-restore.md#backup-copy-failed)`);
    }
    const snapshotIdentifier = snapshotIdentifierOf(newest.RecoveryPointArn);
    const snapshot = (await this.dr.rds().send(describeCopy(snapshotIdentifier))).DBSnapshots?.[0];
    if (!snapshot) throw new OpsError(`the snapshot of recovery point ${newest.RecoveryPointArn} is not visible in ${this.region}`);
    if (snapshot.Status !== 'available') throw new OpsError(`copy ${snapshotIdentifier} is ${snapshot.Status ?? 'in an unknown state'}, not available`);
    // The restored instance keeps the copy's key: PHI in the DR region stays under the DR key.
    if (!snapshot.Encrypted || snapshot.KmsKeyId !== outputs.drKmsKeyArn) {
      throw new OpsError(`copy ${snapshotIdentifier} is ${snapshot.Encrypted ? `encrypted with ${snapshot.KmsKeyId ?? 'an unknown key'}` : 'not encrypted'}, not with drKmsKeyArn ${outputs.drKmsKeyArn}; refusing to restore PHI from it`);
    }
    // A copy keeps its source's creation date (https://docs.aws.amazon.com/aws-backup/latest/devguide/recov-point-create-a-copy.html);
    // the snapshot's own database time, when RDS reports it, is the newest transaction in it.
    const dataAsOf = snapshot.SnapshotDatabaseTime ?? snapshot.OriginalSnapshotCreateTime ?? newest.CreationDate;
    return { recoveryPointArn: newest.RecoveryPointArn, snapshotIdentifier, snapshot, dataAsOf };
  }

  private async verifyDefinition(): Promise<{ definition: TaskDefinition; container: ContainerDefinition }> {
    const { outputs } = this.drill;
    this.progress.step(`reading the verify task definition ${outputs.drillVerifyTaskDefinitionArn} (${outputs.region})`);
    const definition = (await this.home.ecs().send(describeVerifyDefinition(this.drill))).taskDefinition;
    const containers = definition?.containerDefinitions ?? [];
    const { name } = verifyContainerOf(containers, outputs.drillVerifyTaskDefinitionArn);
    const container = containers.find((candidate) => candidate.name === name);
    if (!definition || !container) throw new OpsError(`task definition ${outputs.drillVerifyTaskDefinitionArn} has no verify container`);
    return { definition, container };
  }

  private created(what: string, byHand: string, run: () => Promise<unknown>): void {
    this.undo.push({ what, byHand, run: async () => void (await run()) });
  }

  /** Retries a deletion EC2 or RDS refuses while something still depends on what it deletes. */
  private async deleteWhenFree(what: string, send: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await send();
        return;
      } catch (error) {
        if (!isHeldByADependency(error) || attempt >= DEPENDENCY_ATTEMPTS) throw error;
        this.progress.step(`${what} is still in use (${awsErrorName(error) ?? 'busy'}); retrying`);
        // No abort signal: clean-up goes on after Ctrl-C.
        await this.ctx.clock.sleep(DEPENDENCY_RETRY_MS);
      }
    }
  }

  private async waitDeleted(): Promise<void> {
    const started = this.ctx.clock.now().getTime();
    for (;;) {
      try {
        const instance = (await this.dr.rds().send(describeCopyInstance(this.drill))).DBInstances?.[0];
        if (!instance) return;
      } catch (error) {
        if (error instanceof DBInstanceNotFoundFault || awsErrorName(error) === 'DBInstanceNotFound') return;
        throw error;
      }
      if (this.ctx.clock.now().getTime() - started > DELETE_WAIT_MS) throw new OpsError(`${this.drill.drillId} still exists after 45 min`);
      await this.ctx.clock.sleep(DRILL_AVAILABLE_POLL_MS);
    }
  }

  /** The throw-away network: VPC, two private subnets, the two groups, the endpoints a task without internet needs. */
  private async buildNetwork(port: number): Promise<{ subnetIds: string[]; taskGroup: string; dbGroup: string; endpointIds: string[] }> {
    const ec2 = this.dr.ec2();
    const zones = ((await ec2.send(describeZones())).AvailabilityZones ?? []).map((zone) => zone.ZoneName).filter((zone): zone is string => zone !== undefined).slice(0, 2);
    if (zones.length < 2) throw new OpsError(`${this.region} has fewer than two available zones: an RDS subnet group needs two`);
    this.progress.step(`creating the throw-away network in ${this.region}`);
    const vpcId = (await ec2.send(createVpc(this.drill))).Vpc?.VpcId;
    if (!vpcId) throw new OpsError('CreateVpc returned no VpcId');
    this.created(`VPC ${vpcId}`, `aws ec2 delete-vpc --region ${this.region} --vpc-id ${vpcId}`, () => this.deleteWhenFree(`VPC ${vpcId}`, () => ec2.send(deleteVpc(vpcId))));
    await ec2.send(enableDnsHostnames(vpcId));
    const subnetIds: string[] = [];
    for (const [index, zone] of zones.entries()) {
      const subnetId = (await ec2.send(createSubnet(this.drill, vpcId, index, zone))).Subnet?.SubnetId;
      if (!subnetId) throw new OpsError('CreateSubnet returned no SubnetId');
      subnetIds.push(subnetId);
      this.created(`subnet ${subnetId}`, `aws ec2 delete-subnet --region ${this.region} --subnet-id ${subnetId}`, () => this.deleteWhenFree(`subnet ${subnetId}`, () => ec2.send(deleteSubnet(subnetId))));
    }
    const routeTableId = (await ec2.send(mainRouteTable(vpcId))).RouteTables?.[0]?.RouteTableId;
    if (!routeTableId) throw new OpsError(`VPC ${vpcId} has no main route table`);
    const group = async (role: 'task' | 'db'): Promise<string> => {
      const groupId = (await ec2.send(createSecurityGroup(this.drill, vpcId, role))).GroupId;
      if (!groupId) throw new OpsError('CreateSecurityGroup returned no GroupId');
      this.created(`security group ${groupId}`, `aws ec2 delete-security-group --region ${this.region} --group-id ${groupId}`, () => this.deleteWhenFree(`security group ${groupId}`, () => ec2.send(deleteSecurityGroup(groupId))));
      return groupId;
    };
    const taskGroup = await group('task');
    const dbGroup = await group('db');
    await ec2.send(allowFromGroup(taskGroup, taskGroup, 443));
    await ec2.send(allowFromGroup(dbGroup, taskGroup, port));
    const endpointIds: string[] = [];
    this.created('the VPC endpoints', `aws ec2 delete-vpc-endpoints --region ${this.region} --vpc-endpoint-ids <the drill's endpoints>`, () =>
      endpointIds.length === 0 ? Promise.resolve() : ec2.send(deleteEndpoints(endpointIds)),
    );
    for (const command of [...INTERFACE_ENDPOINT_SERVICES.map((service) => createInterfaceEndpoint(this.drill, vpcId, service, subnetIds, taskGroup)), createS3Endpoint(this.drill, vpcId, routeTableId)]) {
      const endpointId = (await ec2.send(command)).VpcEndpoint?.VpcEndpointId;
      if (!endpointId) throw new OpsError(`CreateVpcEndpoint ${command.input.ServiceName ?? ''} returned no id`);
      endpointIds.push(endpointId);
    }
    const rds = this.dr.rds();
    await rds.send(createDbSubnetGroup(this.drill, subnetIds));
    this.created(`DB subnet group ${this.drill.drillId}`, `aws rds delete-db-subnet-group --region ${this.region} --db-subnet-group-name ${this.drill.drillId}`, () =>
      this.deleteWhenFree(`DB subnet group ${this.drill.drillId}`, () => rds.send(deleteDbSubnetGroup(this.drill.drillId))),
    );
    return { subnetIds, taskGroup, dbGroup, endpointIds };
  }

  private waitAvailable(): Promise<DBInstance> {
    return waitForDrillInstance(this.ctx, this.progress, this.dr.rds(), this.drill.drillId, this.drill.availableTimeoutMs);
  }


  private async verify(instance: DBInstance, container: ContainerDefinition, taskDefinitionArn: string, network: { subnetIds: string[]; groupId: string }, masterUser: string): Promise<void> {
    const { drill } = this;
    const verifyContainer = { databaseUrl: container.environment?.find((variable) => variable.name === 'DATABASE_URL')?.value };
    const appUser = verifyDatabaseUser(verifyContainer);
    const databaseUrl = drillDatabaseUrl(verifyContainer, instance.Endpoint?.Address ?? '', instance.Endpoint?.Port ?? DATABASE_PORT);
    // Verify as the app role, like the in-region drill: drill:verify first sets its password to
    // PGPASSWORD through the master user. A container that signs in as the master user needs no reset.
    const resetAppRoleBy = appUser === masterUser ? undefined : masterUser;
    this.progress.step(`running drill:verify in ${drill.outputs.drClusterName} (${this.region}) as ${appUser}`);
    const started = await this.dr.ecs().send(runDrVerifyTask(drill, taskDefinitionArn, container, network, databaseUrl.toString(), resetAppRoleBy));
    const taskArn = started.tasks?.[0]?.taskArn;
    if (!taskArn) throw new OpsError(`RunTask started no task: ${started.failures?.map((failure) => `${failure.arn ?? ''} ${failure.reason ?? ''}`.trim()).join('; ') || 'no reason given'}`);
    let running = true;
    this.created(`verify task ${taskArn.split('/').at(-1)}`, `aws ecs stop-task --region ${this.region} --cluster ${drill.outputs.drClusterName} --task ${taskArn}`, async () => {
      if (running) await this.dr.ecs().send(stopTask(drill, taskArn));
    });
    const stopped = await waitFor(this.ctx, this.progress, {
      what: `verify task ${taskArn.split('/').at(-1)}`,
      intervalMs: DRILL_TASK_POLL_MS,
      timeoutMs: DRILL_VERIFY_TIMEOUT_MS,
      check: async () => {
        const task = (await this.dr.ecs().send(describeTask(drill, taskArn))).tasks?.[0];
        return task?.lastStatus === 'STOPPED' ? { done: true, value: task } : { done: false, status: task?.lastStatus ?? 'not visible yet' };
      },
    });
    running = false;
    const exitCode = stopped.containers?.find((candidate) => candidate.name === container.name)?.exitCode;
    const output = await this.readOutput(container.name ?? '', taskArn);
    this.rows.push(['verify task', `exit ${exitCode ?? 'none'}${stopped.stoppedReason ? ` (${stopped.stoppedReason})` : ''}`]);
    if (output) {
      this.rows.push(['verify output', JSON.stringify(output).slice(0, 400)]);
      const counts = rowCountsOf(output);
      if (counts) this.rows.push(['row counts', counts]);
    }
    if (exitCode !== 0) throw new OpsError(`drill:verify exited ${exitCode ?? 'without an exit code'}${stopped.stoppedReason ? `: ${stopped.stoppedReason}` : ''}`);
  }

  private async readOutput(containerName: string, taskArn: string): Promise<Record<string, unknown> | undefined> {
    const stream = `dr-verify/${containerName}/${taskArn.split('/').at(-1) ?? ''}`;
    for (let attempt = 1; attempt <= LOG_READ_ATTEMPTS; attempt++) {
      try {
        const output = verifyOutputOf((await this.dr.logs().send(readLog(this.drill, stream))).events);
        if (output) return output;
      } catch {
        // The exit code decides; the output only adds row counts.
      }
      if (attempt < LOG_READ_ATTEMPTS) await this.ctx.clock.sleep(LOG_READ_RETRY_MS);
    }
    return undefined;
  }

  /** A sample of the replicated X-rays: each exists, is encrypted with the DR key, and decrypts. */
  private async checkXrays(): Promise<void> {
    const { drill } = this;
    const s3 = this.dr.s3();
    this.progress.step(`checking ${drill.xraySamples} X-rays in ${drill.outputs.xrayReplicaBucketName}`);
    const keys = ((await s3.send(listXrays(drill))).Contents ?? []).map((object) => object.Key).filter((key): key is string => key !== undefined);
    if (keys.length === 0) throw new OpsError(`${drill.outputs.xrayReplicaBucketName} holds no X-ray: replication has copied nothing (or the stack has no X-ray yet: upload one and run the drill again)`);
    const sample = sampleKeys(keys, drill.xraySamples);
    for (const key of sample) {
      const head = await s3.send(headXray(drill, key));
      if (head.ServerSideEncryption !== 'aws:kms' || head.SSEKMSKeyId !== drill.outputs.drKmsKeyArn) {
        throw new OpsError(`replica object ${key} is encrypted with ${head.SSEKMSKeyId ?? head.ServerSideEncryption ?? 'nothing'}, not drKmsKeyArn`);
      }
      const object = await s3.send(readXrayByte(drill, key));
      const bytes = await object.Body?.transformToByteArray();
      if (!bytes || bytes.length === 0) throw new OpsError(`replica object ${key} returned no data`);
    }
    // Object keys name patients: the report gives the count, not the keys.
    this.rows.push(['X-ray replica', `${sample.length} of ${keys.length}${keys.length === 1000 ? '+' : ''} listed objects exist, use the DR key and decrypt`]);
  }

  /** Newest first; every step runs whatever the others did; returns whether all succeeded. */
  private async cleanUp(): Promise<boolean> {
    let ok = true;
    for (const step of this.undo.reverse()) {
      try {
        this.progress.step(`clean-up: ${step.what}`);
        await step.run();
      } catch (error) {
        ok = false;
        this.rows.push(['clean-up FAILED', `${step.what} (${describeError(error)}); by hand: ${step.byHand}`]);
      }
    }
    this.undo.length = 0;
    return ok;
  }

  async run(): Promise<number> {
    const { drill } = this;
    const restorable = await this.newestCopy();
    const { definition, container } = await this.verifyDefinition();
    this.rows.push(
      ['DR region', `${this.region} (stack region ${drill.outputs.region} treated as lost)`],
      ['recovery point', `${restorable.recoveryPointArn} (data as of ${isoSeconds(restorable.dataAsOf)})`],
      ['drill instance', `${drill.drillId} (${drill.outputs.dbInstanceClass})`],
    );
    this.ctx.signal.throwIfAborted();

    const times: DrillTimes = { startedAt: drill.startedAt, restoreRequestedAt: drill.startedAt, dataAsOf: restorable.dataAsOf };
    let step = 'build the throw-away network';
    let failure: string | undefined;
    try {
      const network = await this.buildNetwork(restorable.snapshot.Port ?? DATABASE_PORT);
      this.ctx.signal.throwIfAborted();
      step = 'create the drill secret';
      const secrets = this.dr.secrets();
      const password = randomBytes(24).toString('base64url');
      const secretArn = (await secrets.send(createDrillSecret(drill, drillSecretName(drill.stack, drill.drillId), password))).ARN;
      if (!secretArn) throw new OpsError('CreateSecret returned no ARN');
      this.created('the drill secret', `aws secretsmanager delete-secret --region ${this.region} --secret-id ${secretArn} --force-delete-without-recovery`, () => secrets.send(deleteDrillSecret(secretArn)));
      step = 'restore';
      this.progress.step(`restoring ${restorable.snapshotIdentifier} as ${drill.drillId}`);
      times.restoreRequestedAt = this.ctx.clock.now();
      const rds = this.dr.rds();
      // Registered before the call: a restore that timed out may still have started.
      this.created(`${drill.drillId}`, `aws rds delete-db-instance --region ${this.region} --db-instance-identifier ${drill.drillId} --skip-final-snapshot --delete-automated-backups`, async () => {
        try {
          await this.deleteWhenFree(drill.drillId, () => rds.send(deleteCopy(drill)));
        } catch (error) {
          if (!(error instanceof DBInstanceNotFoundFault || awsErrorName(error) === 'DBInstanceNotFound')) throw error;
        }
        await this.waitDeleted();
      });
      await rds.send(restoreCopy(drill, restorable.snapshotIdentifier, network.dbGroup));
      step = 'wait for the restore';
      await this.waitAvailable();
      times.availableAt = this.ctx.clock.now();
      step = 'set the master password';
      await rds.send(setMasterPassword(drill, password));
      const instance = await this.waitAvailable();
      step = 'register the verify task';
      const taskDefinitionArn = (await this.dr.ecs().send(registerVerifyTask(drill, definition, container, secretArn))).taskDefinition?.taskDefinitionArn;
      if (!taskDefinitionArn) throw new OpsError('RegisterTaskDefinition returned no ARN');
      this.created(`task definition ${taskDefinitionArn.split('/').at(-1)}`, `aws ecs deregister-task-definition --region ${this.region} --task-definition ${taskDefinitionArn}`, () => this.dr.ecs().send(deregisterVerifyTask(taskDefinitionArn)));
      step = 'wait for the endpoints';
      await waitFor(this.ctx, this.progress, {
        what: 'the VPC endpoints',
        intervalMs: ENDPOINT_POLL_MS,
        timeoutMs: ENDPOINT_TIMEOUT_MS,
        check: async () => {
          const states = ((await this.dr.ec2().send(describeEndpoints(network.endpointIds))).VpcEndpoints ?? []).map((endpoint) => (endpoint.State ?? '').toLowerCase());
          if (states.some((state) => state === 'failed' || state === 'rejected')) throw new OpsError(`a VPC endpoint went ${states.join(', ')}`);
          return states.length === network.endpointIds.length && states.every((state) => state === 'available') ? { done: true, value: undefined } : { done: false, status: states.join(', ') || 'not visible yet' };
        },
      });
      step = 'verify in the DR region';
      await this.verify(instance, container, taskDefinitionArn, { subnetIds: network.subnetIds, groupId: network.taskGroup }, restorable.snapshot.MasterUsername ?? 'dms_admin');
      times.verifiedAt = this.ctx.clock.now();
      step = 'check the X-ray replica';
      await this.checkXrays();
    } catch (error) {
      failure = `${step}: ${describeError(error)}`;
    }
    const cleaned = await this.cleanUp();
    this.rows.push(...measureRows(times));
    this.rows.push(['clean-up', cleaned ? 'everything the drill created is deleted' : 'INCOMPLETE: see the rows above']);
    const passed = failure === undefined && cleaned;
    this.rows.push(['result', passed ? 'PASS' : `FAIL: ${failure ?? 'clean-up failed'}`]);
    printSummary(this.ctx, `dr-drill --region-loss report: ${drill.stack}`, this.rows);
    return passed ? 0 : 1;
  }
}

export function printRegionDrillPlan(ctx: OpsContext, drill: RegionDrill, calls: readonly PlannedCall[]): void {
  ctx.io.out(`Dry run of dr-drill --region-loss for stack ${drill.stack}: the calls below are printed, none is sent.`);
  ctx.io.out(`Drill instance: ${drill.drillId} in ${drill.outputs.drRegion} (the stack region ${drill.outputs.region} is treated as lost)`);
  calls.forEach((call, index) => {
    ctx.io.out('');
    ctx.io.out(`${index + 1}. ${call.service} ${call.command.constructor.name.replace(/Command$/, '')}${call.note ? `: ${call.note}` : ''}`);
    for (const line of formatParameters(call.command.input).split('\n')) ctx.io.out(`   ${line}`);
  });
}
