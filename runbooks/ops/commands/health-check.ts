import { readFileSync } from 'node:fs';
import { DescribeBudgetCommand } from '@aws-sdk/client-budgets';
import { DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import { defineCommand, stackShortName } from '../lib/command.js';
import type { AwsClients } from '../lib/aws.js';
import type { OpsContext } from '../lib/context.js';
import { describeService } from '../lib/ecs.js';
import { describeError, UsageError } from '../lib/errors.js';
import { eventList, runInsightsQuery } from '../lib/insights.js';
import { accountIdOf, loadOutputs, optionalOutput, requireOutputs, type StackOutputs } from '../lib/outputs.js';
import { latestAutomatedSnapshot } from '../lib/rds.js';
import { Progress, printSummary } from '../lib/report.js';
import { formatDuration, parseDuration } from '../lib/time.js';

/** The rds-snapshot-stale alarm's threshold: a daily backup plus two hours of slack. */
export const SNAPSHOT_MAX_AGE_MS = 26 * 3_600_000;
const HTTP_TIMEOUT_MS = 10_000;
const ERROR_EVENTS = ['unhandled_error', 'unhandled_error_non_error'] as const;
const REQUEST_EVENT = 'http_access';
const DEFAULT_SINCE = '15m';
/** Unhandled errors per request that still pass: the availability SLO's fast-burn page fires at 1.44% (99.9%), a recovered service is far below 1%. */
const DEFAULT_MAX_ERROR_RATE_PERCENT = 1;

export const CHECK_IDS = ['api-health', 'api-ready', 'ecs-tasks', 'rds-primary', 'rds-replica', 'alarms', 'error-rate', 'snapshot', 'budget'] as const;
export type CheckId = (typeof CHECK_IDS)[number];
const SEVERITY_LEVELS = ['P0', 'P1', 'P2', 'P3'] as const;

/**
 * What a runbook's end state needs: the checks whose failure keeps its incident open, and which
 * alarms in ALARM count (`own`: those whose description links the runbook; or by severity).
 */
export interface HealthProfile {
  required: readonly CheckId[];
  alarms: 'own' | readonly string[];
}

/** The runbook whose daily check runs without `--for`. */
export const DAILY_PROFILE = 'operations';

function loadProfiles(): ReadonlyMap<string, HealthProfile> {
  const raw = JSON.parse(readFileSync(new URL('../health-profiles.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  const profiles = new Map<string, HealthProfile>();
  for (const [runbook, value] of Object.entries(raw)) {
    if (runbook === '//') continue;
    const profile = value as Partial<HealthProfile>;
    const required = profile.required ?? [];
    const unknown = required.filter((id) => !(CHECK_IDS as readonly string[]).includes(id));
    const alarmsValid = profile.alarms === 'own' || (Array.isArray(profile.alarms) && profile.alarms.every((level) => (SEVERITY_LEVELS as readonly string[]).includes(level)));
    if (unknown.length > 0 || !alarmsValid) throw new Error(`health-profiles.json: profile ${runbook} names unknown checks (${unknown.join(', ')}) or alarms`);
    profiles.set(runbook, { required, alarms: profile.alarms as HealthProfile['alarms'] });
  }
  if (!profiles.has(DAILY_PROFILE)) throw new Error(`health-profiles.json has no ${DAILY_PROFILE} profile`);
  return profiles;
}

/** Runbook (file name without `.md`) to what its end state needs. */
export const HEALTH_PROFILES = loadProfiles();

interface CheckResult {
  ok: boolean;
  detail: string;
}

interface Check {
  id: CheckId;
  name: string;
  run(): Promise<CheckResult>;
}

type HealthOutputs = Pick<
  StackOutputs,
  'region' | 'apiUrl' | 'clusterName' | 'serviceName' | 'dbInstanceIdentifier' | 'logGroupName' | 'budgetName' | 'dbKmsKeyArn'
> & { dbReplicaIdentifier: string | undefined };

interface CheckSettings {
  runbook: string;
  profile: HealthProfile;
  sinceMs: number;
  maxErrorRatePercent: number;
}

async function httpCheck(url: string, expectBody: boolean): Promise<CheckResult> {
  const response = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  const body = (await response.text()).replace(/\s+/g, ' ').trim().slice(0, 200);
  if (response.status !== 200) return { ok: false, detail: `HTTP ${response.status} ${body}` };
  if (expectBody) {
    let status: unknown;
    try {
      status = (JSON.parse(body) as { status?: unknown }).status;
    } catch {
      status = undefined;
    }
    if (status !== 'ok') return { ok: false, detail: `HTTP 200 but body is not {"status":"ok"}: ${body}` };
  }
  return { ok: true, detail: `HTTP 200 ${body}` };
}

/**
 * An instance is healthy in its role: the primary available and writable (no replication source),
 * the replica available and replicating from that primary. After a failover the stack's outputs
 * name the promoted instance as the replica until the program is changed, and it must not pass.
 */
async function instanceCheck(clients: AwsClients, identifier: string, replicaOf?: string): Promise<CheckResult> {
  const response = await clients.rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }));
  const instance = response.DBInstances?.[0];
  const status = instance?.DBInstanceStatus ?? 'not found';
  const source = instance?.ReadReplicaSourceDBInstanceIdentifier;
  if (status !== 'available') return { ok: false, detail: `${identifier} ${status}` };
  if (replicaOf === undefined && source) return { ok: false, detail: `${identifier} available but a read replica of ${source}, not the primary` };
  if (replicaOf !== undefined && source !== replicaOf) {
    return { ok: false, detail: `${identifier} available but ${source ? `replicating from ${source}` : 'standalone'}, not a replica of ${replicaOf}` };
  }
  return { ok: true, detail: `${identifier} ${status}${source ? `, replicating from ${source}` : ''}` };
}

interface FiringAlarm {
  name: string;
  severity: string | undefined;
  /** The runbook file its description links (`database.md`). */
  runbook: string | undefined;
}

/** Alarms `dms-<stack>-*` in ALARM, with the severity and runbook their descriptions state (`P1: … Runbook: …/runbooks/x.md#…`). */
async function firingAlarms(clients: AwsClients, prefix: string): Promise<FiringAlarm[]> {
  const firing: FiringAlarm[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.cloudwatch().send(
      new DescribeAlarmsCommand({ AlarmNamePrefix: prefix, StateValue: 'ALARM', AlarmTypes: ['MetricAlarm', 'CompositeAlarm'], NextToken: nextToken }),
    );
    for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
      const description = alarm.AlarmDescription ?? '';
      firing.push({
        name: alarm.AlarmName ?? '?',
        severity: /^(P[0-3]):/.exec(description)?.[1],
        runbook: /runbooks\/([\w.-]+\.md)#/.exec(description)?.[1],
      });
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return firing.sort((a, b) => a.name.localeCompare(b.name));
}

function alarmsCheck(firing: readonly FiringAlarm[], prefix: string, settings: CheckSettings): CheckResult {
  const { alarms } = settings.profile;
  const counts = (alarm: FiringAlarm) => (alarms === 'own' ? alarm.runbook === `${settings.runbook}.md` : alarm.severity !== undefined && alarms.includes(alarm.severity));
  const concern = alarms === 'own' ? `${settings.runbook}.md's alarms` : `${alarms.join('/')} alarms`;
  const label = (alarm: FiringAlarm) => `${alarm.name} (${alarm.severity ?? 'no severity'}, ${alarm.runbook ?? 'no runbook'})`;
  const counted = firing.filter(counts);
  const others = firing.filter((alarm) => !counts(alarm));
  const othersText = others.length > 0 ? `; also in ALARM, not counted here: ${others.map(label).join(', ')}` : '';
  if (counted.length > 0) return { ok: false, detail: `in ALARM: ${counted.map(label).join(', ')}${othersText}` };
  return { ok: true, detail: `none of the ${concern} (${prefix}*) in ALARM${othersText}` };
}

/** Unhandled errors per request over the window: a rate, so one error an hour ago does not fail the check. */
async function errorRateCheck(ctx: OpsContext, progress: Progress, clients: AwsClients, outputs: HealthOutputs, settings: CheckSettings): Promise<CheckResult> {
  const end = ctx.clock.now();
  const rows = await runInsightsQuery(ctx, progress, clients.logs(), {
    logGroupName: outputs.logGroupName,
    queryString: `filter event in ${eventList([...ERROR_EVENTS, REQUEST_EVENT])} | stats count(*) as lines by event`,
    start: new Date(end.getTime() - settings.sinceMs),
    end,
  });
  const count = (events: readonly string[]) => rows.filter((row) => events.includes(String(row.event))).reduce((sum, row) => sum + Number(row.lines ?? 0), 0);
  const errors = count(ERROR_EVENTS);
  const requests = count([REQUEST_EVENT]);
  const rate = errors === 0 ? 0 : (100 * errors) / Math.max(requests, errors);
  return {
    ok: rate <= settings.maxErrorRatePercent,
    detail: `${errors} unhandled errors in ${requests} requests over ${formatDuration(settings.sinceMs)} (${rate.toFixed(2)}%, limit ${settings.maxErrorRatePercent}%)`,
  };
}

function checksFor(stack: string, outputs: HealthOutputs, clients: AwsClients, ctx: OpsContext, progress: Progress, settings: CheckSettings): Check[] {
  const prefix = `dms-${stackShortName(stack)}-`;
  return [
    { id: 'api-health', name: 'api /health', run: () => httpCheck(`${outputs.apiUrl}/health`, true) },
    { id: 'api-ready', name: 'api /health/ready', run: () => httpCheck(`${outputs.apiUrl}/health/ready`, false) },
    {
      id: 'ecs-tasks',
      name: 'ecs tasks',
      run: async () => {
        const service = await describeService(clients.ecs(), { cluster: outputs.clusterName, service: outputs.serviceName });
        const running = service.runningCount ?? 0;
        const desired = service.desiredCount ?? 0;
        return { ok: desired > 0 && running >= desired, detail: `running ${running} of desired ${desired}, pending ${service.pendingCount ?? 0}` };
      },
    },
    { id: 'rds-primary', name: 'rds primary', run: () => instanceCheck(clients, outputs.dbInstanceIdentifier) },
    {
      id: 'rds-replica',
      name: 'rds replica',
      run: async () =>
        outputs.dbReplicaIdentifier === undefined
          ? { ok: true, detail: 'no read replica in this stack' }
          : instanceCheck(clients, outputs.dbReplicaIdentifier, outputs.dbInstanceIdentifier),
    },
    { id: 'alarms', name: 'alarms', run: async () => alarmsCheck(await firingAlarms(clients, prefix), prefix, settings) },
    { id: 'error-rate', name: 'error rate', run: () => errorRateCheck(ctx, progress, clients, outputs, settings) },
    {
      id: 'snapshot',
      name: 'latest snapshot',
      run: async () => {
        const snapshot = await latestAutomatedSnapshot(clients.rds(), outputs.dbInstanceIdentifier);
        if (!snapshot?.SnapshotCreateTime) return { ok: false, detail: `no available automated snapshot of ${outputs.dbInstanceIdentifier}` };
        const age = ctx.clock.now().getTime() - snapshot.SnapshotCreateTime.getTime();
        return { ok: age < SNAPSHOT_MAX_AGE_MS, detail: `${snapshot.DBSnapshotIdentifier} is ${formatDuration(age)} old (limit ${formatDuration(SNAPSHOT_MAX_AGE_MS)})` };
      },
    },
    {
      id: 'budget',
      name: 'budget',
      run: async () => {
        const response = await clients.budgets().send(new DescribeBudgetCommand({ AccountId: accountIdOf(outputs.dbKmsKeyArn), BudgetName: outputs.budgetName }));
        const limit = response.Budget?.BudgetLimit;
        const actual = response.Budget?.CalculatedSpend?.ActualSpend;
        const forecast = response.Budget?.CalculatedSpend?.ForecastedSpend;
        if (!limit?.Amount || !actual?.Amount) return { ok: false, detail: `${outputs.budgetName} reports no limit or actual spend` };
        const share = Number(actual.Amount) / Number(limit.Amount);
        const forecastText = forecast?.Amount
          ? `, forecast ${forecast.Amount} ${forecast.Unit ?? ''}${Number(forecast.Amount) > Number(limit.Amount) ? ' (over the limit)' : ''}`
          : '';
        return {
          ok: share < 1,
          detail: `${outputs.budgetName}: actual ${actual.Amount} ${actual.Unit ?? ''} of ${limit.Amount} ${limit.Unit ?? ''} (${Math.round(share * 100)}%)${forecastText}`,
        };
      },
    },
  ];
}

function parsePercent(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || value > 100) throw new UsageError(`--${flag} must be a percentage from 0 to 100, got "${text}"`);
  return value;
}

function profileFor(runbook: string): HealthProfile {
  const profile = HEALTH_PROFILES.get(runbook);
  if (!profile) throw new UsageError(`--for must name a runbook: ${[...HEALTH_PROFILES.keys()].join(', ')}; got "${runbook}"`);
  return profile;
}

export const healthCheck = defineCommand({
  name: 'health-check',
  summary: "the daily check, or a runbook's end state (--for): API, tasks, database, alarms, error rate, backups, budget",
  options: {
    for: {
      type: 'string',
      valueName: 'runbook',
      description: `judge by what this runbook's end state needs (${[...HEALTH_PROFILES.keys()].join(', ')}; default ${DAILY_PROFILE}, the daily check)`,
    },
    since: { type: 'string', valueName: 'duration', description: `window of the error rate: 15m, 1h (default ${DEFAULT_SINCE})` },
    'max-error-rate': {
      type: 'string',
      valueName: 'percent',
      description: `unhandled errors per request in the window still counted as ok (default ${DEFAULT_MAX_ERROR_RATE_PERCENT})`,
    },
  },
  details: [
    'One line per check, with what was seen: GET /health and /health/ready through apiUrl, running vs desired ECS',
    'tasks, RDS primary and replica status, alarms dms-<stack>-* in ALARM, the unhandled-error rate (Logs Insights,',
    'errors per http_access line over --since), age of the latest automated snapshot (< 26 h), budget actual vs limit.',
    'The runbook (--for, see runbooks/ops/health-profiles.json) decides which checks are required and which alarms',
    'count: its own (those whose description links it), or P0/P1 for the daily check. A required check that fails is',
    'FAIL; any other that fails is "warn" and does not change the verdict (the budget is never required).',
    'Exit status 1 when a required check fails; the summary names each with what it saw.',
    'Example: npm run ops -- health-check --stack production --for database',
  ],
  async run({ options }, ctx) {
    const runbook = options.for ?? DAILY_PROFILE;
    const settings: CheckSettings = {
      runbook,
      profile: profileFor(runbook),
      sinceMs: parseDuration(options.since ?? DEFAULT_SINCE, 'since'),
      maxErrorRatePercent: parsePercent(options['max-error-rate'] ?? String(DEFAULT_MAX_ERROR_RATE_PERCENT), 'max-error-rate'),
    };
    const loaded = await loadOutputs(options.stack, options.outputs, ctx);
    const outputs: HealthOutputs = {
      ...requireOutputs(loaded, ['region', 'apiUrl', 'clusterName', 'serviceName', 'dbInstanceIdentifier', 'logGroupName', 'budgetName', 'dbKmsKeyArn']),
      dbReplicaIdentifier: optionalOutput(loaded, 'dbReplicaIdentifier'),
    };
    const progress = new Progress(ctx);
    const checks = checksFor(options.stack, outputs, ctx.aws(outputs.region), ctx, progress, settings);
    // Independent checks run together; a check that throws (AccessDenied, timeout) fails, it does not abort the rest.
    const results = await Promise.all(checks.map((check) => check.run().catch((error: unknown): CheckResult => ({ ok: false, detail: describeError(error) }))));
    const width = Math.max(...checks.map((check) => check.name.length));
    const verdicts = checks.map((check, index) => {
      const result = results[index] ?? { ok: false, detail: 'not run' };
      const required = settings.profile.required.includes(check.id);
      return { check, result, status: result.ok ? 'ok' : required ? 'FAIL' : 'warn' };
    });
    for (const { check, result, status } of verdicts) ctx.io.out(`${status.padEnd(4)}  ${check.name.padEnd(width)}  ${result.detail}`);
    const failed = verdicts.filter((verdict) => verdict.status === 'FAIL');
    const warnings = verdicts.filter((verdict) => verdict.status === 'warn');
    printSummary(ctx, `health-check: ${options.stack}`, [
      ['for', runbook === DAILY_PROFILE ? `${runbook}.md (the daily check)` : `${runbook}.md`],
      ['required', checks.filter((check) => settings.profile.required.includes(check.id)).map((check) => check.name).join(', ')],
      ['failed', failed.length === 0 ? 'none' : failed.map(({ check, result }) => `${check.name}: ${result.detail}`).join('; ')],
      ['warnings', warnings.length === 0 ? 'none' : warnings.map(({ check, result }) => `${check.name}: ${result.detail}`).join('; ')],
      ['result', failed.length === 0 ? 'HEALTHY' : 'UNHEALTHY'],
    ]);
    return failed.length === 0 ? 0 : 1;
  },
});
