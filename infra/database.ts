/**
 * RDS PostgreSQL: the primary (Multi-AZ in production), a read replica in another AZ, TLS forced by
 * the parameter group, the master password managed by RDS in Secrets Manager, and the secret holding
 * the password of the least-privileged `dms_app` role the API connects as.
 *
 * A failover to the replica (`npm run ops -- failover`) is made durable here by
 * `dms:database.failovers`: each one makes the promoted replica the declared primary and declares
 * a new replica of it, so the next `pulumi up` keeps what the failover did instead of undoing it.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { randomBytes } from 'node:crypto';
import { DB_INSTANCE_MEMORY_GIB, type AwsEnvironment, type DatabaseSettings } from './config.js';
import { trustPolicy } from './iam.js';
import { customerManagedKey } from './kms.js';

/** The `dms:database` settings plus what the other components provide. */
export interface DatabaseArgs extends DatabaseSettings {
  /** `dms-<stack>`. */
  prefix: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /** Isolated subnets (no route out of the VPC). */
  subnetIds: pulumi.Input<string>[];
  /** Availability zones in subnet order: the primary takes the first, the replica the last. */
  availabilityZones: pulumi.Input<string[]>;
  /** Admits the API and job tasks only. */
  securityGroupId: pulumi.Input<string>;
  /** Encrypts the RDS-managed master secret and the app password secret. */
  secretsKey: aws.kms.Key;
  /** Encrypts the PostgreSQL log groups. */
  logsKey: aws.kms.Key;
  /** Retention of the exported PostgreSQL logs (days). */
  logRetentionDays: number;
}

/** Database name, master user and application role (CONTRACT §1, the migration task creates `dms_app`). */
export const DATABASE_NAME = 'dms';
export const MASTER_USERNAME = 'dms_admin';
export const APP_USERNAME = 'dms_app';
/** The login role of the audit export and purge jobs: the only one that may record exports and purge. */
export const EXPORTER_USERNAME = 'dms_audit_export';
/**
 * Not PostgreSQL's default 5432 (FSBP RDS.23, "RDS instances should not use a database engine
 * default port", https://docs.aws.amazon.com/securityhub/latest/userguide/rds-controls.html): scans
 * for 5432 find nothing, though the security groups are what keep the database private.
 */
export const DATABASE_PORT = 5433;

/**
 * Identifier of the stack's k-th database instance: the first two keep the names stacks were
 * created with, each failover adds one. An identifier names an instance for life, whatever its role:
 * RDS endpoints follow the identifier, and the failover points the API at the promoted endpoint as is.
 * The primary after n failovers is instance n, its replica instance n + 1.
 */
export function instanceIdentifier(prefix: string, k: number): string {
  if (k === 0) return `${prefix}-db`;
  return k === 1 ? `${prefix}-db-replica` : `${prefix}-db-${k}`;
}

/** PostgreSQL's default connection budget per byte of instance memory, as RDS computes it. */
const BYTES_PER_CONNECTION = 9_531_392;

/**
 * `max_connections` set explicitly, so the connections alarm has an exact threshold: RDS's default
 * formula on the class's nominal memory, less 10 % for the OS, capped at 5000.
 */
export function maxConnectionsFor(instanceClass: string): number {
  const gib = DB_INSTANCE_MEMORY_GIB[instanceClass];
  if (gib === undefined) throw new Error(`no memory size known for ${instanceClass}`);
  return Math.min(5000, Math.floor((gib * 2 ** 30 * 0.9) / BYTES_PER_CONNECTION));
}

export class Database extends pulumi.ComponentResource {
  /** Encrypts storage, snapshots and Performance Insights; DR drills restore with it. */
  readonly kmsKey: aws.kms.Key;
  readonly subnetGroup: aws.rds.SubnetGroup;
  readonly parameterGroup: aws.rds.ParameterGroup;
  readonly primary: aws.rds.Instance;
  readonly replica: aws.rds.Instance;
  /** RDS-managed secret of `dms_admin` (JSON with `username` and `password`). */
  readonly masterSecretArn: pulumi.Output<string>;
  /** `dms-<stack>/db-app-password`: the `dms_app` role's password (plain string). */
  readonly appPasswordSecret: aws.secretsmanager.Secret;
  /** Password of the audit exporter's login role (the export and purge jobs). */
  readonly exporterPasswordSecret: aws.secretsmanager.Secret;
  /** `max_connections` of the primary (the replica has its own, from its class). */
  readonly maxConnections: number;
  /** `max_connections` of the replica. */
  readonly replicaMaxConnections: number;
  /** Nominal memory of the primary / replica classes (bytes), for the freeable-memory alarms. */
  readonly memoryBytes: { primary: number; replica: number };
  /** Allocated storage of the primary (bytes) at creation, for the free-storage alarm. */
  readonly allocatedStorageBytes: number;

  constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:database:Database', name, {}, opts);
    const child = { parent: this };
    const { prefix, env } = args;
    const identifier = instanceIdentifier(prefix, args.failovers);
    const replicaIdentifier = instanceIdentifier(prefix, args.failovers + 1);
    const promoted = args.failovers > 0;
    const major = args.engineVersion.split('.')[0] as string;
    this.maxConnections = maxConnectionsFor(args.instanceClass);
    this.replicaMaxConnections = maxConnectionsFor(args.replicaInstanceClass);
    this.memoryBytes = {
      primary: (DB_INSTANCE_MEMORY_GIB[args.instanceClass] ?? 0) * 2 ** 30,
      replica: (DB_INSTANCE_MEMORY_GIB[args.replicaInstanceClass] ?? 0) * 2 ** 30,
    };
    this.allocatedStorageBytes = args.allocatedStorageGb * 2 ** 30;

    // With deletion protection the instance leaves a final snapshot and its automated backups behind: the key must outlive it.
    this.kmsKey = customerManagedKey(
      `${prefix}-db`,
      { description: `${prefix}: PostgreSQL storage, snapshots, Performance Insights (PHI)`, alias: `${prefix}-db`, env, outlivesStack: args.deletionProtection },
      child,
    );
    this.subnetGroup = new aws.rds.SubnetGroup(`${prefix}-db`, { name: `${prefix}-db`, description: 'DMS database: isolated subnets', subnetIds: args.subnetIds }, child);

    this.parameterGroup = new aws.rds.ParameterGroup(
      `${prefix}-db-pg${major}`,
      {
        name: `${prefix}-db-pg${major}`,
        family: `postgres${major}`,
        description: `DMS PostgreSQL ${major}: TLS only, no statement text in the log`,
        parameters: [
          { name: 'rds.force_ssl', value: '1' },
          { name: 'ssl_min_protocol_version', value: 'TLSv1.2' },
          // No statement text in the log, ever: MikroORM 7 sends values written into the SQL text, not
          // as bind parameters (AbstractSqlConnection.execute: CompiledQuery.raw(formatted)), so a logged
          // statement would carry names and dates of birth to CloudWatch. Slow statements are found
          // in pg_stat_statements and Performance Insights, which keep them normalised. Hence no
          // duration logging, no statement beside an error, and no DETAIL (a unique violation's DETAIL
          // repeats the key's value).
          { name: 'log_min_duration_statement', value: '-1' },
          { name: 'log_min_error_statement', value: 'panic' },
          { name: 'log_error_verbosity', value: 'terse' },
          // For the statements that do bind parameters (patient search): placeholders only.
          { name: 'log_parameter_max_length', value: '0' },
          { name: 'log_parameter_max_length_on_error', value: '0' },
          { name: 'log_statement', value: 'ddl' },
          { name: 'log_connections', value: '1' },
          { name: 'log_disconnections', value: '1' },
          { name: 'log_lock_waits', value: '1' },
          { name: 'log_temp_files', value: '0' },
          { name: 'idle_in_transaction_session_timeout', value: '60000' },
          { name: 'shared_preload_libraries', value: 'pg_stat_statements', applyMethod: 'pending-reboot' },
          { name: 'max_connections', value: String(Math.max(this.maxConnections, this.replicaMaxConnections)), applyMethod: 'pending-reboot' },
        ],
      },
      child,
    );

    const monitoringRole = new aws.iam.Role(`${prefix}-rds-monitoring`, { name: `${prefix}-rds-monitoring`, assumeRolePolicy: trustPolicy('monitoring.rds.amazonaws.com', env.accountId) }, child);
    new aws.iam.RolePolicyAttachment(
      `${prefix}-rds-monitoring`,
      { role: monitoringRole.name, policyArn: pulumi.interpolate`arn:${env.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole` },
      child,
    );

    // RDS would create these on first export with no retention and no encryption. Every instance the
    // stack has had keeps its groups: an old primary's logs are evidence for the failover's review.
    const logGroups = new Map(
      Array.from({ length: args.failovers + 2 }, (_, k) => instanceIdentifier(prefix, k)).map((instance) => [
        instance,
        ['postgresql', 'upgrade'].map(
          (kind) =>
            new aws.cloudwatch.LogGroup(
              `${instance}-${kind}-logs`,
              { name: `/aws/rds/instance/${instance}/${kind}`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
              child,
            ),
        ),
      ]),
    );
    const shared = {
      engine: 'postgres',
      storageType: 'gp3',
      port: DATABASE_PORT,
      vpcSecurityGroupIds: [args.securityGroupId],
      parameterGroupName: this.parameterGroup.name,
      publiclyAccessible: false,
      iamDatabaseAuthenticationEnabled: true,
      caCertIdentifier: 'rds-ca-rsa2048-g1',
      autoMinorVersionUpgrade: true,
      enabledCloudwatchLogsExports: ['postgresql', 'upgrade'],
      performanceInsightsEnabled: true,
      performanceInsightsKmsKeyId: this.kmsKey.arn,
      performanceInsightsRetentionPeriod: args.performanceInsightsRetentionDays,
      monitoringInterval: args.monitoringIntervalSeconds,
      monitoringRoleArn: monitoringRole.arn,
      deletionProtection: args.deletionProtection,
      copyTagsToSnapshot: true,
      maintenanceWindow: args.maintenanceWindow,
    };
    const zones = pulumi.output(args.availabilityZones);
    // Instances alternate between the first and the last zone, so a replica is never in its primary's.
    const zoneOf = (k: number) => zones.apply((names) => names[k % 2 === 0 ? 0 : names.length - 1] as string);
    // An instance dropped from the program (the old primary, after a failover) is forgotten, never
    // deleted: with deletion protection the delete would fail the whole update, and the old primary is
    // kept for the incident review, then deleted by hand with a final snapshot (runbooks/database.md).
    const retainOnDelete = args.deletionProtection;

    this.primary = new aws.rds.Instance(
      identifier,
      {
        ...shared,
        identifier,
        // A promoted replica keeps what it had from its source: the database and master user, which a
        // replica cannot be given ("Cannot be specified for a replica", the provider's dbName and
        // username docs) and which force a replacement when changed, and the full engine version it
        // was created with ("17.6" in its state), which the configured major would read as a
        // downgrade. No replicateSourceDb: removing it is what promotes a replica in the provider
        // (https://github.com/hashicorp/terraform/pull/1946), and `pulumi up --refresh` first records
        // that `ops failover` already did, so the update does not promote it again.
        ...(promoted ? {} : { engineVersion: args.engineVersion, dbName: DATABASE_NAME, username: MASTER_USERNAME }),
        instanceClass: args.instanceClass,
        allocatedStorage: args.allocatedStorageGb,
        maxAllocatedStorage: args.maxAllocatedStorageGb,
        storageEncrypted: true,
        kmsKeyId: this.kmsKey.arn,
        manageMasterUserPassword: true,
        masterUserSecretKmsKeyId: args.secretsKey.arn,
        dbSubnetGroupName: this.subnetGroup.name,
        multiAz: args.multiAz,
        // RDS places a Multi-AZ primary and its standby itself; a single-AZ primary stays in its zone
        // (a change of zone replaces the instance).
        ...(args.multiAz ? {} : { availabilityZone: zoneOf(args.failovers) }),
        backupRetentionPeriod: args.backupRetentionDays,
        backupWindow: args.backupWindow,
        deleteAutomatedBackups: !args.deletionProtection,
        skipFinalSnapshot: !args.deletionProtection,
        ...(args.deletionProtection ? { finalSnapshotIdentifier: `${identifier}-final` } : {}),
        // Version upgrades go through the maintenance window, never mid-deployment.
        applyImmediately: false,
      },
      { ...child, dependsOn: logGroups.get(identifier), ignoreChanges: ['finalSnapshotIdentifier'], retainOnDelete },
    );

    this.replica = new aws.rds.Instance(
      replicaIdentifier,
      {
        ...shared,
        identifier: replicaIdentifier,
        replicateSourceDb: this.primary.identifier,
        instanceClass: args.replicaInstanceClass,
        maxAllocatedStorage: args.maxAllocatedStorageGb,
        availabilityZone: zoneOf(args.failovers + 1),
        multiAz: false,
        // Backups are the primary's; a replica restarts from it.
        backupRetentionPeriod: 0,
        skipFinalSnapshot: true,
        applyImmediately: false,
      },
      { ...child, dependsOn: logGroups.get(replicaIdentifier), retainOnDelete },
    );

    this.masterSecretArn = this.primary.masterUserSecrets.apply((secrets) => {
      const arn = secrets?.[0]?.secretArn;
      if (!arn) throw new Error(`${identifier} has no RDS-managed master secret`);
      return arn;
    });

    // Generated once; a rotation outside Pulumi must not be reverted by the next `pulumi up`.
    const loginPassword = (slug: string, username: string, who: string) => {
      const secret = new aws.secretsmanager.Secret(
        `${prefix}-${slug}`,
        {
          name: `${prefix}/${slug}`,
          description: `Password of the ${username} role ${who} (set on the role by the migration task)`,
          kmsKeyId: args.secretsKey.arn,
          recoveryWindowInDays: args.deletionProtection ? 30 : 7,
        },
        child,
      );
      new aws.secretsmanager.SecretVersion(
        `${prefix}-${slug}`,
        { secretId: secret.id, secretString: pulumi.secret(randomBytes(32).toString('base64url')) },
        { ...child, ignoreChanges: ['secretString'] },
      );
      return secret;
    };
    this.appPasswordSecret = loginPassword('db-app-password', APP_USERNAME, 'the DMS API connects as');
    this.exporterPasswordSecret = loginPassword('db-exporter-password', EXPORTER_USERNAME, 'the audit export and purge jobs connect as');

    this.registerOutputs({
      dbInstanceIdentifier: this.primary.identifier,
      dbReplicaIdentifier: this.replica.identifier,
      primaryEndpoint: this.primary.address,
      replicaEndpoint: this.replica.address,
    });
  }
}
