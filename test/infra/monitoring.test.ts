// The monitoring component under Pulumi mocks, held against the platform brief: the alarm table
// (names, metrics, thresholds, windows, severities, runbook sections), the escalation ladder, and
// the contract's log events. Expectations come from the brief's text below, never from the code.
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand, RDSClient } from '@aws-sdk/client-rds';
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { mockClient } from 'aws-sdk-client-mock';
import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_SLO, type StackConfig } from '../../infra/config.js';
import { Monitoring, type MonitoringArgs } from '../../infra/monitoring.js';
import { SNAPSHOT_AGE_HANDLER } from '../../infra/monitoring/snapshot-age.js';
import { createMocks } from '../../infra/plan/mocks.js';
import { evaluateMath } from '../support/metric-math.js';

// ---------------------------------------------------------------------------------------------
// The brief, verbatim: "Alarm names, severities and runbook sections" and the escalation policy.

const ALARM_TABLE = `
| login-failures | log metric: auth_login_invalid_user + auth_login_bad_password + auth_login_locked | > 50 in 5 min | P1 | auth-abuse.md#login-failure-spike |
| login-rate-limited | log metric: auth_login_rate_limited | > 20 in 5 min | P2 | auth-abuse.md#login-flooding |
| refresh-token-reuse | log metric: auth_refresh_reuse | >= 1 in 5 min | P1 | auth-abuse.md#refresh-token-reuse |
| waf-blocked-spike | WAF BlockedRequests | > 1000 in 5 min | P2 | auth-abuse.md#waf-blocked-spike |
| sensitive-rate-limited | log metric: api_sensitive_rate_limited | > 100 in 5 min | P2 | rate-limits.md#sensitive-prefix-rate-limits |
| audit-write-failed | log metric: audit_write_failed | >= 1 in 1 min | P0 | audit-log-failure.md#audit-write-failed |
| bulk-patient-access | log metric: phi_access_heavy_user | >= 1 in 5 min | P1 | breach-response.md#bulk-patient-access |
| audit-sequencer-failed | log metric: audit_sequencer_failed | >= 150 in 10 min | P1 | audit-log-failure.md#audit-sequencer-failing |
| unhandled-errors | log metric: unhandled_error + unhandled_error_non_error | > 10 in 5 min | P1 | errors-and-rollback.md#unhandled-error-spike |
| alb-no-healthy-targets | ALB HealthyHostCount | < 1 for 1 min | P0 | errors-and-rollback.md#no-healthy-targets |
| alb-unhealthy-targets | ALB UnHealthyHostCount | > 0 for 5 min | P1 | errors-and-rollback.md#unhealthy-targets |
| ecs-running-below-desired | Container Insights RunningTaskCount vs DesiredTaskCount | running < desired for 5 min | P1 | errors-and-rollback.md#tasks-below-desired |
| alb-p95-latency | ALB TargetResponseTime p95 | > 2 s for 5 min | P1 | performance.md#high-latency |
| ecs-cpu-high | ECS CPUUtilization | > 80% for 5 min | P2 | performance.md#ecs-cpu-or-memory-high |
| ecs-memory-high | ECS MemoryUtilization | > 85% for 5 min | P2 | performance.md#ecs-cpu-or-memory-high |
| rds-cpu-high | RDS CPUUtilization | > 80% for 10 min | P2 | database.md#database-cpu-high |
| rds-free-storage-low | RDS FreeStorageSpace | < 5% of allocated | P1 | database.md#free-storage-low |
| rds-storage-filling-fast | RDS FreeStorageSpace hours left at the current rate (metric math) | < 12 for 120 min | P1 | database.md#free-storage-low |
| rds-connections-high | RDS DatabaseConnections | > 80% of max_connections | P1 | database.md#connections-high |
| rds-replica-lag | RDS ReplicaLag (replica) | > 60 s for 5 min | P1 | database.md#replica-lag |
| rds-replica-missing | RDS ReplicaLag (replica) sample count | < 1 for 15 min | P2 | database.md#replica-missing |
| rds-freeable-memory-low | RDS FreeableMemory | < 10% of instance memory | P2 | database.md#freeable-memory-low |
| rds-snapshot-stale | custom metric \`LatestSnapshotAgeHours\` (scheduled check), missing data = breaching | > 26 h | P1 | backup-restore.md#snapshot-stale |
| drill-instance-left | custom metric \`OldestDrillInstanceAgeHours\` (same scheduled check), missing data = not breaching | > 6 h | P3 | backup-restore.md#drill-instance-left-running |
| scheduled-job-failed | log metric: command_failed + command_refused | >= 1 in 60 min | P2 | audit-log-failure.md#audit-export-or-purge-failing |
| database-unreachable | log metric: dependency_unavailable + readiness_failed | > 10 in 5 min | P1 | database.md#connectivity-loss |
| process-fatal-error | log metric: process_fatal_error | >= 1 in 5 min | P1 | errors-and-rollback.md#task-exited-on-a-fatal-error |
| rds-storage-ceiling-near | RDS storage headroom to the autoscaling ceiling, % of it (metric math over the published allocation) | < 10 in 60 min | P2 | database.md#storage-ceiling-near |
| acm-certificate-expiring | ACM DaysToExpiry of the listener's certificate, missing data = breaching | < 30 in 1440 min | P2 | secret-rotation.md#tls-certificate-expiring |
| backup-job-failed | AWS Backup NumberOfBackupJobsFailed + NumberOfBackupJobsExpired (metric math) | > 0 in 60 min | P1 | backup-restore.md#backup-job-failed |
| backup-copy-failed | AWS Backup NumberOfCopyJobsFailed | > 0 in 60 min | P1 | backup-restore.md#backup-copy-failed |
`;

type Severity = 'P0' | 'P1' | 'P2' | 'P3';

/** CONTRACT §5: every event the API logs. */
const CONTRACT_EVENTS = [
  'http_access', 'auth_error', 'auth_login_success', 'auth_login_invalid_user', 'auth_login_bad_password',
  'auth_login_locked', 'auth_login_rate_limited', 'auth_refresh_reuse', 'api_sensitive_rate_limited', 'audit',
  'audit_write_failed', 'unhandled_error', 'unhandled_error_non_error', 'startup', 'shutdown',
];

interface TableRow {
  slug: string;
  source: string;
  condition: string;
  severity: Severity;
  runbook: string;
}

const ROWS: TableRow[] = ALARM_TABLE.trim()
  .split('\n')
  .map((line) => {
    const [slug = '', source = '', condition = '', severity = '', runbook = ''] = line.split('|').slice(1, -1).map((cell) => cell.trim());
    return { slug, source, condition, severity: severity as Severity, runbook };
  });

// ---------------------------------------------------------------------------------------------
// The stack under test

const STACK = 'production';
const GIB = 2 ** 30;
const DATABASE = { memoryBytes: 8 * GIB, maxConnections: 811, allocatedStorageBytes: 100 * GIB, maxAllocatedStorageBytes: 1000 * GIB };
const CERTIFICATE_ARN = 'arn:aws:acm:us-east-2:123456789012:certificate/0b9a2f3e-7c41-4d6b-9a55-3f1e2d7c8b90';
const MONITORING_CONFIG: StackConfig['monitoring'] = {
  runbookBaseUrl: 'https://github.com/riverside-family-dental/dms/blob/main',
  chatSlackTeamId: 'T04RFD7Q2LM',
  chatSlackChannelId: 'C05DMSONCALL',
  primaryOnCall: { name: 'Primary Placeholder', email: 'oncall-primary@example.com', phone: '+15550100001' },
  backupOnCall: { name: 'Backup Placeholder', email: 'oncall-backup@example.com', phone: '+15550100002' },
  originationIdentity: 'phone-0123456789abcdef0123456789abcdef',
  levelDelays: { email: 5, sms: 10, voice: 15 },
  alarmEmail: 'dms-alerts@example.com',
  incidentManager: false,
};

function monitoringArgs(stack: string, config: StackConfig['monitoring']): MonitoringArgs {
  return {
    stack,
    env: { accountId: pulumi.output('123456789012'), partition: pulumi.output('aws'), region: 'us-east-2' },
    config,
    logs: { key: new aws.kms.Key(`${stack}-logs-key`, {}), retentionDays: 731 },
    api: {
      logGroupName: `/dms/${stack}/api`,
      albArnSuffix: `app/dms-${stack}/50dc6c495c0c9188`,
      targetGroupArnSuffix: `targetgroup/dms-${stack}-api/73e2d6bc24d8a067`,
      clusterName: `dms-${stack}`,
      serviceName: `dms-${stack}-api`,
      certificateArn: CERTIFICATE_ARN,
    },
    database: {
      instanceIdentifier: `dms-${stack}-db`,
      instanceArn: `arn:aws:rds:us-east-2:123456789012:db:dms-${stack}-db`,
      parameterGroupName: `dms-${stack}-db-pg17`,
      replicaIdentifier: `dms-${stack}-db-replica`,
      ...DATABASE,
    },
    waf: { metricName: `dms-${stack}-waf` },
    slo: DEFAULT_SLO,
    backupVaultName: `dms-${stack}-backup`,
  };
}

interface MockedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** What the mocked control plane answered (ids, ARNs). */
  state: Record<string, unknown>;
}

/** Runs `program` under the plan's AWS mocks and returns every resource it registered. */
async function recordResources(stackName: string, program: () => void): Promise<MockedResource[]> {
  const mocks = createMocks('us-east-2');
  const resources: MockedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const result = await mocks.newResource(args);
        resources.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown>, state: result.state as Record<string, unknown> });
        return result;
      },
      call: (args) => mocks.call(args),
    },
    'dms',
    stackName,
    false,
  );
  program();
  // Registrations chain through outputs; done once nothing new arrives for a while.
  for (let seen = -1, quiet = 0; quiet < 3; await new Promise((resolve) => setTimeout(resolve, 20))) {
    quiet = seen === resources.length ? quiet + 1 : 0;
    seen = resources.length;
  }
  return resources;
}

let resources: MockedResource[];

before(async () => {
  resources = await recordResources(STACK, () => {
    new Monitoring('monitoring', monitoringArgs(STACK, MONITORING_CONFIG));
  });
});

const byType = (type: string) => resources.filter((resource) => resource.type === type);
const one = (type: string, predicate: (resource: MockedResource) => boolean): MockedResource => {
  const found = byType(type).filter(predicate);
  assert.equal(found.length, 1, `expected one ${type}, found ${found.length}`);
  return found[0]!;
};
const named = (type: string, name: string) => one(type, (resource) => resource.inputs['name'] === name);
const alarm = (slug: string) => named('aws:cloudwatch/metricAlarm:MetricAlarm', `dms-${STACK}-${slug}`);
const arnOf = (resource: MockedResource) => resource.state['arn'] as string;
const str = (value: unknown) => value as string;

/** A secret input as the mocks receive it: `{ <sig>: <secret sig>, value }`. */
function unwrapSecret(value: unknown): { value: unknown; secret: boolean } {
  const record = value as Record<string, unknown> | undefined;
  return record?.[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig
    ? { value: record['value'], secret: true }
    : { value, secret: false };
}

// ---------------------------------------------------------------------------------------------
// Reading the table's conditions

interface Condition {
  comparison: string;
  threshold: number;
  /** `in N min`: one data point over the window; `for N min`: every point of the window breaches. */
  window?: { kind: 'in' | 'for'; minutes: number };
}

const COMPARISONS: Record<string, string> = {
  '>': 'GreaterThanThreshold',
  '>=': 'GreaterThanOrEqualToThreshold',
  '<': 'LessThanThreshold',
};

function parseCondition(condition: string): Condition {
  const match = /^(?:running )?(>=|>|<) ?(desired|[\d.]+)(%| s| h)?(?: of (allocated|max_connections|instance memory))?(?: (in|for) (\d+) min)?$/.exec(condition);
  assert.ok(match, `unreadable condition "${condition}"`);
  const [, operator = '', value = '', , shareOf, kind, minutes] = match;
  const shareBase: Record<string, number> = {
    allocated: DATABASE.allocatedStorageBytes,
    max_connections: DATABASE.maxConnections,
    'instance memory': DATABASE.memoryBytes,
  };
  // "running < desired" is alarmed as "desired - running > 0".
  const threshold = value === 'desired' ? 0 : shareOf ? (Number(value) / 100) * shareBase[shareOf]! : Number(value);
  const comparison = value === 'desired' ? 'GreaterThanThreshold' : COMPARISONS[operator]!;
  return { comparison, threshold, ...(kind ? { window: { kind: kind as 'in' | 'for', minutes: Number(minutes) } } : {}) };
}

// ---------------------------------------------------------------------------------------------
// CloudWatch Logs JSON filter patterns and metric math, evaluated the way CloudWatch does

/** Evaluates a `{ ($.a = "x") || ($.b != "y") && … }` pattern against one JSON log line. */
function filterMatches(pattern: string, line: string): boolean {
  const record = JSON.parse(line) as Record<string, unknown>;
  const tokens = pattern.match(/\{|\}|\(|\)|\|\||&&|!=|=|\$(?:\.\w+)+|"[^"]*"|-?\d+(?:\.\d+)?|\S/g) ?? [];
  let position = 0;
  const next = () => tokens[position++];
  const expect = (token: string) => assert.equal(next(), token, `filter pattern ${pattern}: expected ${token}`);
  const term = (): boolean => {
    if (tokens[position] === '(') {
      next();
      const value = disjunction();
      expect(')');
      return value;
    }
    const selector = next() ?? '';
    assert.match(selector, /^\$\./, `filter pattern ${pattern}: selector expected`);
    const operator = next();
    const literal = next() ?? '';
    const expected: unknown = literal.startsWith('"') ? literal.slice(1, -1) : Number(literal);
    const actual = selector.slice(2).split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], record);
    if (operator === '=') return actual === expected;
    if (operator === '!=') return actual !== expected;
    throw new assert.AssertionError({ message: `filter pattern ${pattern}: unsupported operator ${operator}` });
  };
  const conjunction = (): boolean => {
    let value = term();
    while (tokens[position] === '&&') {
      next();
      value = term() && value;
    }
    return value;
  };
  const disjunction = (): boolean => {
    let value = conjunction();
    while (tokens[position] === '||') {
      next();
      value = conjunction() || value;
    }
    return value;
  };
  expect('{');
  const result = disjunction();
  expect('}');
  assert.equal(position, tokens.length, `filter pattern ${pattern}: trailing tokens`);
  return result;
}

interface MathQuery {
  id: string;
  expression?: string;
  returnData?: boolean;
  metric?: { namespace: string; metricName: string; stat: string; period: number; dimensions: Record<string, string> };
}

/** The alarm's metric math: the expression it returns, and the metric behind each id. */
function mathOf(resource: MockedResource) {
  const queries = resource.inputs['metricQueries'] as MathQuery[];
  const returned = queries.filter((query) => query.returnData);
  assert.equal(returned.length, 1, 'exactly one query returns data');
  const metrics = new Map(queries.filter((query) => query.metric).map((query) => [query.metric!.metricName, query]));
  return { expression: returned[0]!.expression!, metrics };
}

/** Evaluates the alarm's math with values given by metric name. */
function evaluateAlarmMath(resource: MockedResource, byMetricName: Record<string, number | undefined>): number | undefined {
  const { expression, metrics } = mathOf(resource);
  const values: Record<string, number | undefined> = {};
  for (const [metricName, query] of metrics) values[query.id] = byMetricName[metricName];
  return evaluateMath(expression, values);
}

function breaches(resource: MockedResource, value: number | undefined): boolean {
  const threshold = resource.inputs['threshold'] as number;
  if (value === undefined) return false;
  switch (resource.inputs['comparisonOperator']) {
    case 'GreaterThanThreshold':
      return value > threshold;
    case 'GreaterThanOrEqualToThreshold':
      return value >= threshold;
    case 'LessThanThreshold':
      return value < threshold;
    default:
      throw new Error(`comparison ${String(resource.inputs['comparisonOperator'])}`);
  }
}

/** Events a metric filter counts, read back from its pattern by matching every contract event. */
/**
 * Events the API logs beyond CONTRACT §5 that alarms count: the one-off commands' failures
 * (api/cli.ts), the database away (api/middleware/errors.ts, api/health.ts), a fatal process error,
 * a user above the hourly distinct-patient threshold (api/audit/accesses.ts).
 */
const COMMAND_EVENTS = ['command_failed', 'command_refused', 'dependency_unavailable', 'readiness_failed', 'process_fatal_error', 'phi_access_heavy_user', 'audit_sequencer_failed'];

function eventsCountedBy(filter: MockedResource): string[] {
  return [...CONTRACT_EVENTS, ...COMMAND_EVENTS].filter((event) =>
    filterMatches(str(filter.inputs['pattern']), JSON.stringify(logLine(event))),
  );
}

/** A log line as the API writes it (CONTRACT §5 fields). */
function logLine(event: string, extra: Record<string, unknown> = {}) {
  return { timestamp: '2025-03-01T02:14:07.311Z', level: 'warn', event, service: 'dms-api', env: STACK, reqId: 'c0ffee00-0000-4000-8000-000000000001', ip: '203.0.113.7', ...extra };
}

const metricFilters = () => byType('aws:cloudwatch/logMetricFilter:LogMetricFilter');

// ---------------------------------------------------------------------------------------------

describe('monitoring: every alarm of the brief exists as specified', () => {
  it('defines exactly the alarms of the table, named dms-<stack>-<slug>, and the paging engine’s own (the SLO windows are test/infra/slo.test.ts’s)', () => {
    const names = byType('aws:cloudwatch/metricAlarm:MetricAlarm')
      .map((resource) => resource.inputs['name'] as string)
      .filter((name) => !name.startsWith(`dms-${STACK}-slo-`))
      .sort();
    assert.deepEqual(names, [...ROWS.map((row) => `dms-${STACK}-${row.slug}`), `dms-${STACK}-escalation-failed`].sort());
  });

  for (const row of ROWS) {
    describe(`dms-<stack>-${row.slug}`, () => {
      it(`is tagged ${row.severity} and its description states it and links ${row.runbook}`, () => {
        const resource = alarm(row.slug);
        assert.deepEqual(resource.inputs['tags'], { Severity: row.severity });
        const description = str(resource.inputs['alarmDescription']);
        assert.match(description, new RegExp(`^${row.severity}: [A-Z][^]+\\. Runbook: `));
        assert.ok(
          description.endsWith(`Runbook: ${MONITORING_CONFIG.runbookBaseUrl}/runbooks/${row.runbook}`),
          description,
        );
      });

      it(`fires when ${row.condition}`, () => {
        const resource = alarm(row.slug);
        const expected = parseCondition(row.condition);
        assert.equal(resource.inputs['comparisonOperator'], expected.comparison);
        assert.equal(resource.inputs['threshold'], expected.threshold);
        const period = (resource.inputs['period'] as number | undefined) ?? mathOf(resource).metrics.values().next().value!.metric!.period;
        const evaluationPeriods = resource.inputs['evaluationPeriods'] as number;
        if (expected.window) {
          assert.equal(period * evaluationPeriods, expected.window.minutes * 60, 'evaluation window');
          if (expected.window.kind === 'in') assert.equal(evaluationPeriods, 1, 'a count over the whole window is one data point');
          else assert.equal(resource.inputs['datapointsToAlarm'] ?? evaluationPeriods, evaluationPeriods, 'every point of the window breaches');
        }
      });

      it(`reads ${row.source}`, () => {
        const resource = alarm(row.slug);
        const logEvents = /^log metric: (.+)$/.exec(row.source)?.[1]?.split(' + ');
        const platform = /^(WAF|ALB|ECS|RDS) (\w+)(?: (p\d+))?/.exec(row.source);
        if (logEvents) {
          const filter = one('aws:cloudwatch/logMetricFilter:LogMetricFilter', (candidate) =>
            eventsCountedBy(candidate).sort().join() === [...logEvents].sort().join(),
          );
          const transformation = filter.inputs['metricTransformation'] as Record<string, string>;
          assert.equal(filter.inputs['logGroupName'], `/dms/${STACK}/api`);
          assert.equal(transformation['value'], '1');
          assert.equal(resource.inputs['namespace'], `DMS/${STACK}`);
          assert.equal(transformation['namespace'], `DMS/${STACK}`);
          assert.equal(resource.inputs['metricName'], transformation['name']);
          assert.equal(resource.inputs['statistic'], 'Sum');
        } else if (row.source.startsWith('custom metric')) {
          assert.equal(resource.inputs['namespace'], `DMS/${STACK}`);
          assert.equal(resource.inputs['metricName'], /`(\w+)`/.exec(row.source)?.[1]);
          assert.deepEqual(resource.inputs['dimensions'], { DBInstanceIdentifier: `dms-${STACK}-db` });
        } else if (row.slug === 'rds-storage-filling-fast') {
          const { expression, metrics } = mathOf(resource);
          const free = metrics.get('FreeStorageSpace');
          assert.equal(free?.metric?.namespace, 'AWS/RDS');
          assert.deepEqual(free?.metric?.dimensions, { DBInstanceIdentifier: `dms-${STACK}-db` });
          // RATE(free) over hourly points, given here as bytes per second.
          const hoursLeft = (bytes: number, ratePerSecond: number) => evaluateMath(expression.replaceAll(`RATE(${free!.id})`, 'rate'), { [free!.id]: bytes, rate: ratePerSecond });
          const GB = 2 ** 30;
          assert.ok(breaches(resource, hoursLeft(10 * GB, -GB / 3600)), '10 GiB left, 1 GiB an hour: 10 hours');
          assert.ok(!breaches(resource, hoursLeft(10 * GB, -GB / 86_400)), 'a GiB a day is normal growth');
          assert.ok(!breaches(resource, hoursLeft(10 * GB, 5 * GB / 3600)), 'autoscaling grew the volume: free storage rose');
        } else if (row.slug === 'rds-storage-ceiling-near') {
          const { metrics } = mathOf(resource);
          assert.deepEqual(metrics.get('AllocatedStorageBytes')?.metric, {
            namespace: `DMS/${STACK}`, metricName: 'AllocatedStorageBytes', dimensions: { DBInstanceIdentifier: `dms-${STACK}-db` }, stat: 'Maximum', period: 3600,
          });
          assert.equal(metrics.get('FreeStorageSpace')?.metric?.namespace, 'AWS/RDS');
          assert.equal(metrics.get('FreeStorageSpace')?.metric?.stat, 'Minimum');
          // The ceiling is 1000 GiB: storage in use is what is allocated less what is free.
          const headroom = (allocatedGib: number, freeGib: number) => evaluateAlarmMath(resource, { AllocatedStorageBytes: allocatedGib * GIB, FreeStorageSpace: freeGib * GIB });
          assert.ok(breaches(resource, headroom(1000, 60)), '940 GiB of a 1000 GiB ceiling in use: 6% left');
          assert.ok(!breaches(resource, headroom(950, 50)), '900 GiB in use: 10% left, not under');
          assert.ok(!breaches(resource, headroom(200, 15)), 'free under 10% of a small allocation is autoscaling about to grow it, far from the ceiling');
          assert.equal(evaluateAlarmMath(resource, { AllocatedStorageBytes: undefined, FreeStorageSpace: 15 * GIB }), undefined, 'no published allocation, no data point');
        } else if (row.slug === 'acm-certificate-expiring') {
          assert.equal(resource.inputs['namespace'], 'AWS/CertificateManager');
          assert.equal(resource.inputs['metricName'], 'DaysToExpiry');
          assert.deepEqual(resource.inputs['dimensions'], { CertificateArn: CERTIFICATE_ARN });
          assert.equal(resource.inputs['statistic'], 'Minimum');
          assert.equal(resource.inputs['treatMissingData'], 'breaching', 'ACM stops publishing once the certificate has expired');
        } else if (row.source.startsWith('AWS Backup ')) {
          // Issue 19: the jobs of the stack's own vault (a copy job counts in the vault it copies out of).
          const metricNames = /^AWS Backup (.+?)(?: \(metric math\))?$/.exec(row.source)![1]!.split(' + ');
          const read = metricNames.length === 1
            ? [{ namespace: resource.inputs['namespace'], metricName: resource.inputs['metricName'], dimensions: resource.inputs['dimensions'], stat: resource.inputs['statistic'] }]
            : metricNames.map((metricName) => mathOf(resource).metrics.get(metricName)?.metric);
          assert.deepEqual(read.map((metric) => metric?.metricName), metricNames);
          for (const metric of read) {
            assert.equal(metric?.namespace, 'AWS/Backup');
            assert.deepEqual(metric?.dimensions, { BackupVaultName: `dms-${STACK}-backup` });
            assert.equal(metric?.stat, 'Sum');
          }
          if (metricNames.length > 1) {
            for (const [index, metricName] of metricNames.entries()) {
              const values = Object.fromEntries(metricNames.map((name, other) => [name, other === index ? 1 : 0]));
              assert.ok(breaches(resource, evaluateAlarmMath(resource, values)), `one ${metricName} fires`);
            }
            assert.ok(!breaches(resource, evaluateAlarmMath(resource, Object.fromEntries(metricNames.map((name) => [name, 0])))), 'no failures do not');
          }
        } else if (row.slug === 'ecs-running-below-desired') {
          const { metrics } = mathOf(resource);
          for (const metricName of ['RunningTaskCount', 'DesiredTaskCount']) {
            assert.equal(metrics.get(metricName)?.metric?.namespace, 'ECS/ContainerInsights');
            assert.deepEqual(metrics.get(metricName)?.metric?.dimensions, { ClusterName: `dms-${STACK}`, ServiceName: `dms-${STACK}-api` });
          }
          assert.ok(breaches(resource, evaluateAlarmMath(resource, { RunningTaskCount: 1, DesiredTaskCount: 2 })));
          assert.ok(!breaches(resource, evaluateAlarmMath(resource, { RunningTaskCount: 2, DesiredTaskCount: 2 })));
        } else {
          assert.ok(platform, `unreadable source ${row.source}`);
          const [, service = '', metricName, percentile] = platform;
          const namespaces: Record<string, string> = { WAF: 'AWS/WAFV2', ALB: 'AWS/ApplicationELB', ECS: 'AWS/ECS', RDS: 'AWS/RDS' };
          const dimensions: Record<string, Record<string, string>> = {
            WAF: { WebACL: `dms-${STACK}-waf`, Rule: 'ALL', Region: 'us-east-2' },
            ALB: { LoadBalancer: `app/dms-${STACK}/50dc6c495c0c9188`, TargetGroup: `targetgroup/dms-${STACK}-api/73e2d6bc24d8a067` },
            ECS: { ClusterName: `dms-${STACK}`, ServiceName: `dms-${STACK}-api` },
            RDS: { DBInstanceIdentifier: row.source.includes('(replica)') ? `dms-${STACK}-db-replica` : `dms-${STACK}-db` },
          };
          assert.equal(resource.inputs['namespace'], namespaces[service]);
          assert.equal(resource.inputs['metricName'], metricName);
          assert.deepEqual(resource.inputs['dimensions'], dimensions[service]);
          if (percentile) assert.equal(resource.inputs['extendedStatistic'], percentile);
        }
      });
    });
  }
});

describe('monitoring: a gap in the data is read deliberately', () => {
  it('every alarm states how it treats missing data', () => {
    for (const resource of byType('aws:cloudwatch/metricAlarm:MetricAlarm')) {
      assert.ok(['breaching', 'notBreaching', 'missing'].includes(str(resource.inputs['treatMissingData'])), str(resource.inputs['name']));
    }
  });

  it('the snapshot check pages when it publishes nothing (missing data = breaching)', () => {
    const stale = ROWS.find((row) => row.source.includes('missing data = breaching'));
    assert.equal(alarm(stale!.slug).inputs['treatMissingData'], 'breaching');
  });

  it('log-metric alarms stay quiet while no matching line arrives', () => {
    for (const row of ROWS.filter((candidate) => candidate.source.startsWith('log metric:'))) {
      assert.equal(alarm(row.slug).inputs['treatMissingData'], 'notBreaching', row.slug);
    }
  });

  it('a promoted or deleted replica stops reporting lag: the lag alarm stays quiet, the replica-missing check fires', () => {
    assert.equal(alarm('rds-replica-lag').inputs['treatMissingData'], 'notBreaching');
    const missing = alarm('rds-replica-missing');
    assert.equal(missing.inputs['treatMissingData'], 'breaching');
    assert.equal(missing.inputs['statistic'], 'SampleCount');
    assert.deepEqual(missing.inputs['dimensions'], alarm('rds-replica-lag').inputs['dimensions']);
  });

  it('an API that stops reporting healthy hosts or running tasks pages', () => {
    assert.equal(alarm('alb-no-healthy-targets').inputs['treatMissingData'], 'breaching');
    assert.equal(alarm('ecs-running-below-desired').inputs['treatMissingData'], 'breaching');
  });
});

describe('monitoring: an alarm posts to chat and starts one escalation', () => {
  const chatTopic = () => named('aws:sns/topic:Topic', `dms-${STACK}-chat`);
  const rule = () => named('aws:cloudwatch/eventRule:EventRule', `dms-${STACK}-escalation`);
  const pattern = () => JSON.parse(str(rule().inputs['eventPattern'])) as { source: string[]; 'detail-type': string[]; detail: { alarmName: string[]; state: { value: string[] } } };

  for (const row of ROWS) {
    it(`dms-<stack>-${row.slug} posts its transitions to chat and is watched by the escalation rule`, () => {
      assert.deepEqual(alarm(row.slug).inputs['alarmActions'], [arnOf(chatTopic())]);
      assert.deepEqual(alarm(row.slug).inputs['okActions'], [arnOf(chatTopic())]);
      assert.ok(pattern().detail.alarmName.includes(`dms-${STACK}-${row.slug}`));
    });
  }

  it('the rule matches CloudWatch alarm state changes into ALARM, and only the stack’s alarms', () => {
    assert.deepEqual(pattern().source, ['aws.cloudwatch']);
    assert.deepEqual(pattern()['detail-type'], ['CloudWatch Alarm State Change']);
    assert.deepEqual(pattern().detail.state, { value: ['ALARM'] });
    const sloPages = byType('aws:cloudwatch/compositeAlarm:CompositeAlarm').map((resource) => resource.inputs['alarmName'] as string);
    assert.equal(sloPages.length, 8, 'a fast and a slow burn page for each of the four SLOs');
    assert.deepEqual([...pattern().detail.alarmName].sort(), [...ROWS.map((row) => `dms-${STACK}-${row.slug}`), ...sloPages].sort());
  });

  it('the rule starts the Standard state machine with a role that may only start it', () => {
    const machine = named('aws:sfn/stateMachine:StateMachine', `dms-${STACK}-escalation`);
    assert.equal(machine.inputs['type'], 'STANDARD');
    const target = one('aws:cloudwatch/eventTarget:EventTarget', (candidate) => candidate.inputs['rule'] === `dms-${STACK}-escalation`);
    assert.equal(target.inputs['arn'], arnOf(machine));
    const role = one('aws:iam/role:Role', (candidate) => arnOf(candidate) === target.inputs['roleArn']);
    const policy = one('aws:iam/rolePolicy:RolePolicy', (candidate) => candidate.inputs['role'] === role.state['name'] || candidate.name === role.name);
    assert.deepEqual(JSON.parse(str(policy.inputs['policy'])).Statement, [
      { Sid: 'StartEscalations', Effect: 'Allow', Action: 'states:StartExecution', Resource: arnOf(machine) },
      {
        Sid: 'UseTheStateMachineKey',
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey'],
        Resource: (machine.inputs['encryptionConfiguration'] as { kmsKeyId: string }).kmsKeyId,
        Condition: { StringEquals: { 'kms:EncryptionContext:aws:states:stateMachineArn': `arn:aws:states:us-east-2:123456789012:stateMachine:dms-${STACK}-escalation` } },
      },
    ]);
  });

  it('the state machine is encrypted with the monitoring key and logs every execution to its own encrypted log group (FSBP StepFunctions.1)', () => {
    const machine = named('aws:sfn/stateMachine:StateMachine', `dms-${STACK}-escalation`);
    const key = one('aws:kms/key:Key', (candidate) => String(candidate.inputs['description']).includes('notifications'));
    assert.deepEqual(machine.inputs['encryptionConfiguration'], { type: 'CUSTOMER_MANAGED_KMS_KEY', kmsKeyId: arnOf(key), kmsDataKeyReusePeriodSeconds: 300 });
    const log = named('aws:cloudwatch/logGroup:LogGroup', `/aws/vendedlogs/states/dms-${STACK}-escalation`);
    assert.deepEqual(machine.inputs['loggingConfiguration'], { level: 'ALL', includeExecutionData: false, logDestination: `${arnOf(log)}:*` });
    assert.ok(log.inputs['kmsKeyId'] && log.inputs['retentionInDays']);
    // The role may use the key for this state machine and its log deliveries only.
    const role = one('aws:iam/role:Role', (candidate) => arnOf(candidate) === machine.inputs['roleArn']);
    const statements = (JSON.parse(str(one('aws:iam/rolePolicy:RolePolicy', (candidate) => candidate.name === role.name).inputs['policy'])) as { Statement: { Sid: string; Resource: unknown; Condition?: unknown }[] }).Statement;
    const bySid = Object.fromEntries(statements.map((statement) => [statement.Sid, statement]));
    assert.deepEqual(bySid['UseTheStateMachineKey']?.Condition, { StringEquals: { 'kms:EncryptionContext:aws:states:stateMachineArn': `arn:aws:states:us-east-2:123456789012:stateMachine:dms-${STACK}-escalation` } });
    assert.deepEqual(bySid['EncryptExecutionLogs']?.Condition, { StringLike: { 'kms:EncryptionContext:SourceArn': 'arn:aws:logs:us-east-2:123456789012:*' } });
    // CloudWatch Logs' delivery service may decrypt the history for this account's deliveries only.
    const delivery = (JSON.parse(str(key.inputs['policy'])) as { Statement: { Sid: string; Principal?: { Service?: unknown }; Action: unknown; Condition?: unknown }[] }).Statement.find(
      (statement) => statement.Principal?.Service === 'delivery.logs.amazonaws.com',
    );
    assert.equal(delivery?.Action, 'kms:Decrypt');
    assert.deepEqual(delivery?.Condition, { StringEquals: { 'aws:SourceAccount': '123456789012' }, ArnLike: { 'aws:SourceArn': 'arn:aws:logs:us-east-2:123456789012:*' } });
  });

  it('the state machine waits the configured minutes between levels', () => {
    const machine = named('aws:sfn/stateMachine:StateMachine', `dms-${STACK}-escalation`);
    const states = (JSON.parse(str(machine.inputs['definition'])) as { States: Record<string, { Type: string; Seconds?: number }> }).States;
    const waits = Object.values(states).filter((state) => state.Type === 'Wait').map((state) => state.Seconds);
    assert.deepEqual(waits, [5 * 60, 5 * 60, 5 * 60]);
  });

  it('an alarm returning to OK stops its escalations through a second rule, whose function may only find and stop them', () => {
    const okRule = named('aws:cloudwatch/eventRule:EventRule', `dms-${STACK}-escalation-ok`);
    const okPattern = JSON.parse(str(okRule.inputs['eventPattern'])) as { detail: { alarmName: string[]; state: { value: string[] } } };
    assert.deepEqual(okPattern.detail.state, { value: ['OK'] });
    assert.deepEqual(okPattern.detail.alarmName, pattern().detail.alarmName);
    const fn = named('aws:lambda/function:Function', `dms-${STACK}-escalation-ok`);
    const target = one('aws:cloudwatch/eventTarget:EventTarget', (candidate) => candidate.inputs['rule'] === `dms-${STACK}-escalation-ok`);
    assert.equal(target.inputs['arn'], arnOf(fn));
    const permission = one('aws:lambda/permission:Permission', (candidate) => candidate.inputs['function'] === `dms-${STACK}-escalation-ok`);
    assert.deepEqual([permission.inputs['principal'], permission.inputs['sourceArn']], ['events.amazonaws.com', arnOf(okRule)]);
    const role = one('aws:iam/role:Role', (candidate) => arnOf(candidate) === fn.inputs['role']);
    const statements = (JSON.parse(str(one('aws:iam/rolePolicy:RolePolicy', (candidate) => candidate.name === role.name).inputs['policy'])) as { Statement: { Sid: string; Action: unknown }[] }).Statement;
    assert.deepEqual(statements.map((statement) => statement.Action), [
      'states:ListExecutions',
      ['states:DescribeExecution', 'states:StopExecution'],
      ['kms:Decrypt', 'kms:GenerateDataKey'],
      ['logs:CreateLogStream', 'logs:PutLogEvents'],
    ]);
  });

  it('no Incident Manager resource exists unless the stack opts in', () => {
    assert.deepEqual(resources.filter((resource) => /^aws:ssm(incidents|contacts)\//.test(resource.type)).map((resource) => resource.name), []);
  });
});

describe('monitoring: the escalation reaches people through their own channels', () => {
  const rolePolicyOf = (functionName: string) => {
    const fn = named('aws:lambda/function:Function', functionName);
    const role = one('aws:iam/role:Role', (candidate) => arnOf(candidate) === fn.inputs['role']);
    return JSON.parse(str(one('aws:iam/rolePolicy:RolePolicy', (candidate) => candidate.name === role.name).inputs['policy'])) as {
      Statement: { Sid: string; Action: string | string[]; Resource: string | string[] }[];
    };
  };
  const statementOf = (functionName: string, sid: string) => {
    const found = rolePolicyOf(functionName).Statement.find((candidate) => candidate.Sid === sid);
    assert.ok(found, `${functionName} has no statement ${sid}`);
    return found;
  };

  it('level 2 e-mails the on-call engineer through a subscription whose address stays secret', () => {
    const topic = named('aws:sns/topic:Topic', `dms-${STACK}-page-email`);
    const subscription = one('aws:sns/topicSubscription:TopicSubscription', (candidate) => candidate.inputs['topic'] === arnOf(topic));
    assert.equal(subscription.inputs['protocol'], 'email');
    assert.deepEqual(unwrapSecret(subscription.inputs['endpoint']), { value: MONITORING_CONFIG.primaryOnCall.email, secret: true });
  });

  it('levels 3 and 4 text and call from the configured origination identity, and nothing else', () => {
    const statement = statementOf(`dms-${STACK}-escalation-step`, 'TextAndCallFromTheOriginationIdentity');
    assert.deepEqual(statement.Action, ['sms-voice:SendTextMessage', 'sms-voice:SendVoiceMessage']);
    assert.deepEqual(statement.Resource, [
      `arn:aws:sms-voice:us-east-2:123456789012:phone-number/${MONITORING_CONFIG.originationIdentity}`,
      'arn:aws:sms-voice:us-east-2:123456789012:opt-out-list/*',
    ]);
    const fn = named('aws:lambda/function:Function', `dms-${STACK}-escalation-step`);
    const variables = (fn.inputs['environment'] as { variables: Record<string, unknown> }).variables;
    assert.equal(variables['ORIGINATION_IDENTITY'], MONITORING_CONFIG.originationIdentity);
  });

  it('phones and names reach the functions only through an encrypted secret, never their environment', () => {
    const version = one('aws:secretsmanager/secretVersion:SecretVersion', (candidate) => candidate.name === `dms-${STACK}-escalation-contacts`);
    const { value, secret } = unwrapSecret(version.inputs['secretString']);
    assert.equal(secret, true);
    assert.deepEqual(JSON.parse(str(value)), {
      primaryOnCall: { name: MONITORING_CONFIG.primaryOnCall.name, phone: MONITORING_CONFIG.primaryOnCall.phone },
      backupOnCall: { name: MONITORING_CONFIG.backupOnCall.name, phone: MONITORING_CONFIG.backupOnCall.phone },
    });
    const everything = JSON.stringify(byType('aws:lambda/function:Function').map((fn) => fn.inputs));
    for (const personal of [MONITORING_CONFIG.primaryOnCall.phone, MONITORING_CONFIG.backupOnCall.phone, MONITORING_CONFIG.primaryOnCall.name]) {
      assert.ok(!everything.includes(personal), `a function's settings hold ${personal}`);
    }
  });

  it('the acknowledge link is a public function URL that may only record the acknowledgement and stop an escalation', () => {
    const url = one('aws:lambda/functionUrl:FunctionUrl', () => true);
    assert.equal(url.inputs['authorizationType'], 'NONE');
    const statements = rolePolicyOf(`dms-${STACK}-escalation-ack`).Statement.map((statement) => [statement.Sid, statement.Action]);
    assert.deepEqual(statements, [
      ['ReadEscalationSecrets', 'secretsmanager:GetSecretValue'],
      ['DecryptWithMonitoringKey', ['kms:Decrypt', 'kms:GenerateDataKey']],
      ['RecordAcknowledgementOnce', 'dynamodb:PutItem'],
      ['StopAcknowledgedEscalation', 'states:StopExecution'],
      ['WriteOwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents']],
    ]);
  });

  it('a broken engine is reported to the alarm topic, not through itself', () => {
    const failed = named('aws:cloudwatch/metricAlarm:MetricAlarm', `dms-${STACK}-escalation-failed`);
    const alarmTopic = named('aws:sns/topic:Topic', `dms-${STACK}-alarms`);
    assert.deepEqual(failed.inputs['alarmActions'], [arnOf(alarmTopic)]);
    const rule = named('aws:cloudwatch/eventRule:EventRule', `dms-${STACK}-escalation`);
    assert.ok(!str(rule.inputs['eventPattern']).includes('escalation-failed'));
    assert.match(str(failed.inputs['alarmDescription']), /^P1: .*Runbook: https:\/\/.*\/runbooks\/paging\.md#escalation-failed$/);
  });

  it('level 1 reaches the configured Slack channel through AWS Chatbot', () => {
    const chat = one('aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration', () => true);
    assert.equal(chat.inputs['slackTeamId'], MONITORING_CONFIG.chatSlackTeamId);
    assert.equal(chat.inputs['slackChannelId'], MONITORING_CONFIG.chatSlackChannelId);
    assert.ok((chat.inputs['snsTopicArns'] as string[]).includes(arnOf(named('aws:sns/topic:Topic', `dms-${STACK}-chat`))));
    assert.ok((chat.inputs['snsTopicArns'] as string[]).includes(arnOf(named('aws:sns/topic:Topic', `dms-${STACK}-alarms`))));
  });
});

describe('monitoring: without a Slack channel, level 1 still reaches a person', () => {
  let staging: MockedResource[];
  before(async () => {
    const { chatSlackTeamId: _team, chatSlackChannelId: _channel, ...withoutSlack } = MONITORING_CONFIG;
    staging = await recordResources('staging', () => {
      new Monitoring('monitoring', monitoringArgs('staging', withoutSlack));
    });
  });

  it('the chat topic e-mails the alarm address and no Chatbot channel is configured', () => {
    const topic = staging.find((resource) => resource.type === 'aws:sns/topic:Topic' && resource.inputs['name'] === 'dms-staging-chat');
    const subscriptions = staging.filter(
      (resource) => resource.type === 'aws:sns/topicSubscription:TopicSubscription' && resource.inputs['topic'] === arnOf(topic!),
    );
    assert.deepEqual(
      subscriptions.map((subscription) => [subscription.inputs['protocol'], subscription.inputs['endpoint']]),
      [['email', MONITORING_CONFIG.alarmEmail]],
    );
    assert.ok(!staging.some((resource) => resource.type === 'aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration'));
  });
});

describe('monitoring: Incident Manager only when the stack opts in', () => {
  let optedIn: MockedResource[];
  let sharing: MockedResource[];
  before(async () => {
    optedIn = await recordResources('production', () => {
      new Monitoring('monitoring', monitoringArgs('production', { ...MONITORING_CONFIG, incidentManager: true }));
    });
    sharing = await recordResources('staging', () => {
      new Monitoring('monitoring', monitoringArgs('staging', { ...MONITORING_CONFIG, incidentManager: true, createIncidentManagerReplicationSet: false }));
    });
  });

  it('opens an incident record per alarm through its severity’s response plan, which pages nobody itself', () => {
    const plan = optedIn.find((resource) => resource.type === 'aws:ssmincidents/responsePlan:ResponsePlan' && resource.inputs['name'] === 'dms-production-p1');
    assert.ok(plan);
    assert.equal(plan.inputs['engagements'], undefined, 'paging stays on the escalation state machine');
    const unhandled = optedIn.find((resource) => resource.type === 'aws:cloudwatch/metricAlarm:MetricAlarm' && resource.inputs['name'] === 'dms-production-unhandled-errors');
    assert.ok((unhandled?.inputs['alarmActions'] as string[]).includes(plan.state['arn'] as string));
    const fastBurn = optedIn.find((resource) => resource.inputs['alarmName'] === 'dms-production-slo-availability-fast-burn');
    assert.ok((fastBurn?.inputs['alarmActions'] as string[]).includes(plan.state['arn'] as string), 'the SLO pages open incidents too');
    assert.ok(!optedIn.some((resource) => resource.type.startsWith('aws:ssmcontacts/')));
  });

  it('creates the replication set in the stack region, unless another stack of the account owns it', () => {
    const set = optedIn.filter((resource) => resource.type === 'aws:ssmincidents/replicationSet:ReplicationSet');
    assert.deepEqual(set.map((resource) => resource.inputs['regions']), [[{ name: 'us-east-2' }]]);
    assert.ok(!sharing.some((resource) => resource.type === 'aws:ssmincidents/replicationSet:ReplicationSet'));
  });
});

describe('monitoring: log metrics count the contract’s events', () => {
  it('every filter matches only contract events, and a sample line of each', () => {
    for (const filter of metricFilters()) {
      const counted = eventsCountedBy(filter);
      assert.ok(counted.length > 0, `${str(filter.inputs['name'])} counts no contract event`);
      assert.ok(!filterMatches(str(filter.inputs['pattern']), JSON.stringify(logLine('auth_login_success'))), 'a successful login is not counted');
      assert.ok(!filterMatches(str(filter.inputs['pattern']), JSON.stringify(logLine('http_access', { statusCode: 500 }))));
    }
  });

  it('the login-failure filter counts each failure kind once a line', () => {
    const loginFailures = ROWS.find((row) => row.slug === 'login-failures')!;
    const events = /^log metric: (.+)$/.exec(loginFailures.source)![1]!.split(' + ');
    const filter = one('aws:cloudwatch/logMetricFilter:LogMetricFilter', (candidate) => eventsCountedBy(candidate).sort().join() === [...events].sort().join());
    for (const event of events) assert.ok(filterMatches(str(filter.inputs['pattern']), JSON.stringify(logLine(event))), event);
  });
});

describe('monitoring: "identify the source" ranks client IPs behind login failures', () => {
  it('a Contributor Insights rule counts login-failure lines by $.ip on the API log group', () => {
    const rule = one('aws:cloudwatch/contributorInsightRule:ContributorInsightRule', () => true);
    assert.equal(rule.inputs['ruleState'], 'ENABLED');
    const definition = JSON.parse(str(rule.inputs['ruleDefinition'])) as {
      LogGroupNames: string[];
      LogFormat: string;
      AggregateOn: string;
      Contribution: { Keys: string[]; Filters: { Match: string; In: string[] }[] };
    };
    const failures = /^log metric: (.+)$/.exec(ROWS.find((row) => row.slug === 'login-failures')!.source)![1]!.split(' + ');
    assert.deepEqual(definition.LogGroupNames, [`/dms/${STACK}/api`]);
    assert.equal(definition.LogFormat, 'JSON');
    assert.equal(definition.AggregateOn, 'Count');
    assert.deepEqual(definition.Contribution.Keys, ['$.ip']);
    assert.deepEqual(definition.Contribution.Filters, [{ Match: '$.event', In: failures }]);
  });
});

describe('monitoring: backups are watched two ways', () => {
  it('dms-<stack>-rds-events sends backup, failure, failover and low-storage events to the alarm topic', () => {
    const subscription = named('aws:rds/eventSubscription:EventSubscription', `dms-${STACK}-rds-events`);
    assert.equal(subscription.inputs['snsTopic'], arnOf(named('aws:sns/topic:Topic', `dms-${STACK}-alarms`)));
    assert.equal(subscription.inputs['sourceType'], 'db-instance');
    assert.deepEqual(new Set(subscription.inputs['eventCategories'] as string[]), new Set(['backup', 'failure', 'failover', 'low storage']));
    assert.deepEqual(subscription.inputs['sourceIds'], [`dms-${STACK}-db`, `dms-${STACK}-db-replica`]);
  });

  it('the snapshot-age check runs often enough that one missed run does not page', () => {
    const schedule = one('aws:scheduler/schedule:Schedule', () => true);
    const fn = named('aws:lambda/function:Function', `dms-${STACK}-snapshot-age`);
    assert.equal((schedule.inputs['target'] as { arn: string }).arn, arnOf(fn));
    const minutes = Number(/^rate\((\d+) minutes?\)$/.exec(str(schedule.inputs['scheduleExpression']))?.[1]);
    const period = alarm('rds-snapshot-stale').inputs['period'] as number;
    assert.ok(minutes * 60 * 2 <= period, `runs every ${minutes} min, alarm period ${period} s`);
    assert.match(str(fn.inputs['runtime']), /^nodejs(2[2-9]|[3-9]\d)\.x$/);
  });

  it('the check may read the instance’s snapshots and publish to the stack namespace only', () => {
    const fn = named('aws:lambda/function:Function', `dms-${STACK}-snapshot-age`);
    const role = one('aws:iam/role:Role', (candidate) => arnOf(candidate) === fn.inputs['role']);
    const policies = byType('aws:iam/rolePolicy:RolePolicy').filter((policy) => policy.inputs['role'] === role.state['name']);
    assert.equal(policies.length, 1, 'the function role has one inline policy');
    const statements = policies.flatMap((policy) => (JSON.parse(str(policy.inputs['policy'])) as { Statement: { Action: string | string[]; Resource: string | string[]; Condition?: unknown }[] }).Statement);
    const put = statements.find((statement) => statement.Action === 'cloudwatch:PutMetricData');
    assert.deepEqual(put?.Condition, { StringEquals: { 'cloudwatch:namespace': `DMS/${STACK}` } });
    const describe = statements.find((statement) => statement.Action === 'rds:DescribeDBSnapshots');
    assert.deepEqual(describe?.Resource, [
      `arn:aws:rds:us-east-2:123456789012:db:dms-${STACK}-db`,
      `arn:aws:rds:us-east-2:123456789012:snapshot:rds:dms-${STACK}-db-*`,
    ]);
    assert.ok(!statements.some((statement) => statement.Action === '*' || (Array.isArray(statement.Action) && statement.Action.includes('*'))));
  });
});

describe('monitoring: the snapshot-age handler', () => {
  /** What the function's environment holds in the stack (see the Lambda's `environment`). */
  const HANDLER_ENVIRONMENT = {
    DB_INSTANCE_IDENTIFIER: 'dms-production-db',
    METRIC_NAMESPACE: 'DMS/production',
    METRIC_NAME: 'LatestSnapshotAgeHours',
    DRILL_METRIC_NAME: 'OldestDrillInstanceAgeHours',
    DRILL_INSTANCE_PREFIX: 'dms-drill-production-',
    ALLOCATED_METRIC_NAME: 'AllocatedStorageBytes',
  };
  const rds = mockClient(RDSClient);
  const cloudwatch = mockClient(CloudWatchClient);
  let handler: () => Promise<{ ageHours: number | null; drillAgeHours: number; allocatedBytes: number | undefined }>;
  let directory: string;

  before(async () => {
    // Inside node_modules so the handler's SDK imports resolve to the packages mocked here.
    const cache = path.resolve('node_modules/.cache');
    await mkdir(cache, { recursive: true });
    directory = await mkdtemp(path.join(cache, 'dms-snapshot-age-'));
    const file = path.join(directory, 'index.mjs');
    await writeFile(file, SNAPSHOT_AGE_HANDLER);
    Object.assign(process.env, HANDLER_ENVIRONMENT);
    ({ handler } = (await import(pathToFileURL(file).href)) as { handler: typeof handler });
  });
  after(async () => {
    for (const name of Object.keys(HANDLER_ENVIRONMENT)) delete process.env[name];
    rds.restore();
    cloudwatch.restore();
    await rm(directory, { recursive: true, force: true });
  });
  beforeEach(() => {
    rds.reset();
    cloudwatch.reset();
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [] });
  });

  const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000);

  it('runs with the environment the stack gives the function', () => {
    const fn = named('aws:lambda/function:Function', `dms-${STACK}-snapshot-age`);
    assert.deepEqual((fn.inputs['environment'] as { variables: Record<string, string> }).variables, HANDLER_ENVIRONMENT);
  });

  it('publishes the age of the newest available automated snapshot', async () => {
    rds.on(DescribeDBSnapshotsCommand).resolves({
      DBSnapshots: [
        { Status: 'available', SnapshotCreateTime: hoursAgo(50) },
        { Status: 'available', SnapshotCreateTime: hoursAgo(27) },
        { Status: 'creating', SnapshotCreateTime: hoursAgo(1) },
      ],
    });
    const { ageHours } = await handler();
    assert.ok(ageHours !== null && Math.abs(ageHours - 27) < 0.01);
    const call = cloudwatch.commandCalls(PutMetricDataCommand).find((candidate) => candidate.args[0].input.MetricData?.[0]?.MetricName === 'LatestSnapshotAgeHours');
    const input = call!.args[0].input;
    assert.equal(input.Namespace, 'DMS/production');
    assert.equal(input.MetricData?.[0]?.MetricName, 'LatestSnapshotAgeHours');
    assert.deepEqual(input.MetricData?.[0]?.Dimensions, [{ Name: 'DBInstanceIdentifier', Value: 'dms-production-db' }]);
    assert.ok(Math.abs((input.MetricData?.[0]?.Value ?? 0) - 27) < 0.01);
    const { DBInstanceIdentifier, SnapshotType } = rds.commandCalls(DescribeDBSnapshotsCommand)[0]!.args[0].input;
    assert.deepEqual({ DBInstanceIdentifier, SnapshotType }, { DBInstanceIdentifier: 'dms-production-db', SnapshotType: 'automated' });
  });

  it('publishes nothing when there is no available snapshot, so the alarm breaches', async () => {
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ Status: 'creating', SnapshotCreateTime: hoursAgo(1) }] });
    const logged: unknown[] = [];
    const consoleError = console.error;
    console.error = (...line: unknown[]) => logged.push(...line);
    try {
      const { ageHours } = await handler();
      assert.equal(ageHours, null);
    } finally {
      console.error = consoleError;
    }
    assert.deepEqual(
      cloudwatch.commandCalls(PutMetricDataCommand).map((call) => call.args[0].input.MetricData?.[0]?.MetricName),
      ['OldestDrillInstanceAgeHours'],
      'no snapshot age at all',
    );
    assert.match(String(logged[0]), /no available automated snapshot/);
  });

  it("publishes the age of the stack's oldest drill instance still running, and 0 when there is none", async () => {
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ Status: 'available', SnapshotCreateTime: hoursAgo(3) }] });
    const drill = (id: string, startedHoursAgo: number, tags: Record<string, string> = { 'dms:drill': 'true' }, status = 'available') => ({
      DBInstanceIdentifier: id,
      DBInstanceStatus: status,
      InstanceCreateTime: hoursAgo(startedHoursAgo),
      TagList: Object.entries({ ...tags, 'dms:drill-started': hoursAgo(startedHoursAgo).toISOString() }).map(([Key, Value]) => ({ Key, Value })),
    });
    rds
      .on(DescribeDBInstancesCommand)
      .resolvesOnce({ DBInstances: [drill('dms-production-db', 900, {}), drill('dms-drill-production-202503100830', 9)], Marker: 'next' })
      .resolvesOnce({ DBInstances: [drill('dms-drill-staging-202503090000', 30), drill('dms-drill-production-202503080000', 50, { 'dms:drill': 'true' }, 'deleting'), drill('dms-drill-production-202503110000', 1)] })
      .resolves({ DBInstances: [] });
    const { drillAgeHours } = await handler();
    assert.ok(Math.abs(drillAgeHours - 9) < 0.01, String(drillAgeHours));
    const published = cloudwatch.commandCalls(PutMetricDataCommand).find((call) => call.args[0].input.MetricData?.[0]?.MetricName === 'OldestDrillInstanceAgeHours');
    assert.deepEqual(published?.args[0].input.MetricData?.[0]?.Dimensions, [{ Name: 'DBInstanceIdentifier', Value: 'dms-production-db' }]);

    cloudwatch.reset();
    const none = await handler();
    assert.equal(none.drillAgeHours, 0);
  });

  it("publishes the primary's allocated storage in bytes, found in the same listing", async () => {
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ Status: 'available', SnapshotCreateTime: hoursAgo(3) }] });
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        { DBInstanceIdentifier: 'dms-production-db-replica', AllocatedStorage: 500, TagList: [] },
        { DBInstanceIdentifier: 'dms-production-db', AllocatedStorage: 230, TagList: [] },
      ],
    });
    const { allocatedBytes } = await handler();
    assert.equal(allocatedBytes, 230 * GIB);
    const data = cloudwatch.commandCalls(PutMetricDataCommand).flatMap((call) => call.args[0].input.MetricData ?? []);
    assert.deepEqual(data.find((datum) => datum.MetricName === 'AllocatedStorageBytes'), {
      MetricName: 'AllocatedStorageBytes',
      Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'dms-production-db' }],
      Value: 230 * GIB,
      Unit: 'Bytes',
    });

    cloudwatch.reset();
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [] });
    await handler();
    const without = cloudwatch.commandCalls(PutMetricDataCommand).flatMap((call) => call.args[0].input.MetricData ?? []);
    assert.ok(!without.some((datum) => datum.MetricName === 'AllocatedStorageBytes'), 'no primary found: nothing published, the alarm keeps its state');
  });

  it('may list the instances of its region, and nothing more of RDS', () => {
    const policy = one('aws:iam/rolePolicy:RolePolicy', (candidate) => String(candidate.name).endsWith('snapshot-age-function')).inputs['policy'];
    const statements = (JSON.parse(str(policy)) as { Statement: { Sid: string; Action: string; Resource: unknown }[] }).Statement;
    const list = statements.find((statement) => statement.Sid === 'ListInstancesForDrillLeftovers');
    assert.equal(list?.Action, 'rds:DescribeDBInstances');
    assert.match(String(list?.Resource), /^arn:aws:rds:[\w-]+:\d{12}:db:\*$/);
  });
});

describe('monitoring: notifications are encrypted and only this account’s services publish', () => {
  type PolicyStatement = { Sid: string; Principal?: { Service?: string | string[] }; Action: string | string[]; Condition?: Record<string, Record<string, unknown>> };
  const statementsOf = (document: unknown) => (JSON.parse(str(document)) as { Statement: PolicyStatement[] }).Statement;
  const topicArns = [`arn:aws:sns:us-east-2:123456789012:dms-${STACK}-chat`, `arn:aws:sns:us-east-2:123456789012:dms-${STACK}-alarms`];

  it('both topics use the monitoring key, which rotates', () => {
    const key = one('aws:kms/key:Key', (candidate) => String(candidate.inputs['description']).includes('notifications'));
    assert.equal(key.inputs['enableKeyRotation'], true);
    for (const topic of [`dms-${STACK}-chat`, `dms-${STACK}-alarms`]) {
      assert.equal(named('aws:sns/topic:Topic', topic).inputs['kmsMasterKeyId'], arnOf(key));
    }
  });

  // SNS uses the key on the publisher's behalf; the publishers document their source keys for the
  // topic policy only, so the key names the two topics through the encryption context SNS sends.
  it('the key admits CloudWatch, Budgets and RDS for this stack’s two topics only, by the topic in the encryption context', () => {
    const key = one('aws:kms/key:Key', (candidate) => String(candidate.inputs['description']).includes('notifications'));
    const statement = statementsOf(key.inputs['policy']).find((candidate) => candidate.Sid === 'AlarmSourcesPublishToEncryptedTopics');
    assert.deepEqual(new Set([statement!.Principal!.Service].flat()), new Set(['cloudwatch.amazonaws.com', 'budgets.amazonaws.com', 'events.rds.amazonaws.com']));
    assert.deepEqual(statement!.Condition, { StringEquals: { 'kms:EncryptionContext:aws:sns:topicArn': topicArns } });
    for (const topic of topicArns) assert.ok(topicArns.includes(arnOf(named('aws:sns/topic:Topic', topic.split(':').at(-1)!))), topic);
  });

  it('the alarm topic admits each publisher with the source keys its documentation says it sends', () => {
    const topicArn = arnOf(named('aws:sns/topic:Topic', `dms-${STACK}-alarms`));
    const policy = one('aws:sns/topicPolicy:TopicPolicy', (candidate) => candidate.inputs['arn'] === topicArn);
    const byService: Record<string, PolicyStatement> = Object.fromEntries(statementsOf(policy.inputs['policy']).map((statement) => [statement.Principal!.Service, statement]));
    assert.deepEqual(Object.keys(byService).sort(), ['budgets.amazonaws.com', 'cloudwatch.amazonaws.com', 'events.rds.amazonaws.com']);
    for (const statement of Object.values(byService)) assert.equal(statement.Action, 'sns:Publish');
    const account = { 'aws:SourceAccount': '123456789012' };
    assert.deepEqual(byService['cloudwatch.amazonaws.com']!.Condition, { StringEquals: account, ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:us-east-2:123456789012:alarm:*' } });
    // Budgets is global: its ARNs have no region (budgets-sns-policy.html).
    assert.deepEqual(byService['budgets.amazonaws.com']!.Condition, { StringEquals: account, ArnLike: { 'aws:SourceArn': 'arn:aws:budgets::123456789012:*' } });
    // RDS publishes for the instance, the parameter group and the security group: any RDS ARN of the account and region.
    assert.deepEqual(byService['events.rds.amazonaws.com']!.Condition, { StringEquals: account, ArnLike: { 'aws:SourceArn': 'arn:aws:rds:us-east-2:123456789012:*' } });
  });

  it('the chat topic admits CloudWatch alarms of this account only', () => {
    const topicArn = arnOf(named('aws:sns/topic:Topic', `dms-${STACK}-chat`));
    const policy = one('aws:sns/topicPolicy:TopicPolicy', (candidate) => candidate.inputs['arn'] === topicArn);
    const statements = statementsOf(policy.inputs['policy']);
    assert.deepEqual(statements.map((statement) => statement.Principal!.Service), ['cloudwatch.amazonaws.com']);
  });
});

describe('monitoring: the dashboard shows the golden signals and the database', () => {
  it('graphs latency percentiles, traffic by status class, errors, saturation and the database', () => {
    const dashboard = one('aws:cloudwatch/dashboard:Dashboard', () => true);
    const body = JSON.parse(str(dashboard.inputs['dashboardBody'])) as { widgets: { type: string; properties: { metrics?: unknown[][]; alarms?: string[] } }[] };
    const lines = body.widgets.flatMap((widget) => widget.properties.metrics ?? []);
    const has = (namespace: string, metricName: string, option?: Record<string, unknown>) =>
      lines.some((line) => line[0] === namespace && line[1] === metricName && (!option || Object.entries(option).every(([k, v]) => (line.at(-1) as Record<string, unknown>)[k] === v)));
    for (const stat of ['p50', 'p95', 'p99']) assert.ok(has('AWS/ApplicationELB', 'TargetResponseTime', { stat }), stat);
    for (const status of ['2XX', '3XX', '4XX', '5XX']) assert.ok(has('AWS/ApplicationELB', `HTTPCode_Target_${status}_Count`), status);
    for (const metric of ['CPUUtilization', 'MemoryUtilization']) assert.ok(has('AWS/ECS', metric), metric);
    assert.ok(has('ECS/ContainerInsights', 'RunningTaskCount'));
    for (const metric of ['CPUUtilization', 'DatabaseConnections', 'FreeStorageSpace', 'ReplicaLag']) assert.ok(has('AWS/RDS', metric), metric);
    const alarms = body.widgets.find((widget) => widget.type === 'alarm')?.properties.alarms ?? [];
    assert.equal(alarms.length, ROWS.length + byType('aws:cloudwatch/compositeAlarm:CompositeAlarm').length, 'every alarm that pages, the SLO pages included');
  });
});
