/**
 * Stack configuration: read once from `Pulumi.<stack>.yaml`, validated, typed.
 *
 * Everything that differs between environments (region, AZ count, CIDR, sizes, counts, retention,
 * domain/certificate, blocked IPs, budget, on-call contacts) lives in config, never in code.
 * A bad value stops `pulumi up` before the first resource, with a message naming the key.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { isIP } from 'node:net';
import { HEAVY_USER_PATIENTS_RANGE } from '../api/config.js';
import { DEFAULT_LEVEL_DELAYS, type LevelDelays } from './monitoring/escalation/levels.js';

/** Thrown for a missing or malformed config value; `key` is the full config path (`dms:database.instanceClass`). */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`config ${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** The project's config namespace (`dms:<section>` in the stack files). */
export const CONFIG_NAMESPACE = 'dms';

/**
 * RDS instance classes the program supports, with their memory. The monitoring alarms need the
 * memory (freeable-memory threshold) and the `max_connections` it implies, so a class outside this
 * table is a config error rather than a silently wrong alarm.
 */
export const DB_INSTANCE_MEMORY_GIB: Readonly<Record<string, number>> = {
  'db.t4g.micro': 1,
  'db.t4g.small': 2,
  'db.t4g.medium': 4,
  'db.t4g.large': 8,
  'db.m7g.large': 8,
  'db.m7g.xlarge': 16,
  'db.m7g.2xlarge': 32,
  'db.r7g.large': 16,
  'db.r7g.xlarge': 32,
  'db.r7g.2xlarge': 64,
};

/** Retention values CloudWatch Logs accepts (days). */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Fargate CPU units and the memory sizes (MiB) each allows. */
const FARGATE_MEMORY_MIB: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: [1024, 2048, 3072, 4096],
  1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
};

/**
 * The API's HTTP keep-alive timeout (seconds). The ALB idle timeout must stay below it, or the ALB
 * reuses a connection the API has just closed and answers 502.
 */
export const API_KEEP_ALIVE_TIMEOUT_S = 65;

/**
 * An engineer the escalation pages. All three values are personal data: the stack files hold them
 * only as `pulumi config set --secret --path` entries, and the program keeps them secret.
 */
export interface OnCallContact {
  /** Person's name (kept in the escalation's contacts secret, never logged). */
  name: string;
  /** E-mail for escalation level 2. */
  email: string;
  /** E.164 phone number (SMS and voice). */
  phone: string;
}

/** The optional paging-service webhook (PagerDuty Events API v2 shape), sent at level 1. */
export interface PagingWebhook {
  /** HTTPS endpoint, e.g. `https://events.pagerduty.com/v2/enqueue`; a secret. */
  url: string;
  /** The service's integration (routing) key; a secret. */
  routingKey: string;
}

/** How the API runs and scales (`dms:service`). */
export interface ServiceSettings {
  /** Fargate CPU units per API task. */
  cpu: number;
  /** Fargate memory (MiB) per API task. */
  memory: number;
  /** Autoscaling floor (also the desired count at creation). */
  minTasks: number;
  /** Autoscaling ceiling. */
  maxTasks: number;
  /** Target average CPU utilisation (%). */
  cpuTargetPercent: number;
  /** Target average memory utilisation (%). */
  memoryTargetPercent: number;
  /** Seconds between scale-out steps. */
  scaleOutCooldownSeconds: number;
  /** Seconds between scale-in steps. */
  scaleInCooldownSeconds: number;
  /** EventBridge Scheduler expression for `audit:export`. */
  auditExportSchedule: string;
  /** EventBridge Scheduler expression for `audit:purge`. */
  auditPurgeSchedule: string;
  /** IANA time zone the schedules are evaluated in. */
  scheduleTimezone: string;
  /**
   * Share of API requests traced, 0 to 1 (`traceSampleRatio`, default 0). Above 0 the API task runs
   * the AWS Distro for OpenTelemetry collector beside the API (its CPU and memory come out of
   * `cpu` and `memory`) and sends the sampled traces to AWS X-Ray; 0 runs neither.
   */
  traceSampleRatio: number;
  /**
   * Distinct patients one user may access in an hour before the API logs `phi_access_heavy_user`
   * and `bulk-patient-access` (P1) pages (`auditHeavyUserPatients`, the API's
   * `AUDIT_HEAVY_USER_PATIENTS`). A list page counts every patient on it, so it must sit above the
   * busiest desk's normal hour, which differs between a small clinic and a hospital.
   */
  auditHeavyUserPatients: number;
}

/** The shared rate-limit store (`dms:cache`). */
export interface CacheSettings {
  /** Valkey for shared rate limits; required once more than one task can run. */
  enabled: boolean;
  /** ElastiCache node type. */
  nodeType: string;
  /** Replicas besides the primary (0 in staging; 1+ gives automatic failover). */
  replicas: number;
}

/** The PostgreSQL instances (`dms:database`). */
export interface DatabaseSettings {
  /** Primary instance class (one of {@link DB_INSTANCE_MEMORY_GIB}). */
  instanceClass: string;
  /** Read replica instance class. */
  replicaInstanceClass: string;
  /**
   * PostgreSQL major version (`"17"`). RDS applies minor upgrades itself (autoMinorVersionUpgrade);
   * a pinned minor would make the next `pulumi up` ask for a downgrade, which RDS refuses.
   */
  engineVersion: string;
  /** Initial storage (GiB). */
  allocatedStorageGb: number;
  /** Storage autoscaling ceiling (GiB). */
  maxAllocatedStorageGb: number;
  /** Synchronous standby in another AZ. */
  multiAz: boolean;
  /** Automated backup retention (days, 1-35). */
  backupRetentionDays: number;
  /** Refuse deletion of the instance (and take a final snapshot on delete). */
  deletionProtection: boolean;
  /** Performance Insights retention (7 free, a multiple of 31, or 731). */
  performanceInsightsRetentionDays: number;
  /** Enhanced monitoring granularity (seconds). */
  monitoringIntervalSeconds: number;
  /** Daily backup window (UTC, `hh:mm-hh:mm`). */
  backupWindow: string;
  /** Weekly maintenance window (UTC, `ddd:hh:mm-ddd:hh:mm`). */
  maintenanceWindow: string;
  /**
   * Failovers to the read replica this stack has had (0 when absent). Each one moves the primary to
   * the instance that was its replica and declares a new replica of it; raised by one after
   * `npm run ops -- failover` (runbooks/database.md#failover-to-the-replica) and never lowered.
   */
  failovers: number;
}

/**
 * Stacks that hold real PHI, held to the production rules (deletion protection, 35 days of backups,
 * HTTPS only, COMPLIANCE-locked audit exports, keys kept with the data): `production` and a single
 * practice's `small`. The policy pack enforces the same lists.
 */
export const PRODUCTION_STACKS: readonly string[] = ['production', 'small'];
/** Of those, the stacks that must also survive an AZ loss (Multi-AZ primary, two tasks in two AZs). */
export const HIGH_AVAILABILITY_STACKS: readonly string[] = ['production'];

/** `dms:recovery`: AWS Backup, its copy to the DR region, and S3 replication there. */
export interface RecoverySettings {
  /** Region the backups are copied to and the buckets replicated to; never the stack's own region. */
  drRegion: string;
  /** Days every AWS Backup recovery point is kept, in both vaults (production: 35 at least). */
  backupRetentionDays: number;
  /** When the daily backup starts: an AWS Backup `cron(...)` expression (UTC). */
  backupSchedule: string;
  /**
   * Vault Lock mode of both vaults. COMPLIANCE: once the cool-off (`vaultLockChangeableForDays`)
   * has passed, nobody, the root user included, can delete a recovery point early, shorten its
   * retention, or remove the lock. GOVERNANCE: the same rules, but the lock can be changed or
   * removed by anyone allowed backup:DeleteBackupVaultLockConfiguration.
   */
  vaultLockMode: 'COMPLIANCE' | 'GOVERNANCE';
  /** COMPLIANCE only: days from `pulumi up` until the lock becomes immutable (3 at least). */
  vaultLockChangeableForDays?: number;
  /** S3 Replication Time Control (15-minute replication SLA, with metrics) on both replicated buckets. */
  replicationTimeControl: boolean;
}

export interface StackConfig {
  /** Stack name (`production`, `staging`, ...). */
  stack: string;
  /** Production turns on the protections a shared environment must not have off. */
  isProduction: boolean;
  /** AWS region (`aws:region`). */
  region: string;
  network: {
    /** Availability zones to spread subnets over (3 in production, 2 in staging). */
    azCount: number;
    /** VPC IPv4 CIDR (a /16 to /20; see `subnetLayout` for how it is carved per AZ and tier). */
    cidr: string;
    /**
     * `per-az`: one NAT gateway per AZ (no cross-AZ dependency); `single`: one, cheaper; `none`: no
     * internet path from the tasks at all (they reach AWS through the VPC endpoints only).
     */
    natGateways: 'per-az' | 'single' | 'none';
    /** AZs the API and job tasks (and the interface endpoints) run in: the first `taskAzCount` of `azCount`. */
    taskAzCount: number;
  };
  logs: {
    /** Retention for every log group the program creates (API, flow logs, WAF, jobs). */
    retentionDays: number;
  };
  api: {
    /** Public host name of the API, when the clinic has one. */
    domainName?: string;
    /** Route 53 hosted zone for `domainName`: the program issues and validates the certificate and the alias record. */
    hostedZoneId?: string;
    /** An existing ACM certificate for `domainName` (instead of `hostedZoneId`). */
    certificateArn?: string;
    /** ALB idle timeout; must be below the API's keep-alive timeout. */
    idleTimeoutSeconds: number;
  };
  service: ServiceSettings;
  cache: CacheSettings;
  database: DatabaseSettings;
  storage: {
    /** Object Lock retention and expiry of audit exports (days). */
    auditRetentionDays: number;
    /** `COMPLIANCE` (nobody can shorten it, not even root) or `GOVERNANCE`. */
    auditObjectLockMode: 'COMPLIANCE' | 'GOVERNANCE';
    /** Days audit exports stay in S3 Standard before Glacier. */
    auditHotDays: number;
    /** The web client's origins: allowed to upload X-rays with presigned requests, and the API's `CORS_ORIGINS`. */
    xrayCorsOrigins: string[];
    /** Days a replaced or deleted X-ray version is kept. */
    xrayNoncurrentVersionDays: number;
    /** Days ALB access logs are kept. */
    accessLogRetentionDays: number;
  };
  firewall: {
    /** Requests per client IP per 5 minutes, all paths. */
    rateLimitPer5Min: number;
    /** Requests per client IP per 5 minutes to `/auth/login`. */
    loginRateLimitPer5Min: number;
    /** IPv4 CIDRs blocked from the start (the `block-ip` command edits the set afterwards). */
    blockedIpv4: string[];
    /** IPv6 CIDRs blocked from the start. */
    blockedIpv6: string[];
  };
  monitoring: {
    /** Base URL the alarm descriptions link runbooks under (`<base>/runbooks/<file>.md#<anchor>`). */
    runbookBaseUrl: string;
    /** Slack workspace (team) id for AWS Chatbot; with the channel id, level 1 posts to Slack. */
    chatSlackTeamId?: string;
    /** Slack channel id for AWS Chatbot. */
    chatSlackChannelId?: string;
    /** On-call engineer (levels 2 and 3). */
    primaryOnCall: OnCallContact;
    /** Backup engineer (level 4 phone call). */
    backupOnCall: OnCallContact;
    /**
     * AWS End User Messaging SMS and Voice phone number or pool that SMS and calls come from: its id
     * (`phone-…`, `pool-…`) or ARN. It must have the SMS and VOICE capabilities.
     */
    originationIdentity: string;
    /** Minutes after the alarm for levels 2, 3 and 4 (`levelDelayMinutes`, default 5/10/15). */
    levelDelays: LevelDelays;
    /** Paging-service webhook, sent at level 1 (`webhook`, optional). */
    webhook?: PagingWebhook;
    /** Address subscribed to the alarm e-mail topic. */
    alarmEmail: string;
    /**
     * Also open an Incident Manager incident record per alarm (`incidentManager`, default false):
     * only for accounts that already have Incident Manager, closed to new customers since 7 Nov 2025.
     */
    incidentManager: boolean;
    /**
     * With `incidentManager`: whether this stack creates the account's replication set (an account
     * has one). Unset means true; set false in every stack but one that share an AWS account.
     */
    createIncidentManagerReplicationSet?: boolean;
  };
  budget: {
    /** Monthly cost budget (USD). */
    monthlyUsd: number;
    /** Addresses notified at 80 %/100 % actual and 100 % forecast. */
    notifyEmails: string[];
  };
  /** Service-level objectives (`dms:slo`, optional; `DEFAULT_SLO` when absent). */
  slo: SloSettings;
  /** Surviving the loss of the region (`dms:recovery`): AWS Backup, the DR region, replication. */
  recovery: RecoverySettings;
  /** Account-level resources the stack may own (`dms:account`, optional; everything off when absent). */
  account: {
    /** Create a multi-region CloudTrail trail (KMS, log validation, Object Lock bucket): for an account that has none. */
    cloudTrail: boolean;
    /** Object Lock retention of the trail's log files (days). */
    trailRetentionDays: number;
  };
}

/** A latency objective: the share of a route class's requests answered within `thresholdMs`. */
export interface LatencyObjective {
  /** Percent of the class's requests (health probes excluded) that must finish within the threshold, over 30 days. */
  target: number;
  /** Time from the API receiving the request to its answer (the EMF `Latency`), in milliseconds. */
  thresholdMs: number;
}

/**
 * Service-level objectives over a rolling 30 days (`dms:slo`); docs/monitoring.md defends the
 * defaults. The burn-rate alarms (infra/monitoring/slo.ts) page when the error budget, 100 − target,
 * is being spent 14.4× (P1) or 6× (P2) faster than the 30 days allow.
 */
export interface SloSettings {
  /** Percent of requests not answered 5xx, by the API or by the load balancer itself. */
  availability: { target: number };
  /**
   * Per route class (api/metrics/emf.ts `routeClass`): reads (GET), writes, auth (sign-in, tokens).
   * A class left out has no objective: a stack whose class sees a few dozen requests a day (a single
   * practice's sign-ins) would page on one slow request, since its burn-rate windows hold one or two.
   */
  latency: Partial<Record<'reads' | 'writes' | 'auth', LatencyObjective>>;
}

/** `dms:slo` when the stack file leaves it out. */
export const DEFAULT_SLO: SloSettings = {
  availability: { target: 99.9 },
  latency: {
    reads: { target: 99, thresholdMs: 300 },
    writes: { target: 99, thresholdMs: 1000 },
    auth: { target: 99, thresholdMs: 1500 },
  },
};

/** `dms:account` when the stack file leaves it out: the clinic's organisation owns the account's trail. */
const NO_ACCOUNT_RESOURCES = { cloudTrail: false, trailRetentionDays: 365 };

/** Config sections the program reads; any other `dms:` key is a typo and fails validation. */
const SECTIONS = [
  'network',
  'logs',
  'api',
  'service',
  'cache',
  'database',
  'storage',
  'firewall',
  'monitoring',
  'budget',
  'recovery',
  'account',
  'slo',
] as const;

type Section = (typeof SECTIONS)[number];

/**
 * Validates raw stack config. `raw` maps full config keys (`aws:region`, `dms:network`, ...) to
 * values as the stack file holds them (objects for structured sections).
 */
export function parseConfig(raw: Readonly<Record<string, unknown>>, stack: string): StackConfig {
  if (!/^[a-z][a-z0-9-]{1,20}$/.test(stack)) {
    throw new ConfigError('stack', `stack name "${stack}" must be lower-case letters, digits and dashes`);
  }
  for (const key of Object.keys(raw)) {
    if (key.startsWith(`${CONFIG_NAMESPACE}:`) && !(SECTIONS as readonly string[]).includes(key.slice(4))) {
      throw new ConfigError(key, `unknown setting (known: ${SECTIONS.join(', ')})`);
    }
  }
  const isProduction = PRODUCTION_STACKS.includes(stack);
  const highAvailability = HIGH_AVAILABILITY_STACKS.includes(stack);
  const region = str(new Field(raw['aws:region'], 'aws:region'), /^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region');
  const section = (name: Section): Section$ => Section$.of(raw, name);

  const network = section('network');
  const cidr = network.str('cidr', /^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|20)$/, 'an IPv4 CIDR from /16 to /20');
  if (isIP(cidr.split('/')[0] ?? '') !== 4) throw new ConfigError(network.key('cidr'), 'not an IPv4 network');
  // Two AZs at least: an ALB and an RDS subnet group each need two (the tasks may use fewer).
  const azCount = network.int('azCount', 2, 6);
  const taskAzCount = network.field('taskAzCount').value === undefined ? azCount : network.int('taskAzCount', 1, azCount);
  if (highAvailability && taskAzCount < 2) throw new ConfigError(network.key('taskAzCount'), `must be at least 2 in ${stack}: tasks must survive an AZ loss`);

  const api = section('api');
  const domainName = api.optStr('domainName', /^(?=.{4,253}$)([a-z0-9](-?[a-z0-9])*\.)+[a-z]{2,}$/, 'a DNS name');
  const hostedZoneId = api.optStr('hostedZoneId', /^Z[A-Z0-9]{5,32}$/, 'a Route 53 hosted zone id');
  const certificateArn = api.optStr('certificateArn', /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/, 'an ACM certificate ARN');
  if ((hostedZoneId || certificateArn) && !domainName) {
    throw new ConfigError(api.key('domainName'), 'required when hostedZoneId or certificateArn is set');
  }
  if (hostedZoneId && certificateArn) {
    throw new ConfigError(api.key('certificateArn'), 'set either hostedZoneId (the program issues the certificate) or certificateArn, not both');
  }
  if (isProduction && !hostedZoneId && !certificateArn) {
    throw new ConfigError(api.key('certificateArn'), 'production serves PHI and must have HTTPS: set hostedZoneId or certificateArn');
  }

  const service = section('service');
  const cpu = service.int('cpu', 256, 4096);
  const allowedMemory = FARGATE_MEMORY_MIB[cpu];
  if (!allowedMemory) throw new ConfigError(service.key('cpu'), `must be one of ${Object.keys(FARGATE_MEMORY_MIB).join(', ')}`);
  const memory = service.int('memory', 512, 30720);
  if (!allowedMemory.includes(memory)) {
    throw new ConfigError(service.key('memory'), `Fargate allows ${allowedMemory.join(', ')} MiB with ${cpu} CPU units`);
  }
  const traceSampleRatio = service.field('traceSampleRatio').value === undefined ? 0 : service.num('traceSampleRatio');
  if (!(traceSampleRatio >= 0 && traceSampleRatio <= 1)) throw new ConfigError(service.key('traceSampleRatio'), 'must be a share from 0 to 1');
  // The collector takes 128 CPU units of the task: a quarter-vCPU task would give half of it away.
  if (traceSampleRatio > 0 && cpu < 512) throw new ConfigError(service.key('traceSampleRatio'), 'tracing needs a task of at least 512 CPU units (the collector sidecar takes 128)');
  const minTasks = service.int('minTasks', 1, 50);
  const maxTasks = service.int('maxTasks', 1, 50);
  if (maxTasks < minTasks) throw new ConfigError(service.key('maxTasks'), `must be >= minTasks (${minTasks})`);
  if (highAvailability && minTasks < 2) throw new ConfigError(service.key('minTasks'), `${stack} needs at least 2 tasks (one per AZ survives an AZ loss)`);

  const cache = section('cache');
  const cacheEnabled = cache.bool('enabled');
  if (maxTasks > 1 && !cacheEnabled) {
    throw new ConfigError(cache.key('enabled'), `must be true when service.maxTasks > 1: per-task rate limits would multiply the login limit by ${maxTasks}`);
  }

  const database = section('database');
  const dbClass = (field: string): string => {
    const value = database.str(field, /^db\.[a-z0-9]+\.[a-z0-9]+$/, 'an RDS instance class');
    if (!(value in DB_INSTANCE_MEMORY_GIB)) {
      throw new ConfigError(database.key(field), `unsupported class (supported: ${Object.keys(DB_INSTANCE_MEMORY_GIB).join(', ')})`);
    }
    return value;
  };
  const instanceClass = dbClass('instanceClass');
  const allocatedStorageGb = database.int('allocatedStorageGb', 20, 65536);
  const maxAllocatedStorageGb = database.int('maxAllocatedStorageGb', 20, 65536);
  if (maxAllocatedStorageGb < allocatedStorageGb) {
    throw new ConfigError(database.key('maxAllocatedStorageGb'), `must be >= allocatedStorageGb (${allocatedStorageGb})`);
  }
  const multiAz = database.bool('multiAz');
  const backupRetentionDays = database.int('backupRetentionDays', 1, 35);
  const deletionProtection = database.bool('deletionProtection');
  if (isProduction) {
    if (highAvailability && !multiAz) throw new ConfigError(database.key('multiAz'), `must be true in ${stack}: its primary must survive an AZ loss`);
    if (!deletionProtection) throw new ConfigError(database.key('deletionProtection'), 'must be true in production');
    if (backupRetentionDays < 35) throw new ConfigError(database.key('backupRetentionDays'), 'production keeps 35 days of backups');
  }
  const failovers = database.field('failovers').value === undefined ? 0 : database.int('failovers', 0, 99);
  const piRetention = database.int('performanceInsightsRetentionDays', 7, 731);
  if (piRetention !== 7 && piRetention !== 731 && piRetention % 31 !== 0) {
    throw new ConfigError(database.key('performanceInsightsRetentionDays'), 'must be 7, a multiple of 31 (months) up to 713, or 731');
  }

  const storage = section('storage');
  const auditRetentionDays = storage.int('auditRetentionDays', 1, 36500);
  const auditHotDays = storage.int('auditHotDays', 30, 3650);
  if (auditHotDays >= auditRetentionDays) {
    throw new ConfigError(storage.key('auditHotDays'), `must be below auditRetentionDays (${auditRetentionDays})`);
  }
  const auditObjectLockMode = storage.oneOf('auditObjectLockMode', ['COMPLIANCE', 'GOVERNANCE'] as const);
  if (isProduction && auditObjectLockMode !== 'COMPLIANCE') {
    throw new ConfigError(storage.key('auditObjectLockMode'), 'production audit exports are locked in COMPLIANCE mode');
  }

  const firewall = section('firewall');
  const monitoring = section('monitoring');
  const chatSlackTeamId = monitoring.optStr('chatSlackTeamId', /^T[A-Z0-9]{6,}$/, 'a Slack team id (T...)');
  const chatSlackChannelId = monitoring.optStr('chatSlackChannelId', /^[CG][A-Z0-9]{6,}$/, 'a Slack channel id (C...)');
  if (Boolean(chatSlackTeamId) !== Boolean(chatSlackChannelId)) {
    throw new ConfigError(monitoring.key(chatSlackTeamId ? 'chatSlackChannelId' : 'chatSlackTeamId'), 'set both Slack ids or neither');
  }
  const budget = section('budget');
  const monthlyUsd = budget.num('monthlyUsd');
  if (!(monthlyUsd > 0)) throw new ConfigError(budget.key('monthlyUsd'), 'must be greater than 0');

  const config: StackConfig = {
    stack,
    isProduction,
    region,
    network: {
      azCount,
      cidr,
      natGateways: network.oneOf('natGateways', ['per-az', 'single', 'none'] as const),
      taskAzCount,
    },
    logs: { retentionDays: section('logs').oneOf('retentionDays', LOG_RETENTION_DAYS) },
    api: {
      ...(domainName ? { domainName } : {}),
      ...(hostedZoneId ? { hostedZoneId } : {}),
      ...(certificateArn ? { certificateArn } : {}),
      idleTimeoutSeconds: api.int('idleTimeoutSeconds', 1, API_KEEP_ALIVE_TIMEOUT_S - 1),
    },
    service: {
      cpu,
      memory,
      minTasks,
      maxTasks,
      cpuTargetPercent: service.int('cpuTargetPercent', 10, 95),
      memoryTargetPercent: service.int('memoryTargetPercent', 10, 95),
      scaleOutCooldownSeconds: service.int('scaleOutCooldownSeconds', 0, 3600),
      scaleInCooldownSeconds: service.int('scaleInCooldownSeconds', 0, 3600),
      auditExportSchedule: service.str('auditExportSchedule', SCHEDULE_EXPRESSION, 'a rate(...) or cron(...) expression'),
      auditPurgeSchedule: service.str('auditPurgeSchedule', SCHEDULE_EXPRESSION, 'a rate(...) or cron(...) expression'),
      scheduleTimezone: service.str('scheduleTimezone', /^[A-Za-z_]+(\/[A-Za-z_+-]+)*$/, 'an IANA time zone'),
      traceSampleRatio,
      // The API's own bounds: a value its tasks would refuse at start-up stops `pulumi up` instead.
      auditHeavyUserPatients: service.int('auditHeavyUserPatients', HEAVY_USER_PATIENTS_RANGE.min, HEAVY_USER_PATIENTS_RANGE.max),
    },
    cache: {
      enabled: cacheEnabled,
      nodeType: cache.str('nodeType', /^cache\.[a-z0-9]+\.[a-z0-9]+$/, 'an ElastiCache node type'),
      replicas: cache.int('replicas', 0, 5),
    },
    database: {
      instanceClass,
      replicaInstanceClass: dbClass('replicaInstanceClass'),
      engineVersion: engineMajor(database),
      allocatedStorageGb,
      maxAllocatedStorageGb,
      multiAz,
      backupRetentionDays,
      deletionProtection,
      performanceInsightsRetentionDays: piRetention,
      monitoringIntervalSeconds: database.oneOf('monitoringIntervalSeconds', [1, 5, 10, 15, 30, 60] as const),
      backupWindow: database.str('backupWindow', /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, 'hh:mm-hh:mm (UTC)'),
      maintenanceWindow: database.str('maintenanceWindow', /^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$/, 'ddd:hh:mm-ddd:hh:mm (UTC)'),
      failovers,
    },
    storage: {
      auditRetentionDays,
      auditObjectLockMode,
      auditHotDays,
      xrayCorsOrigins: storage.list('xrayCorsOrigins', (item) => str(item, /^https:\/\/[a-z0-9.-]+(:\d+)?$/, 'an https origin without path')),
      xrayNoncurrentVersionDays: storage.int('xrayNoncurrentVersionDays', 1, 3650),
      accessLogRetentionDays: storage.int('accessLogRetentionDays', 1, 3650),
    },
    firewall: {
      rateLimitPer5Min: firewall.int('rateLimitPer5Min', 100, 2_000_000_000),
      loginRateLimitPer5Min: firewall.int('loginRateLimitPer5Min', 10, 2_000_000_000),
      blockedIpv4: firewall.list('blockedIpv4', (item) => cidr$(item, 4)),
      blockedIpv6: firewall.list('blockedIpv6', (item) => cidr$(item, 6)),
    },
    monitoring: {
      runbookBaseUrl: monitoring.str('runbookBaseUrl', /^https:\/\/[^\s]+[^/\s]$/, 'an https URL without a trailing slash'),
      ...(chatSlackTeamId && chatSlackChannelId ? { chatSlackTeamId, chatSlackChannelId } : {}),
      primaryOnCall: contact(monitoring.field('primaryOnCall')),
      backupOnCall: contact(monitoring.field('backupOnCall')),
      originationIdentity: monitoring.str('originationIdentity', ORIGINATION_IDENTITY, 'an origination phone number or pool id (phone-…, pool-…) or its ARN'),
      levelDelays: levelDelays(monitoring.field('levelDelayMinutes')),
      ...(monitoring.field('webhook').value === undefined ? {} : { webhook: webhook(monitoring.field('webhook')) }),
      alarmEmail: monitoring.str('alarmEmail', EMAIL, 'an e-mail address'),
      incidentManager: monitoring.field('incidentManager').value === undefined ? false : monitoring.bool('incidentManager'),
      ...(monitoring.field('createIncidentManagerReplicationSet').value === undefined
        ? {}
        : { createIncidentManagerReplicationSet: monitoring.bool('createIncidentManagerReplicationSet') }),
    },
    budget: {
      monthlyUsd,
      notifyEmails: budget.list('notifyEmails', (item) => str(item, EMAIL, 'an e-mail address'), 1),
    },
    recovery: recoverySection(section('recovery'), { stack, region, isProduction }),
    account: accountSection(raw),
    slo: sloSection(raw),
  };
  if (config.firewall.loginRateLimitPer5Min >= config.firewall.rateLimitPer5Min) {
    throw new ConfigError(firewall.key('loginRateLimitPer5Min'), 'must be tighter than rateLimitPer5Min');
  }
  if (config.service.traceSampleRatio > 0 && config.network.natGateways === 'none') {
    // No endpoint here serves the collector's image (public ECR) or the X-Ray API.
    throw new ConfigError(`${CONFIG_NAMESPACE}:service.traceSampleRatio`, 'tracing needs a route out (network.natGateways per-az or single): the collector image is on public ECR and X-Ray has no VPC endpoint in this stack');
  }
  return config;
}

/** Reads the current stack's config from the Pulumi runtime and validates it. */
export function loadConfig(): StackConfig {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    raw[key] = key.startsWith(`${CONFIG_NAMESPACE}:`) ? parseStructured(key, value) : value;
  }
  return parseConfig(raw, pulumi.getStack());
}

/** Structured config values reach the program as JSON text. */
function parseStructured(key: string, value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw new ConfigError(key, 'must be an object (a YAML mapping in the stack file)');
  }
}

const SCHEDULE_EXPRESSION = /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[a-z]{2,}$/i;
const E164 = /^\+[1-9]\d{6,14}$/;
/** End User Messaging SMS and Voice v2 ids are `phone-`/`pool-` and 32 hex digits. */
const ORIGINATION_IDENTITY = /^((phone|pool)-[0-9a-f]{32}|arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:\d{12}:(phone-number\/phone|pool\/pool)-[0-9a-f]{32})$/;

/** A value and the config path it was read from, so every error can name its key. */
class Field {
  constructor(
    readonly value: unknown,
    readonly key: string,
  ) {}
}

/** One `dms:<section>` object. */
class Section$ {
  private constructor(
    private readonly values: Readonly<Record<string, unknown>>,
    private readonly prefix: string,
  ) {}

  static of(raw: Readonly<Record<string, unknown>>, name: Section): Section$ {
    const prefix = `${CONFIG_NAMESPACE}:${name}`;
    const value = raw[prefix];
    if (value === undefined) throw new ConfigError(prefix, 'missing section');
    return new Section$(record(new Field(value, prefix)), prefix);
  }

  key(field: string): string {
    return `${this.prefix}.${field}`;
  }

  field(name: string): Field {
    return new Field(this.values[name], this.key(name));
  }

  str(name: string, pattern: RegExp, what: string): string {
    return str(this.field(name), pattern, what);
  }

  optStr(name: string, pattern: RegExp, what: string): string | undefined {
    const field = this.field(name);
    return field.value === undefined || field.value === '' ? undefined : str(field, pattern, what);
  }

  num(name: string): number {
    const { value, key } = this.field(name);
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new ConfigError(key, 'must be a number');
    return value;
  }

  int(name: string, min: number, max: number): number {
    const value = this.num(name);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(this.key(name), `must be a whole number from ${min} to ${max}`);
    }
    return value;
  }

  bool(name: string): boolean {
    const { value, key } = this.field(name);
    if (typeof value !== 'boolean') throw new ConfigError(key, 'must be true or false');
    return value;
  }

  oneOf<const T extends string | number>(name: string, allowed: readonly T[]): T {
    const { value, key } = this.field(name);
    const match = allowed.find((candidate) => candidate === value);
    if (match === undefined) throw new ConfigError(key, `must be one of ${allowed.join(', ')}`);
    return match;
  }

  list<T>(name: string, item: (field: Field) => T, minItems = 0): T[] {
    const { value, key } = this.field(name);
    if (!Array.isArray(value)) throw new ConfigError(key, 'must be a list');
    if (value.length < minItems) throw new ConfigError(key, `needs at least ${minItems} item(s)`);
    return value.map((element: unknown, index) => item(new Field(element, `${key}[${index}]`)));
  }
}

function record({ value, key }: Field): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(key, 'must be an object (a YAML mapping in the stack file)');
  }
  return value as Record<string, unknown>;
}

/** `echo: false` keeps a value that is a secret in the stack file (a phone number) out of the message. */
function str({ value, key }: Field, pattern: RegExp, what: string, echo = true): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(key, `must be ${what}`);
  if (!pattern.test(value)) throw new ConfigError(key, echo ? `"${value}" is not ${what}` : `must be ${what}`);
  return value;
}

function cidr$(field: Field, version: 4 | 6): string {
  const { value, key } = field;
  if (typeof value !== 'string') throw new ConfigError(key, `must be an IPv${version} CIDR`);
  const [address = '', prefix = '', ...rest] = value.split('/');
  const maxPrefix = version === 4 ? 32 : 128;
  const bits = Number(prefix);
  // WAF refuses /0; anything that wide is a mistake, not a block list.
  if (rest.length > 0 || isIP(address) !== version || !/^\d+$/.test(prefix) || bits < 1 || bits > maxPrefix) {
    throw new ConfigError(key, `"${value}" is not an IPv${version} CIDR (address/1-${maxPrefix})`);
  }
  return value;
}

/** Personal data: the messages never echo the value. */
function contact(field: Field): OnCallContact {
  const values = record(field);
  const part = (name: string) => new Field(values[name], `${field.key}.${name}`);
  return {
    name: str(part('name'), /^\S.{0,99}$/, 'a name', false),
    email: str(part('email'), EMAIL, 'an e-mail address', false),
    phone: str(part('phone'), E164, 'an E.164 phone number (+<country><number>)', false),
  };
}

/** Minutes to levels 2, 3 and 4: whole minutes, each later than the one before. */
function levelDelays(field: Field): LevelDelays {
  if (field.value === undefined) return { ...DEFAULT_LEVEL_DELAYS };
  const values = record(field);
  const delays = { ...DEFAULT_LEVEL_DELAYS };
  for (const key of Object.keys(values)) {
    if (!(key in delays)) throw new ConfigError(`${field.key}.${key}`, 'unknown level (known: email, sms, voice)');
  }
  let previous = 0;
  for (const key of ['email', 'sms', 'voice'] as const) {
    const value = values[key] ?? delays[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= previous || value > 120) {
      throw new ConfigError(`${field.key}.${key}`, `must be a whole number of minutes above ${previous} (the level before) and at most 120`);
    }
    delays[key] = value;
    previous = value;
  }
  return delays;
}

/** Both parts are secrets: the messages never echo them. */
function webhook(field: Field): PagingWebhook {
  const values = record(field);
  const part = (name: string) => new Field(values[name], `${field.key}.${name}`);
  return {
    url: str(part('url'), /^https:\/\/[^\s/]+(\/\S*)?$/, 'an https URL', false),
    routingKey: str(part('routingKey'), /^\S{8,128}$/, 'the integration (routing) key', false),
  };
}

/**
 * `dms:database.engineVersion`: the major only. The instances take minor upgrades automatically; with
 * `"17.6"` in config, once RDS has moved them to 17.7 the next `pulumi up` asks for 17.6 and RDS
 * answers InvalidParameterCombination ("Cannot upgrade postgres from 17.7 to 17.6";
 * https://github.com/hashicorp/terraform-provider-aws/issues/39579). The provider accepts a prefix
 * ("If autoMinorVersionUpgrade is enabled, you can provide a prefix of the version such as 8.0",
 * @pulumi/aws rds.Instance engineVersion) and reports the running version as engineVersionActual.
 */
function engineMajor(database: Section$): string {
  const value = database.str('engineVersion', /^\d+(\.\d+)*$/, 'a PostgreSQL major version such as "17"');
  if (value.includes('.')) {
    throw new ConfigError(database.key('engineVersion'), `give the major version only ("${value.split('.')[0]}"): RDS upgrades minor versions itself and refuses to go back to ${value}`);
  }
  if (Number(value) < 15) throw new ConfigError(database.key('engineVersion'), 'PostgreSQL 15 or later');
  return value;
}

/** Least days between `pulumi up` and an immutable COMPLIANCE lock: AWS Backup's 72-hour cool-off (ChangeableForDays >= 3). */
export const VAULT_LOCK_MIN_CHANGEABLE_DAYS = 3;

/**
 * `dms:recovery`. Production stacks lock both vaults in COMPLIANCE mode, keep 35 days, and replicate
 * with Replication Time Control; any stack needs a DR region other than its own.
 */
function recoverySection(recovery: Section$, stack: { stack: string; region: string; isProduction: boolean }): RecoverySettings {
  const drRegion = recovery.str('drRegion', /^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region');
  if (drRegion === stack.region) throw new ConfigError(recovery.key('drRegion'), `must differ from aws:region (${stack.region}): a copy in the same region does not survive its loss`);
  const backupRetentionDays = recovery.int('backupRetentionDays', 1, 36500);
  const vaultLockMode = recovery.oneOf('vaultLockMode', ['COMPLIANCE', 'GOVERNANCE'] as const);
  const replicationTimeControl = recovery.bool('replicationTimeControl');
  if (stack.isProduction) {
    if (backupRetentionDays < 35) throw new ConfigError(recovery.key('backupRetentionDays'), `${stack.stack} keeps backups 35 days at least`);
    if (vaultLockMode !== 'COMPLIANCE') throw new ConfigError(recovery.key('vaultLockMode'), `${stack.stack} locks its backup vaults in COMPLIANCE mode`);
    if (!replicationTimeControl) throw new ConfigError(recovery.key('replicationTimeControl'), `${stack.stack} replicates PHI with Replication Time Control`);
  }
  const changeable = recovery.field('vaultLockChangeableForDays').value;
  if (vaultLockMode === 'GOVERNANCE' && changeable !== undefined) {
    throw new ConfigError(recovery.key('vaultLockChangeableForDays'), 'only a COMPLIANCE lock has a cool-off; leave it out for GOVERNANCE');
  }
  return {
    drRegion,
    backupRetentionDays,
    // AWS Backup's cron has six fields like EventBridge's: cron(min hour day month weekday year).
    backupSchedule: recovery.str('backupSchedule', /^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$/, 'a cron(...) expression'),
    vaultLockMode,
    ...(vaultLockMode === 'COMPLIANCE' ? { vaultLockChangeableForDays: recovery.int('vaultLockChangeableForDays', VAULT_LOCK_MIN_CHANGEABLE_DAYS, 36500) } : {}),
    replicationTimeControl,
  };
}

/** The optional `dms:account` section. */
function accountSection(raw: Readonly<Record<string, unknown>>): StackConfig['account'] {
  if (raw[`${CONFIG_NAMESPACE}:account`] === undefined) return NO_ACCOUNT_RESOURCES;
  const account = Section$.of(raw, 'account');
  return {
    cloudTrail: account.bool('cloudTrail'),
    trailRetentionDays: account.field('trailRetentionDays').value === undefined ? NO_ACCOUNT_RESOURCES.trailRetentionDays : account.int('trailRetentionDays', 90, 3650),
  };
}

/**
 * A target in percent. Below 90 an objective promises little; at 99.99 or above the budget is so
 * small that a 5-minute window of a quiet clinic holds fewer requests than one error spends, and
 * the fast-burn alarm would page on a single failed request.
 */
function sloTarget(field: Field): number {
  const { value, key } = field;
  if (typeof value !== 'number' || !(value >= 90 && value < 99.99)) throw new ConfigError(key, 'must be a percentage from 90 to below 99.99');
  return value;
}

/** The optional `dms:slo` section: availability and the latency of each route class that has an objective, or the section left out for the defaults. */
function sloSection(raw: Readonly<Record<string, unknown>>): SloSettings {
  if (raw[`${CONFIG_NAMESPACE}:slo`] === undefined) return DEFAULT_SLO;
  const slo = Section$.of(raw, 'slo');
  const availability = record(slo.field('availability'));
  const latency = record(slo.field('latency'));
  const objective = (routeClass: keyof SloSettings['latency']): LatencyObjective => {
    const key = slo.key(`latency.${routeClass}`);
    const values = record(new Field(latency[routeClass], key));
    const thresholdMs = values['thresholdMs'];
    if (typeof thresholdMs !== 'number' || !Number.isInteger(thresholdMs) || thresholdMs < 10 || thresholdMs > 30_000) {
      throw new ConfigError(`${key}.thresholdMs`, 'must be a whole number of milliseconds from 10 to 30000 (the request timeout)');
    }
    return { target: sloTarget(new Field(values['target'], `${key}.target`)), thresholdMs };
  };
  return {
    availability: { target: sloTarget(new Field(availability['target'], slo.key('availability.target'))) },
    latency: Object.fromEntries((['reads', 'writes', 'auth'] as const).filter((routeClass) => latency[routeClass] !== undefined).map((routeClass) => [routeClass, objective(routeClass)])),
  };
}

/** CloudWatch namespace of the stack's own metrics: log metric filters, the scheduled checks, the API's EMF records. */
export function metricsNamespace(stack: string): string {
  return `DMS/${stack}`;
}

function range(from: number, to: number, step: number): number[] {
  return Array.from({ length: (to - from) / step + 1 }, (_, index) => from + index * step);
}

/** The AWS account and partition the stack deploys into, resolved once and handed to every component. */
export interface AwsEnvironment {
  /** 12-digit account id. */
  accountId: pulumi.Output<string>;
  /** `aws`, `aws-us-gov`, ... for building ARNs. */
  partition: pulumi.Output<string>;
  /** Region from `aws:region`. */
  region: string;
}

/** Looks up the caller's account and partition (data sources, no resources). */
export function awsEnvironment(config: StackConfig): AwsEnvironment {
  return {
    accountId: aws.getCallerIdentityOutput().accountId,
    partition: aws.getPartitionOutput().partition,
    region: config.region,
  };
}

/** `dms-<stack>`: the prefix of every physical name, so names in the console say which stack owns them. */
export function namePrefix(stack: string): string {
  return `dms-${stack}`;
}
