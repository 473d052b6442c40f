// The alarm catalogue: every alarm of the platform with its metric, threshold, window, severity
// and runbook section (the table in the platform brief), plus the log metrics it counts.
// The 5xx share is not here: the availability SLO's burn-rate pages (./slo.ts) read the same target
// and load-balancer 5xx counts, and page on what spends the budget rather than on a 5-minute blip.
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

export type Severity = 'P0' | 'P1' | 'P2' | 'P3';
export const SEVERITIES: readonly Severity[] = ['P0', 'P1', 'P2', 'P3'];

/** How CloudWatch reads an evaluation period without data. */
export type MissingData = 'breaching' | 'notBreaching' | 'missing' | 'ignore';

/** An alarm on a count of failures that fires on the first one in a period; no data is no failure. */
export const ON_FIRST_FAILURE = {
  comparisonOperator: 'GreaterThanOrEqualToThreshold',
  threshold: 1,
  evaluationPeriods: 1,
  datapointsToAlarm: 1,
  treatMissingData: 'notBreaching',
} as const;

type Comparison = 'GreaterThanThreshold' | 'GreaterThanOrEqualToThreshold' | 'LessThanThreshold';

/** A count of API log lines whose `event` (CONTRACT §5) is one of `events`. */
export interface LogMetric {
  metricName: string;
  events: readonly string[];
}

export const LOG_METRICS = {
  loginFailures: {
    metricName: 'LoginFailures',
    events: ['auth_login_invalid_user', 'auth_login_bad_password', 'auth_login_locked'],
  },
  loginRateLimited: { metricName: 'LoginRateLimited', events: ['auth_login_rate_limited'] },
  refreshTokenReuse: { metricName: 'RefreshTokenReuse', events: ['auth_refresh_reuse'] },
  sensitiveRateLimited: { metricName: 'SensitiveRateLimited', events: ['api_sensitive_rate_limited'] },
  auditWriteFailed: { metricName: 'AuditWriteFailed', events: ['audit_write_failed'] },
  // The sequencer retries every 2 s, so a steady failure logs about 30 a minute (api/audit/sequencer.ts).
  auditSequencerFailed: { metricName: 'AuditSequencerFailed', events: ['audit_sequencer_failed'] },
  unhandledErrors: { metricName: 'UnhandledErrors', events: ['unhandled_error', 'unhandled_error_non_error'] },
  // The one-off commands (api/cli.ts) log to the API log group under their own stream prefixes.
  scheduledJobFailed: { metricName: 'ScheduledJobFailed', events: ['command_failed', 'command_refused'] },
  // A request answered 503 because the database was away, and a failed readiness probe.
  databaseUnreachable: { metricName: 'DatabaseUnreachable', events: ['dependency_unavailable', 'readiness_failed'] },
  processFatalErrors: { metricName: 'ProcessFatalErrors', events: ['process_fatal_error'] },
  // The leading audit sequencer's hourly count of distinct patients per user (api/audit/accesses.ts).
  heavyPhiAccess: { metricName: 'HeavyPhiAccess', events: ['phi_access_heavy_user'] },
} as const satisfies Record<string, LogMetric>;

/** CloudWatch Logs JSON filter pattern matching lines whose `event` is one of `events`. */
export function eventFilterPattern(events: readonly string[]): string {
  return `{ ${events.map((event) => `($.event = "${event}")`).join(' || ')} }`;
}

/** Custom metric the scheduled snapshot check publishes, in hours. */
export const SNAPSHOT_AGE_METRIC = 'LatestSnapshotAgeHours';
/** The same scheduled check publishes the age of the oldest DR drill instance still running (0: none). */
export const DRILL_INSTANCE_AGE_METRIC = 'OldestDrillInstanceAgeHours';
/** A drill waits up to 2 h for its restore and 30 min for verify: one older was left behind (or kept). */
export const DRILL_INSTANCE_MAX_AGE_HOURS = 6;
/**
 * The same check publishes the primary's allocated storage in bytes. RDS publishes free storage
 * but no allocated-storage metric, and storage autoscaling changes the allocation behind the
 * program's back, so only a measured allocation tells how much of the ceiling is used.
 */
export const ALLOCATED_STORAGE_METRIC = 'AllocatedStorageBytes';
/** Headroom to the autoscaling ceiling under this share of it: raise the ceiling in working hours. */
export const STORAGE_CEILING_HEADROOM_PERCENT = 10;
/** ACM renews the certificates it issued from 60 days before expiry; under 30 left, renewal is stuck (or the certificate is imported). */
export const CERTIFICATE_MIN_DAYS_LEFT = 30;

/** One CloudWatch metric and the statistic read from it (`p95` style names are percentiles). */
export interface MetricRef {
  namespace: string;
  metricName: string;
  dimensions: Record<string, pulumi.Input<string>>;
  stat: string;
}

/** Metric math over named metrics; the alarm compares the expression's value. */
export interface MetricMath {
  expression: string;
  label: string;
  metrics: Record<string, MetricRef>;
}

export interface AlarmDefinition {
  /** Alarm name is `dms-<stack>-<slug>`. */
  slug: string;
  severity: Severity;
  /** What the alarm means to the engineer reading it; the description's first sentence. */
  meaning: string;
  /** Section under `runbooks/`: `<file>.md#<anchor>`. */
  runbook: string;
  source: MetricRef | MetricMath;
  comparison: Comparison;
  threshold: number;
  periodSeconds: number;
  evaluationPeriods: number;
  treatMissingData: MissingData;
}

/** The deployed resources the alarms watch. */
export interface AlarmTargets {
  /** Namespace of the log and custom metrics, `DMS/<stack>`. */
  namespace: string;
  region: string;
  albArnSuffix: pulumi.Input<string>;
  targetGroupArnSuffix: pulumi.Input<string>;
  clusterName: pulumi.Input<string>;
  serviceName: pulumi.Input<string>;
  wafWebAclMetricName: pulumi.Input<string>;
  dbInstanceIdentifier: pulumi.Input<string>;
  dbReplicaIdentifier?: pulumi.Input<string> | undefined;
  /** Nominal memory of the primary's instance class (bytes). */
  dbMemoryBytes: number;
  /** `max_connections` the primary runs with. */
  dbMaxConnections: number;
  /** Allocated storage of the primary (bytes). */
  dbAllocatedStorageBytes: number;
  /** The storage autoscaling ceiling of the primary, `maxAllocatedStorageGb` (bytes). */
  dbMaxAllocatedStorageBytes: number;
  /** ACM certificate of the HTTPS listener; no alarm without one. */
  certificateArn?: pulumi.Input<string> | undefined;
  /** The AWS Backup vault of the stack's region (its jobs, and the copy jobs out of it). */
  backupVaultName: pulumi.Input<string>;
}

const MINUTE = 60;

/** One data point over the whole window: "more than N in 5 min" is a single 5-minute sum. */
const singleWindow = (minutes: number) => ({ periodSeconds: minutes * MINUTE, evaluationPeriods: 1 });
/** A condition that holds "for N min": every 1-minute data point breaches, N in a row. */
const sustainedFor = (minutes: number) => ({ periodSeconds: MINUTE, evaluationPeriods: minutes });

function logCount(namespace: string, metric: LogMetric): MetricRef {
  return { namespace, metricName: metric.metricName, dimensions: {}, stat: 'Sum' };
}

// treatMissingData, chosen per alarm:
// - log-metric counters publish only when a matching line arrives, and WAF publishes BlockedRequests
//   only when it blocks: no data means nothing happened (notBreaching);
// - ALB latency has no data without traffic: nothing to judge (notBreaching);
// - HealthyHostCount and Container Insights task counts are published every minute while the
//   service exists, so their absence is itself the outage or a blind alarm (breaching);
// - RDS gauges pause during reboots and failovers, which the RDS event subscription reports; a gap
//   should neither page for saturation nor clear a real one (missing keeps the current state);
// - a replica reports ReplicaLag only while it replicates: after a failover promoted it, or once it
//   is deleted, there is no lag to judge, and the P1 lag alarm must not page for that (notBreaching);
//   `rds-replica-missing` is the separate check that the replica the stack expects exists and
//   replicates: the same metric's sample count, whose absence is the finding (breaching);
// - the snapshot check publishes nothing when it finds no snapshot or fails (breaching); the
//   drill-instance age comes from the same run, whose failure the snapshot alarm already reports
//   (notBreaching), and so does the allocated storage behind the ceiling headroom (missing: keep the state);
// - ACM stops publishing DaysToExpiry when the certificate has expired (breaching).
export function alarmDefinitions(targets: AlarmTargets): AlarmDefinition[] {
  const { namespace } = targets;
  const targetGroup = { LoadBalancer: targets.albArnSuffix, TargetGroup: targets.targetGroupArnSuffix };
  const service = { ClusterName: targets.clusterName, ServiceName: targets.serviceName };
  const primary = { DBInstanceIdentifier: targets.dbInstanceIdentifier };
  const alb = (metricName: string, stat: string): MetricRef => ({
    namespace: 'AWS/ApplicationELB',
    metricName,
    dimensions: targetGroup,
    stat,
  });
  const backupJobs = (metricName: string): MetricRef => ({ namespace: 'AWS/Backup', metricName, dimensions: { BackupVaultName: targets.backupVaultName }, stat: 'Sum' });
  const rds = (metricName: string, stat: string): MetricRef => ({
    namespace: 'AWS/RDS',
    metricName,
    dimensions: primary,
    stat,
  });

  const definitions: AlarmDefinition[] = [
    {
      slug: 'login-failures',
      severity: 'P1',
      meaning: 'More than 50 failed logins (unknown user, bad password, locked account) in 5 minutes',
      runbook: 'auth-abuse.md#login-failure-spike',
      source: logCount(namespace, LOG_METRICS.loginFailures),
      comparison: 'GreaterThanThreshold',
      threshold: 50,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'login-rate-limited',
      severity: 'P2',
      meaning: 'More than 20 logins refused by the login rate limit in 5 minutes',
      runbook: 'auth-abuse.md#login-flooding',
      source: logCount(namespace, LOG_METRICS.loginRateLimited),
      comparison: 'GreaterThanThreshold',
      threshold: 20,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'refresh-token-reuse',
      severity: 'P1',
      meaning: 'A rotated refresh token was presented again, so a stolen token may be in use',
      runbook: 'auth-abuse.md#refresh-token-reuse',
      source: logCount(namespace, LOG_METRICS.refreshTokenReuse),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'waf-blocked-spike',
      severity: 'P2',
      meaning: 'The WAF blocked more than 1000 requests in 5 minutes',
      runbook: 'auth-abuse.md#waf-blocked-spike',
      source: {
        namespace: 'AWS/WAFV2',
        metricName: 'BlockedRequests',
        dimensions: { WebACL: targets.wafWebAclMetricName, Rule: 'ALL', Region: targets.region },
        stat: 'Sum',
      },
      comparison: 'GreaterThanThreshold',
      threshold: 1000,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'sensitive-rate-limited',
      severity: 'P2',
      meaning: 'More than 100 requests to sensitive prefixes answered 429 in 5 minutes',
      runbook: 'rate-limits.md#sensitive-prefix-rate-limits',
      source: logCount(namespace, LOG_METRICS.sensitiveRateLimited),
      comparison: 'GreaterThanThreshold',
      threshold: 100,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'audit-write-failed',
      severity: 'P0',
      meaning: 'An audit record could not be written, so sensitive changes are refused with 503',
      runbook: 'audit-log-failure.md#audit-write-failed',
      source: logCount(namespace, LOG_METRICS.auditWriteFailed),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      ...singleWindow(1),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'bulk-patient-access',
      severity: 'P1',
      meaning: 'A user accessed more distinct patients in the last hour than AUDIT_HEAVY_USER_PATIENTS allows, so records may be being read in bulk',
      runbook: 'breach-response.md#bulk-patient-access',
      source: logCount(namespace, LOG_METRICS.heavyPhiAccess),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'unhandled-errors',
      severity: 'P1',
      meaning: 'More than 10 unhandled errors in the API in 5 minutes',
      runbook: 'errors-and-rollback.md#unhandled-error-spike',
      source: logCount(namespace, LOG_METRICS.unhandledErrors),
      comparison: 'GreaterThanThreshold',
      threshold: 10,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'alb-no-healthy-targets',
      severity: 'P0',
      meaning: 'The API target group has no healthy target, so the API is down',
      runbook: 'errors-and-rollback.md#no-healthy-targets',
      source: alb('HealthyHostCount', 'Minimum'),
      comparison: 'LessThanThreshold',
      threshold: 1,
      ...sustainedFor(1),
      treatMissingData: 'breaching',
    },
    {
      slug: 'alb-unhealthy-targets',
      severity: 'P1',
      meaning: 'At least one API target failed its health checks for 5 minutes',
      runbook: 'errors-and-rollback.md#unhealthy-targets',
      source: alb('UnHealthyHostCount', 'Maximum'),
      comparison: 'GreaterThanThreshold',
      threshold: 0,
      ...sustainedFor(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'ecs-running-below-desired',
      severity: 'P1',
      meaning: 'The API service ran fewer tasks than desired for 5 minutes',
      runbook: 'errors-and-rollback.md#tasks-below-desired',
      source: {
        expression: 'desired - running',
        label: 'Tasks missing (desired - running)',
        metrics: {
          desired: { namespace: 'ECS/ContainerInsights', metricName: 'DesiredTaskCount', dimensions: service, stat: 'Maximum' },
          running: { namespace: 'ECS/ContainerInsights', metricName: 'RunningTaskCount', dimensions: service, stat: 'Minimum' },
        },
      },
      comparison: 'GreaterThanThreshold',
      threshold: 0,
      ...sustainedFor(5),
      treatMissingData: 'breaching',
    },
    {
      slug: 'alb-p95-latency',
      severity: 'P1',
      meaning: 'API p95 response time above 2 seconds for 5 minutes',
      runbook: 'performance.md#high-latency',
      source: alb('TargetResponseTime', 'p95'),
      comparison: 'GreaterThanThreshold',
      threshold: 2,
      ...sustainedFor(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'ecs-cpu-high',
      severity: 'P2',
      meaning: 'API service CPU above 80% for 5 minutes',
      runbook: 'performance.md#ecs-cpu-or-memory-high',
      source: { namespace: 'AWS/ECS', metricName: 'CPUUtilization', dimensions: service, stat: 'Average' },
      comparison: 'GreaterThanThreshold',
      threshold: 80,
      ...sustainedFor(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'ecs-memory-high',
      severity: 'P2',
      meaning: 'API service memory above 85% for 5 minutes',
      runbook: 'performance.md#ecs-cpu-or-memory-high',
      source: { namespace: 'AWS/ECS', metricName: 'MemoryUtilization', dimensions: service, stat: 'Average' },
      comparison: 'GreaterThanThreshold',
      threshold: 85,
      ...sustainedFor(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'rds-cpu-high',
      severity: 'P2',
      meaning: 'Primary database CPU above 80% for 10 minutes',
      runbook: 'database.md#database-cpu-high',
      source: rds('CPUUtilization', 'Average'),
      comparison: 'GreaterThanThreshold',
      threshold: 80,
      ...sustainedFor(10),
      treatMissingData: 'missing',
    },
    // Storage autoscaling grows the volume when free storage falls under 10% of what is allocated
    // (by at least 10%, at most once every 6 hours, up to the ceiling), so free storage dipping to
    // 10% is normal growth, not a page. RDS publishes no allocated-storage metric, so this reads
    // free storage against the allocation at creation: under 5% of it (less than any allocation
    // since keeps when autoscaling works) means autoscaling is at its ceiling or cannot keep up.
    // Source: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.Autoscaling.html
    {
      slug: 'rds-free-storage-low',
      severity: 'P1',
      meaning: 'Primary database free storage below 5% of its storage at creation: autoscaling is at its ceiling or not keeping up',
      runbook: 'database.md#free-storage-low',
      source: rds('FreeStorageSpace', 'Minimum'),
      comparison: 'LessThanThreshold',
      threshold: 0.05 * targets.dbAllocatedStorageBytes,
      ...singleWindow(5),
      treatMissingData: 'missing',
    },
    {
      slug: 'rds-storage-filling-fast',
      severity: 'P1',
      meaning: 'At the rate of the last two hours the primary database runs out of free storage within 12 hours',
      runbook: 'database.md#free-storage-low',
      source: {
        // RATE is bytes per second (negative while storage fills); a volume growing or space freed
        // is no threat. Hours left = free / consumption per hour.
        expression: 'IF(RATE(free) < 0, free / ((0 - RATE(free)) * 3600), 1000)',
        label: 'Hours until free storage runs out',
        metrics: { free: rds('FreeStorageSpace', 'Minimum') },
      },
      comparison: 'LessThanThreshold',
      threshold: 12,
      periodSeconds: 3600,
      evaluationPeriods: 2,
      treatMissingData: 'missing',
    },
    // Storage autoscaling stops at maxAllocatedStorage, and raising that ceiling needs it to be at
    // least 10% over the current allocation: near the ceiling, the next automatic growth step
    // (10 GiB or 10% of the allocation) no longer fits, and free storage then only falls.
    // Headroom = ceiling - used, used = allocated (published by the scheduled check) - free.
    // Source: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIOPS.Autoscaling.html
    {
      slug: 'rds-storage-ceiling-near',
      severity: 'P2',
      meaning: `Primary database storage in use is within ${STORAGE_CEILING_HEADROOM_PERCENT}% of the storage autoscaling ceiling (maxAllocatedStorageGb), so autoscaling can soon grow it no further`,
      runbook: 'database.md#storage-ceiling-near',
      source: {
        expression: `100 * (${targets.dbMaxAllocatedStorageBytes} - (allocated - free)) / ${targets.dbMaxAllocatedStorageBytes}`,
        label: 'Headroom to the storage autoscaling ceiling (% of the ceiling)',
        metrics: {
          allocated: { namespace, metricName: ALLOCATED_STORAGE_METRIC, dimensions: primary, stat: 'Maximum' },
          free: rds('FreeStorageSpace', 'Minimum'),
        },
      },
      comparison: 'LessThanThreshold',
      threshold: STORAGE_CEILING_HEADROOM_PERCENT,
      ...singleWindow(60),
      treatMissingData: 'missing',
    },
    {
      slug: 'rds-connections-high',
      severity: 'P1',
      meaning: 'Primary database connections above 80% of max_connections for 5 minutes',
      runbook: 'database.md#connections-high',
      source: rds('DatabaseConnections', 'Maximum'),
      comparison: 'GreaterThanThreshold',
      threshold: 0.8 * targets.dbMaxConnections,
      ...sustainedFor(5),
      treatMissingData: 'missing',
    },
    {
      slug: 'rds-freeable-memory-low',
      severity: 'P2',
      meaning: 'Primary database freeable memory below 10% of instance memory for 5 minutes',
      runbook: 'database.md#freeable-memory-low',
      source: rds('FreeableMemory', 'Average'),
      comparison: 'LessThanThreshold',
      threshold: 0.1 * targets.dbMemoryBytes,
      ...sustainedFor(5),
      treatMissingData: 'missing',
    },
    {
      slug: 'rds-snapshot-stale',
      severity: 'P1',
      meaning: 'The latest automated database snapshot is older than 26 hours, or the check could not tell',
      runbook: 'backup-restore.md#snapshot-stale',
      source: {
        namespace,
        metricName: SNAPSHOT_AGE_METRIC,
        dimensions: primary,
        stat: 'Maximum',
      },
      comparison: 'GreaterThanThreshold',
      threshold: 26,
      ...singleWindow(60),
      treatMissingData: 'breaching',
    },
    // AWS/Backup job counts per vault; a copy job is counted in the region and vault it copies out of
    // (https://docs.aws.amazon.com/aws-backup/latest/devguide/cloudwatch.html). No data: no job ended.
    {
      slug: 'backup-job-failed',
      severity: 'P1',
      meaning: 'An AWS Backup job of the database or the X-ray bucket failed or expired without starting',
      runbook: 'backup-restore.md#backup-job-failed',
      source: {
        expression: 'FILL(failed, 0) + FILL(expired, 0)',
        label: 'Backup jobs failed or expired',
        metrics: { failed: backupJobs('NumberOfBackupJobsFailed'), expired: backupJobs('NumberOfBackupJobsExpired') },
      },
      comparison: 'GreaterThanThreshold',
      threshold: 0,
      ...singleWindow(60),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'backup-copy-failed',
      severity: 'P1',
      meaning: 'Copying a recovery point to the DR region failed: the DR region lacks that day',
      runbook: 'backup-restore.md#backup-copy-failed',
      source: backupJobs('NumberOfCopyJobsFailed'),
      comparison: 'GreaterThanThreshold',
      threshold: 0,
      ...singleWindow(60),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'drill-instance-left',
      severity: 'P3',
      meaning: `A DR drill instance (a copy of patient data, tagged dms:drill) has been running for more than ${DRILL_INSTANCE_MAX_AGE_HOURS} hours`,
      runbook: 'backup-restore.md#drill-instance-left-running',
      source: { namespace, metricName: DRILL_INSTANCE_AGE_METRIC, dimensions: primary, stat: 'Maximum' },
      comparison: 'GreaterThanThreshold',
      threshold: DRILL_INSTANCE_MAX_AGE_HOURS,
      ...singleWindow(60),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'database-unreachable',
      severity: 'P1',
      meaning: 'More than 10 requests or readiness probes found the database unreachable in 5 minutes',
      runbook: 'database.md#connectivity-loss',
      source: logCount(namespace, LOG_METRICS.databaseUnreachable),
      comparison: 'GreaterThanThreshold',
      threshold: 10,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'audit-sequencer-failed',
      severity: 'P1',
      meaning: 'The audit sequencer failed for about 5 of the last 10 minutes: records wait unchained in audit_queue',
      runbook: 'audit-log-failure.md#audit-sequencer-failing',
      source: logCount(namespace, LOG_METRICS.auditSequencerFailed),
      comparison: 'GreaterThanOrEqualToThreshold',
      // One attempt every 2 s: 150 is five minutes of failing, longer than a Multi-AZ failover
      // (database-unreachable pages that one), short enough that the trail is not left unanchored for long.
      threshold: 150,
      ...singleWindow(10),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'process-fatal-error',
      severity: 'P1',
      meaning: 'An API task hit an error outside any request (unhandled rejection or uncaught exception) and exited',
      runbook: 'errors-and-rollback.md#task-exited-on-a-fatal-error',
      source: logCount(namespace, LOG_METRICS.processFatalErrors),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      ...singleWindow(5),
      treatMissingData: 'notBreaching',
    },
    {
      slug: 'scheduled-job-failed',
      severity: 'P2',
      meaning: 'A one-off task (audit export or purge, migration) failed or refused to run in the last hour',
      runbook: 'audit-log-failure.md#audit-export-or-purge-failing',
      source: logCount(namespace, LOG_METRICS.scheduledJobFailed),
      comparison: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      // The export runs hourly: an hour-long window keeps the alarm up until a run succeeds or
      // the next one fails again, instead of clearing five minutes after each failure.
      ...singleWindow(60),
      treatMissingData: 'notBreaching',
    },
  ];
  if (targets.certificateArn !== undefined) {
    // ACM publishes DaysToExpiry per certificate (dimension CertificateArn, namespace
    // AWS/CertificateManager) at least daily (observed every 12 hours), and stops once the certificate has expired: no
    // data is then the outage itself (breaching), read over a day.
    // Sources: https://docs.aws.amazon.com/acm/latest/userguide/cloudwatch-metrics.html and the CDK's
    // metricDaysToExpiry (Minimum over 1 day; "treat missing data as breaching").
    definitions.push({
      slug: 'acm-certificate-expiring',
      severity: 'P2',
      meaning: `The API's TLS certificate (the load balancer's, in ACM) expires in fewer than ${CERTIFICATE_MIN_DAYS_LEFT} days, or ACM no longer reports it`,
      runbook: 'secret-rotation.md#tls-certificate-expiring',
      source: { namespace: 'AWS/CertificateManager', metricName: 'DaysToExpiry', dimensions: { CertificateArn: targets.certificateArn }, stat: 'Minimum' },
      comparison: 'LessThanThreshold',
      threshold: CERTIFICATE_MIN_DAYS_LEFT,
      ...singleWindow(24 * 60),
      treatMissingData: 'breaching',
    });
  }
  if (targets.dbReplicaIdentifier !== undefined) {
    const replicaLag = (stat: string): MetricRef => ({
      namespace: 'AWS/RDS',
      metricName: 'ReplicaLag',
      dimensions: { DBInstanceIdentifier: targets.dbReplicaIdentifier! },
      stat,
    });
    definitions.push(
      {
        slug: 'rds-replica-lag',
        severity: 'P1',
        meaning: 'The read replica is more than 60 seconds behind the primary for 5 minutes',
        runbook: 'database.md#replica-lag',
        source: replicaLag('Maximum'),
        comparison: 'GreaterThanThreshold',
        threshold: 60,
        ...sustainedFor(5),
        treatMissingData: 'notBreaching',
      },
      {
        slug: 'rds-replica-missing',
        severity: 'P2',
        meaning: 'The read replica the stack expects has reported no replication lag for 15 minutes: it is gone, stopped, or was promoted by a failover, and there is no replica to fail over to',
        runbook: 'database.md#replica-missing',
        source: replicaLag('SampleCount'),
        comparison: 'LessThanThreshold',
        threshold: 1,
        periodSeconds: 5 * MINUTE,
        evaluationPeriods: 3,
        treatMissingData: 'breaching',
      },
    );
  }
  return definitions;
}

/** `P<n>: <meaning>. Runbook: <base>/runbooks/<file>.md#<anchor>` (the contract's description). */
export function alarmDescription(definition: AlarmDefinition, runbookBaseUrl: string): string {
  const base = runbookBaseUrl.replace(/\/+$/, '');
  return `${definition.severity}: ${definition.meaning}. Runbook: ${base}/runbooks/${definition.runbook}`;
}

function isMath(source: MetricRef | MetricMath): source is MetricMath {
  return 'expression' in source;
}

const isPercentile = (stat: string) => /^p\d+(\.\d+)?$/.test(stat);

/** The metric half of `aws.cloudwatch.MetricAlarmArgs` for a definition. */
export function alarmMetricArgs(
  definition: Pick<AlarmDefinition, 'source' | 'periodSeconds'>,
): Pick<
  aws.cloudwatch.MetricAlarmArgs,
  'namespace' | 'metricName' | 'dimensions' | 'statistic' | 'extendedStatistic' | 'period' | 'metricQueries'
> {
  const { source, periodSeconds } = definition;
  if (isMath(source)) {
    return {
      metricQueries: [
        { id: 'alarm', expression: source.expression, label: source.label, returnData: true },
        ...Object.entries(source.metrics).map(([id, metric]) => ({
          id,
          returnData: false,
          metric: {
            namespace: metric.namespace,
            metricName: metric.metricName,
            dimensions: metric.dimensions,
            stat: metric.stat,
            period: periodSeconds,
          },
        })),
      ],
    };
  }
  return {
    namespace: source.namespace,
    metricName: source.metricName,
    dimensions: source.dimensions,
    period: periodSeconds,
    ...(isPercentile(source.stat) ? { extendedStatistic: source.stat } : { statistic: source.stat }),
  };
}
