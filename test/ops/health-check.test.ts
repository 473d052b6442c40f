import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { DescribeBudgetCommand } from '@aws-sdk/client-budgets';
import { DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { GetQueryResultsCommand, StartQueryCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeServicesCommand } from '@aws-sdk/client-ecs';
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { CHECK_IDS, DAILY_PROFILE, HEALTH_PROFILES, type CheckId } from '../../runbooks/ops/commands/health-check.js';
import { json, localServer, outputsFile, runCli, T0, useAwsMocks, type AwsMocks } from './support.js';

const HOUR = 3_600_000;
const RUNBOOKS = new URL('../../runbooks/', import.meta.url);

interface ApiState {
  health: number;
  ready: number;
}

/** An alarm as DescribeAlarms returns it: its description states its severity and runbook section. */
const alarm = (name: string, severity: string, runbook: string) => ({
  AlarmName: `dms-production-${name}`,
  AlarmDescription: `${severity}: what it means. Runbook: https://example.test/dms/blob/main/runbooks/${runbook}#section`,
});

/** Logs Insights rows of the error-rate query: lines per event. */
const eventCounts = (errors: number, requests: number) => ({
  status: 'Complete' as const,
  results: [
    [{ field: 'event', value: 'http_access' }, { field: 'lines', value: String(requests) }],
    ...(errors > 0 ? [[{ field: 'event', value: 'unhandled_error' }, { field: 'lines', value: String(errors) }]] : []),
  ],
});

/** Every check healthy: a test then breaks what it is about. */
function healthyStack(aws: AwsMocks): void {
  aws.ecs.on(DescribeServicesCommand).resolves({ services: [{ status: 'ACTIVE', desiredCount: 3, runningCount: 3, pendingCount: 0 }] });
  aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production' }).resolves({ DBInstances: [{ DBInstanceStatus: 'available' }] });
  aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production-replica-1' }).resolves({ DBInstances: [{ DBInstanceStatus: 'available', ReadReplicaSourceDBInstanceIdentifier: 'dms-production' }] });
  aws.cloudwatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [], CompositeAlarms: [] });
  aws.logs.on(StartQueryCommand).resolves({ queryId: 'q-errors' });
  aws.logs.on(GetQueryResultsCommand).resolves(eventCounts(0, 1200));
  aws.rds.on(DescribeDBSnapshotsCommand).resolves({
    DBSnapshots: [{ DBSnapshotIdentifier: 'rds:dms-production-2025-03-10-03-10', Status: 'available', SnapshotCreateTime: new Date(T0.getTime() - 6 * HOUR) }],
  });
  aws.budgets.on(DescribeBudgetCommand).resolves({
    Budget: {
      BudgetName: 'dms-production-monthly',
      BudgetType: 'COST',
      TimeUnit: 'MONTHLY',
      BudgetLimit: { Amount: '1500.0', Unit: 'USD' },
      CalculatedSpend: { ActualSpend: { Amount: '812.4', Unit: 'USD' }, ForecastedSpend: { Amount: '1390.0', Unit: 'USD' } },
    },
  });
}

/** The line a check prints, by its label. */
const CHECK_LABELS: Record<CheckId, string> = {
  'api-health': 'api /health',
  'api-ready': 'api /health/ready',
  'ecs-tasks': 'ecs tasks',
  'rds-primary': 'rds primary',
  'rds-replica': 'rds replica',
  alarms: 'alarms',
  'error-rate': 'error rate',
  snapshot: 'latest snapshot',
  budget: 'budget',
};

function lineOf(stdout: string, check: string): string {
  return stdout.split('\n').find((line) => new RegExp(`^(ok|FAIL|warn)\\s+${check.replace(/[/]/g, '\\/')}\\s{2}`).test(line)) ?? `(no line for ${check})`;
}

function summaryRow(stdout: string, row: string): string {
  return stdout.split('\n').find((line) => new RegExp(`^\\s*${row}\\s`).test(line))?.trim() ?? `(no ${row} row)`;
}

describe('ops health-check: one line per check, and a verdict by what the runbook needs', () => {
  const aws = useAwsMocks();
  const api: ApiState = { health: 200, ready: 200 };
  const requests: string[] = [];
  let server: Awaited<ReturnType<typeof localServer>>;
  let outputs: string;

  /** Makes one check fail the way production would; for `alarms`, with an alarm the runbook counts. */
  function breakCheck(id: CheckId, runbook: string): void {
    const profile = HEALTH_PROFILES.get(runbook)!;
    switch (id) {
      case 'api-health':
        api.health = 500;
        return;
      case 'api-ready':
        api.ready = 503;
        return;
      case 'ecs-tasks':
        aws.ecs.on(DescribeServicesCommand).resolves({ services: [{ status: 'ACTIVE', desiredCount: 3, runningCount: 1, pendingCount: 2 }] });
        return;
      case 'rds-primary':
        aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production' }).resolves({ DBInstances: [{ DBInstanceStatus: 'storage-full' }] });
        return;
      case 'rds-replica':
        aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production-replica-1' }).resolves({ DBInstances: [{ DBInstanceStatus: 'incompatible-network' }] });
        return;
      case 'alarms':
        aws.cloudwatch.on(DescribeAlarmsCommand).resolves({
          MetricAlarms: [profile.alarms === 'own' ? alarm('counted', 'P3', `${runbook}.md`) : alarm('counted', profile.alarms[0]!, 'elsewhere.md')],
        });
        return;
      case 'error-rate':
        aws.logs.on(GetQueryResultsCommand).resolves(eventCounts(40, 1000));
        return;
      case 'snapshot':
        aws.rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: 'rds:old', Status: 'available', SnapshotCreateTime: new Date(T0.getTime() - 30 * HOUR) }] });
        return;
      case 'budget':
        aws.budgets.on(DescribeBudgetCommand).resolves({
          Budget: { BudgetName: 'b', BudgetType: 'COST', TimeUnit: 'MONTHLY', BudgetLimit: { Amount: '1500', Unit: 'USD' }, CalculatedSpend: { ActualSpend: { Amount: '1612.5', Unit: 'USD' } } },
        });
    }
  }

  const run = (...args: string[]) => runCli(['health-check', '--stack', 'production', '--outputs', outputs, ...args]);

  before(async () => {
    server = await localServer((request, response) => {
      requests.push(`${request.method} ${request.url}`);
      if (request.url === '/health') return api.health === 200 ? json(response, 200, { status: 'ok' }) : json(response, api.health, { error: 'internal' });
      if (request.url === '/health/ready') {
        return api.ready === 200 ? json(response, 200, { status: 'ready' }) : json(response, api.ready, { status: 'unavailable', primary: 'down', replicas: ['ok'] });
      }
      json(response, 404, { error: 'not_found' });
    });
    outputs = outputsFile({ apiUrl: server.url });
  });
  after(() => server.close());
  beforeEach(() => {
    api.health = 200;
    api.ready = 200;
    requests.length = 0;
  });

  it('prints ok for every check and exits 0 when the stack is healthy (the daily check)', async () => {
    healthyStack(aws);
    const result = await run();
    assert.equal(result.code, 0, result.stdout);
    const lines = result.stdout.split('\n').filter((line) => /^(ok|FAIL|warn)\s/.test(line));
    assert.equal(lines.length, CHECK_IDS.length);
    assert.ok(lines.every((line) => line.startsWith('ok ')), lines.join('\n'));
    assert.deepEqual(requests.sort(), ['GET /health', 'GET /health/ready']);
    assert.match(lineOf(result.stdout, 'budget'), /actual 812\.4 USD of 1500\.0 USD \(54%\), forecast 1390\.0 USD/);
    assert.match(lineOf(result.stdout, 'latest snapshot'), /rds:dms-production-2025-03-10-03-10 is 6h old \(limit 1d02h\)/);
    assert.match(lineOf(result.stdout, 'error rate'), /0 unhandled errors in 1200 requests over 15m \(0\.00%, limit 1%\)/);
    assert.match(summaryRow(result.stdout, 'for'), /operations\.md \(the daily check\)/);
    assert.match(summaryRow(result.stdout, 'result'), /HEALTHY/);
  });

  it('asks AWS the right questions: alarms with their descriptions, requests and errors over the window', async () => {
    healthyStack(aws);
    await run('--since', '30m');
    assert.deepEqual(aws.ecs.commandCalls(DescribeServicesCommand)[0]?.args[0].input, { cluster: 'dms-production', services: ['dms-api-production'] });
    assert.deepEqual(aws.cloudwatch.commandCalls(DescribeAlarmsCommand)[0]?.args[0].input, {
      AlarmNamePrefix: 'dms-production-',
      StateValue: 'ALARM',
      AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
      NextToken: undefined,
    });
    const query = aws.logs.commandCalls(StartQueryCommand)[0]?.args[0].input;
    assert.equal(query?.logGroupName, '/dms/production/api');
    assert.equal(query?.queryString, 'filter event in ["unhandled_error", "unhandled_error_non_error", "http_access"] | stats count(*) as lines by event');
    assert.equal((query?.endTime ?? 0) - (query?.startTime ?? 0), 1800);
    assert.deepEqual(aws.budgets.commandCalls(DescribeBudgetCommand)[0]?.args[0].input, { AccountId: '123456789012', BudgetName: 'dms-production-monthly' });
  });

  it('judges errors as a rate: one error an hour ago passes, 4% of requests fails and says what it saw', async () => {
    healthyStack(aws);
    aws.logs.on(GetQueryResultsCommand).resolves(eventCounts(1, 2400));
    const quiet = await run();
    assert.equal(quiet.code, 0, quiet.stdout);
    assert.match(lineOf(quiet.stdout, 'error rate'), /^ok\s.*1 unhandled errors in 2400 requests over 15m \(0\.04%, limit 1%\)/);

    aws.logs.on(GetQueryResultsCommand).resolves(eventCounts(40, 1000));
    const failing = await run();
    assert.equal(failing.code, 1);
    assert.match(summaryRow(failing.stdout, 'failed'), /error rate: 40 unhandled errors in 1000 requests over 15m \(4\.00%, limit 1%\)/);
    assert.equal((await run('--max-error-rate', '5')).code, 0);
  });

  it('counts the alarms of the runbook it is for, and names the others without failing on them', async () => {
    healthyStack(aws);
    aws.cloudwatch.on(DescribeAlarmsCommand).resolvesOnce({ MetricAlarms: [alarm('ecs-cpu-high', 'P2', 'performance.md')], NextToken: 'n' }).resolves({
      MetricAlarms: [alarm('rds-replica-lag', 'P1', 'database.md')],
    });
    const database = await run('--for', 'database');
    assert.equal(database.code, 1);
    assert.match(lineOf(database.stdout, 'alarms'), /^FAIL\s.*in ALARM: dms-production-rds-replica-lag \(P1, database\.md\); also in ALARM, not counted here: dms-production-ecs-cpu-high \(P2, performance\.md\)/);
    assert.match(summaryRow(database.stdout, 'failed'), /alarms: in ALARM: dms-production-rds-replica-lag/);

    aws.cloudwatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [alarm('rds-replica-lag', 'P1', 'database.md')] });
    const auth = await run('--for', 'auth-abuse');
    assert.equal(auth.code, 0, auth.stdout);
    assert.match(lineOf(auth.stdout, 'alarms'), /^ok\s.*none of the auth-abuse\.md's alarms .* in ALARM; also in ALARM, not counted here: dms-production-rds-replica-lag/);
  });

  it('the daily check fails on P0/P1 alarms in ALARM, not on P2/P3', async () => {
    healthyStack(aws);
    aws.cloudwatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [alarm('ecs-cpu-high', 'P2', 'performance.md'), alarm('drill-instance-left', 'P3', 'backup-restore.md')] });
    assert.equal((await run()).code, 0);
    aws.cloudwatch.on(DescribeAlarmsCommand).resolves({ CompositeAlarms: [alarm('alb-5xx-rate', 'P1', 'errors-and-rollback.md')] });
    const failing = await run();
    assert.equal(failing.code, 1);
    assert.match(lineOf(failing.stdout, 'alarms'), /^FAIL\s.*in ALARM: dms-production-alb-5xx-rate \(P1, errors-and-rollback\.md\)/);
  });

  it('treats the budget as a warning: at 108% it prints warn and the verdict stays HEALTHY', async () => {
    healthyStack(aws);
    breakCheck('budget', DAILY_PROFILE);
    const result = await run();
    assert.equal(result.code, 0, result.stdout);
    assert.match(lineOf(result.stdout, 'budget'), /^warn\s.*actual 1612\.5 USD of 1500 USD \(108%\)/);
    assert.match(summaryRow(result.stdout, 'warnings'), /budget: dms-production-monthly: actual 1612\.5 USD of 1500 USD \(108%\)/);
    assert.match(summaryRow(result.stdout, 'result'), /HEALTHY/);
  });

  it('fails a required check that throws (AccessDenied) with the error, and runs the others', async () => {
    healthyStack(aws);
    aws.rds.on(DescribeDBSnapshotsCommand).rejects(Object.assign(new Error('not authorized to perform rds:DescribeDBSnapshots'), { name: 'AccessDenied', $metadata: {} }));
    const result = await run();
    assert.equal(result.code, 1);
    assert.match(lineOf(result.stdout, 'latest snapshot'), /^FAIL\s.*AccessDenied: not authorized/);
    assert.match(lineOf(result.stdout, 'ecs tasks'), /^ok\s/);
  });

  it('refuses a --for that names no runbook, listing those it knows', async () => {
    const result = await run('--for', 'databse');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--for must name a runbook: operations, .*database.*; got "databse"/);
  });

  it('reports a stack without a replica as such, and an unreachable API as FAIL', async () => {
    healthyStack(aws);
    const gone = await localServer(() => undefined);
    await gone.close();
    const result = await runCli(['health-check', '--stack', 'production', '--outputs', outputsFile({ apiUrl: gone.url, dbReplicaIdentifier: '' })]);
    assert.equal(result.code, 1);
    assert.match(lineOf(result.stdout, 'rds replica'), /^ok\s.*no read replica in this stack/);
    assert.match(lineOf(result.stdout, 'api /health'), /^FAIL\s.*fetch failed \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)/);
  });

  for (const [runbook, profile] of HEALTH_PROFILES) {
    const args = runbook === DAILY_PROFILE ? [] : ['--for', runbook];
    const optional = CHECK_IDS.filter((id) => !profile.required.includes(id));

    it(`--for ${runbook}: HEALTHY with every check it does not need failing (${optional.join(', ') || 'none'})`, async () => {
      healthyStack(aws);
      for (const id of optional) breakCheck(id, runbook);
      const result = await run(...args);
      assert.equal(result.code, 0, result.stdout);
      for (const id of optional) assert.match(lineOf(result.stdout, CHECK_LABELS[id]), /^warn\s/, id);
      assert.match(summaryRow(result.stdout, 'result'), /HEALTHY/);
    });

    for (const id of profile.required) {
      it(`--for ${runbook}: UNHEALTHY when ${id} fails, naming it in the verdict`, async () => {
        healthyStack(aws);
        breakCheck(id, runbook);
        const result = await run(...args);
        assert.equal(result.code, 1, result.stdout);
        assert.match(lineOf(result.stdout, CHECK_LABELS[id]), /^FAIL\s/);
        assert.match(summaryRow(result.stdout, 'failed'), new RegExp(`^failed\\s+${CHECK_LABELS[id].replace(/[/]/g, '\\/')}: `));
      });
    }
  }
});

describe("runbooks end on a health-check that judges by the runbook's own needs", () => {
  it('has a profile only for runbooks that exist', async () => {
    const files = await readdir(RUNBOOKS);
    assert.deepEqual([...HEALTH_PROFILES.keys()].filter((runbook) => !files.includes(`${runbook}.md`)), []);
  });

  it('runs health-check in a runbook with --for that runbook (the daily check in operations.md)', async () => {
    const problems: string[] = [];
    for (const file of (await readdir(RUNBOOKS)).filter((name) => name.endsWith('.md') && name !== 'README.md')) {
      const runbook = file.replace(/\.md$/, '');
      for (const [index, line] of (await readFile(new URL(file, RUNBOOKS), 'utf8')).split('\n').entries()) {
        for (const match of line.matchAll(/npm run ops -- health-check\b([^`\n]*)/g)) {
          const target = /--for\s+(\S+)/.exec(match[1] ?? '')?.[1] ?? DAILY_PROFILE;
          if (target !== runbook) problems.push(`${file}:${index + 1}: health-check judges for ${target}.md, not ${file}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });
});
