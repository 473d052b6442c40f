import { DescribeBudgetCommand } from '@aws-sdk/client-budgets';
import { DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeDBInstancesCommand } from '@aws-sdk/client-rds';
import { defineCommand, parseInteger, stackShortName } from '../lib/command.js';
import type { AwsClients } from '../lib/aws.js';
import type { OpsContext } from '../lib/context.js';
import { describeService } from '../lib/ecs.js';
import { describeError } from '../lib/errors.js';
import { eventList, runInsightsQuery } from '../lib/insights.js';
import { accountIdOf, loadOutputs, optionalOutput, requireOutputs, type StackOutputs } from '../lib/outputs.js';
import { latestAutomatedSnapshot } from '../lib/rds.js';
import { Progress, printSummary } from '../lib/report.js';
import { formatDuration } from '../lib/time.js';

/** The rds-snapshot-stale alarm's threshold: a daily backup plus two hours of slack. */
export const SNAPSHOT_MAX_AGE_MS = 26 * 3_600_000;
const HTTP_TIMEOUT_MS = 10_000;
const ERROR_EVENTS = ['unhandled_error', 'unhandled_error_non_error'] as const;

interface CheckResult {
  ok: boolean;
  detail: string;
}

interface Check {
  name: string;
  run(): Promise<CheckResult>;
}

type HealthOutputs = Pick<
  StackOutputs,
  'region' | 'apiUrl' | 'clusterName' | 'serviceName' | 'dbInstanceIdentifier' | 'logGroupName' | 'budgetName' | 'dbKmsKeyArn'
> & { dbReplicaIdentifier: string | undefined };

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

async function instanceCheck(clients: AwsClients, identifier: string): Promise<CheckResult> {
  const response = await clients.rds().send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }));
  const status = response.DBInstances?.[0]?.DBInstanceStatus ?? 'not found';
  return { ok: status === 'available', detail: `${identifier} ${status}` };
}

function checksFor(stack: string, outputs: HealthOutputs, clients: AwsClients, ctx: OpsContext, progress: Progress, maxErrors: number): Check[] {
  return [
    { name: 'api /health', run: () => httpCheck(`${outputs.apiUrl}/health`, true) },
    { name: 'api /health/ready', run: () => httpCheck(`${outputs.apiUrl}/health/ready`, false) },
    {
      name: 'ecs tasks',
      run: async () => {
        const service = await describeService(clients.ecs(), { cluster: outputs.clusterName, service: outputs.serviceName });
        const running = service.runningCount ?? 0;
        const desired = service.desiredCount ?? 0;
        return { ok: desired > 0 && running >= desired, detail: `running ${running} of desired ${desired}, pending ${service.pendingCount ?? 0}` };
      },
    },
    { name: 'rds primary', run: () => instanceCheck(clients, outputs.dbInstanceIdentifier) },
    {
      name: 'rds replica',
      run: async () =>
        outputs.dbReplicaIdentifier === undefined ? { ok: true, detail: 'no read replica in this stack' } : instanceCheck(clients, outputs.dbReplicaIdentifier),
    },
    {
      name: 'alarms',
      run: async () => {
        const prefix = `dms-${stackShortName(stack)}-`;
        const firing: string[] = [];
        let nextToken: string | undefined;
        do {
          const page = await clients.cloudwatch().send(
            new DescribeAlarmsCommand({ AlarmNamePrefix: prefix, StateValue: 'ALARM', AlarmTypes: ['MetricAlarm', 'CompositeAlarm'], NextToken: nextToken }),
          );
          for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) firing.push(alarm.AlarmName ?? '?');
          nextToken = page.NextToken;
        } while (nextToken);
        return { ok: firing.length === 0, detail: firing.length === 0 ? `none of ${prefix}* in ALARM` : `in ALARM: ${firing.sort().join(', ')}` };
      },
    },
    {
      name: 'errors (last hour)',
      run: async () => {
        const end = ctx.clock.now();
        const rows = await runInsightsQuery(ctx, progress, clients.logs(), {
          logGroupName: outputs.logGroupName,
          queryString: `filter event in ${eventList(ERROR_EVENTS)} | stats count(*) as errors`,
          start: new Date(end.getTime() - 3_600_000),
          end,
        });
        const errors = Number(rows[0]?.errors ?? 0);
        return { ok: errors <= maxErrors, detail: `${errors} ${ERROR_EVENTS.join('/')} in ${outputs.logGroupName} (allowed ${maxErrors})` };
      },
    },
    {
      name: 'latest snapshot',
      run: async () => {
        const snapshot = await latestAutomatedSnapshot(clients.rds(), outputs.dbInstanceIdentifier);
        if (!snapshot?.SnapshotCreateTime) return { ok: false, detail: `no available automated snapshot of ${outputs.dbInstanceIdentifier}` };
        const age = ctx.clock.now().getTime() - snapshot.SnapshotCreateTime.getTime();
        return { ok: age < SNAPSHOT_MAX_AGE_MS, detail: `${snapshot.DBSnapshotIdentifier} is ${formatDuration(age)} old (limit ${formatDuration(SNAPSHOT_MAX_AGE_MS)})` };
      },
    },
    {
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

export const healthCheck = defineCommand({
  name: 'health-check',
  summary: 'the daily check: API health, tasks, database, alarms, errors, backups, budget',
  options: {
    'max-errors': { type: 'string', valueName: 'n', description: 'unhandled errors in the last hour still counted as ok (default 0)' },
  },
  details: [
    'One line per check, "ok" or "FAIL" with what was seen: GET /health and /health/ready through apiUrl, running vs',
    'desired ECS tasks, RDS primary and replica status, alarms dms-<stack>-* in ALARM, unhandled_error events in the',
    'last hour (Logs Insights), age of the latest automated snapshot (< 26 h), budget actual vs limit.',
    'Exit status 1 when any check fails. Example: npm run ops -- health-check --stack production',
  ],
  async run({ options }, ctx) {
    const maxErrors = parseInteger(options['max-errors'] ?? '0', 'max-errors', 0, 1_000_000);
    const loaded = await loadOutputs(options.stack, options.outputs, ctx);
    const outputs: HealthOutputs = {
      ...requireOutputs(loaded, ['region', 'apiUrl', 'clusterName', 'serviceName', 'dbInstanceIdentifier', 'logGroupName', 'budgetName', 'dbKmsKeyArn']),
      dbReplicaIdentifier: optionalOutput(loaded, 'dbReplicaIdentifier'),
    };
    const progress = new Progress(ctx);
    const checks = checksFor(options.stack, outputs, ctx.aws(outputs.region), ctx, progress, maxErrors);
    // Independent checks run together; a check that throws (AccessDenied, timeout) is a FAIL, not an abort.
    const results = await Promise.all(checks.map((check) => check.run().catch((error: unknown): CheckResult => ({ ok: false, detail: describeError(error) }))));
    const width = Math.max(...checks.map((check) => check.name.length));
    checks.forEach((check, index) => {
      const result = results[index] ?? { ok: false, detail: 'not run' };
      ctx.io.out(`${(result.ok ? 'ok' : 'FAIL').padEnd(4)}  ${check.name.padEnd(width)}  ${result.detail}`);
    });
    const failed = checks.filter((_, index) => !results[index]?.ok).map((check) => check.name);
    printSummary(ctx, `health-check: ${options.stack}`, [
      ['checks', String(checks.length)],
      ['failed', failed.length === 0 ? 'none' : failed.join(', ')],
      ['result', failed.length === 0 ? 'HEALTHY' : 'UNHEALTHY'],
    ]);
    return failed.length === 0 ? 0 : 1;
  },
});
