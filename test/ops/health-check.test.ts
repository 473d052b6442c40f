import assert from 'node:assert/strict';
import { DescribeBudgetCommand } from '@aws-sdk/client-budgets';
import { DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { GetQueryResultsCommand, StartQueryCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeServicesCommand } from '@aws-sdk/client-ecs';
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { json, localServer, outputsFile, runCli, T0, useAwsMocks, type AwsMocks } from './support.js';

const HOUR = 3_600_000;

interface ApiState {
  ready: number;
}

/** Every check healthy: a test then breaks what it is about. */
function healthyStack(aws: AwsMocks): void {
  aws.ecs.on(DescribeServicesCommand).resolves({ services: [{ status: 'ACTIVE', desiredCount: 3, runningCount: 3, pendingCount: 0 }] });
  aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production' }).resolves({ DBInstances: [{ DBInstanceStatus: 'available' }] });
  aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production-replica-1' }).resolves({ DBInstances: [{ DBInstanceStatus: 'available' }] });
  aws.cloudwatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [], CompositeAlarms: [] });
  aws.logs.on(StartQueryCommand).resolves({ queryId: 'q-errors' });
  aws.logs.on(GetQueryResultsCommand).resolves({ status: 'Complete', results: [[{ field: 'errors', value: '0' }]] });
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

function lineOf(stdout: string, check: string): string {
  return stdout.split('\n').find((line) => line.includes(` ${check} `)) ?? `(no line for ${check})`;
}

describe('ops health-check: the daily check, one line per check', () => {
  const aws = useAwsMocks();
  const api: ApiState = { ready: 200 };
  const requests: string[] = [];
  let server: Awaited<ReturnType<typeof localServer>>;
  let outputs: string;

  before(async () => {
    server = await localServer((request, response) => {
      requests.push(`${request.method} ${request.url}`);
      if (request.url === '/health') return json(response, 200, { status: 'ok' });
      if (request.url === '/health/ready') {
        return api.ready === 200 ? json(response, 200, { status: 'ready' }) : json(response, api.ready, { status: 'unavailable', primary: 'down', replicas: ['ok'] });
      }
      json(response, 404, { error: 'not_found' });
    });
    outputs = outputsFile({ apiUrl: server.url });
  });
  after(() => server.close());
  beforeEach(() => {
    api.ready = 200;
    requests.length = 0;
  });

  it('prints ok for every check and exits 0 when the stack is healthy', async () => {
    healthyStack(aws);
    const run = await runCli(['health-check', '--stack', 'production', '--outputs', outputs]);
    assert.equal(run.code, 0, run.stdout);
    const lines = run.stdout.split('\n').filter((line) => /^(ok|FAIL)\s/.test(line));
    assert.equal(lines.length, 9);
    assert.ok(lines.every((line) => line.startsWith('ok ')), lines.join('\n'));
    assert.deepEqual(requests.sort(), ['GET /health', 'GET /health/ready']);
    assert.match(lineOf(run.stdout, 'budget'), /actual 812\.4 USD of 1500\.0 USD \(54%\), forecast 1390\.0 USD/);
    assert.match(lineOf(run.stdout, 'latest snapshot'), /rds:dms-production-2025-03-10-03-10 is 6h old \(limit 1d02h\)/);
    assert.match(run.stdout, /result\s+HEALTHY/);
  });

  it('asks AWS the right questions', async () => {
    healthyStack(aws);
    await runCli(['health-check', '--stack', 'production', '--outputs', outputs]);
    assert.deepEqual(aws.ecs.commandCalls(DescribeServicesCommand)[0]?.args[0].input, { cluster: 'dms-production', services: ['dms-api-production'] });
    assert.deepEqual(aws.cloudwatch.commandCalls(DescribeAlarmsCommand)[0]?.args[0].input, {
      AlarmNamePrefix: 'dms-production-',
      StateValue: 'ALARM',
      AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
      NextToken: undefined,
    });
    const query = aws.logs.commandCalls(StartQueryCommand)[0]?.args[0].input;
    assert.equal(query?.logGroupName, '/dms/production/api');
    assert.equal(query?.queryString, 'filter event in ["unhandled_error", "unhandled_error_non_error"] | stats count(*) as errors');
    assert.equal((query?.endTime ?? 0) - (query?.startTime ?? 0), 3600);
    assert.deepEqual(aws.rds.commandCalls(DescribeDBSnapshotsCommand)[0]?.args[0].input, { DBInstanceIdentifier: 'dms-production', SnapshotType: 'automated', Marker: undefined });
    assert.deepEqual(aws.budgets.commandCalls(DescribeBudgetCommand)[0]?.args[0].input, { AccountId: '123456789012', BudgetName: 'dms-production-monthly' });
  });

  it('marks each failing check FAIL with what it saw, runs the others, and exits 1', async () => {
    healthyStack(aws);
    api.ready = 503;
    aws.ecs.on(DescribeServicesCommand).resolves({ services: [{ status: 'ACTIVE', desiredCount: 3, runningCount: 1, pendingCount: 2 }] });
    aws.rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'dms-production-replica-1' }).resolves({ DBInstances: [{ DBInstanceStatus: 'storage-full' }] });
    aws.cloudwatch.on(DescribeAlarmsCommand).resolvesOnce({ MetricAlarms: [{ AlarmName: 'dms-production-rds-replica-lag' }], NextToken: 'n' }).resolves({ CompositeAlarms: [{ AlarmName: 'dms-production-alb-5xx-rate' }] });
    aws.logs.on(GetQueryResultsCommand).resolves({ status: 'Complete', results: [[{ field: 'errors', value: '14' }]] });
    aws.rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: 'rds:old', Status: 'available', SnapshotCreateTime: new Date(T0.getTime() - 30 * HOUR) }] });
    aws.budgets.on(DescribeBudgetCommand).rejects(Object.assign(new Error('not authorized to perform budgets:ViewBudget'), { name: 'AccessDeniedException', $metadata: {} }));
    const run = await runCli(['health-check', '--stack', 'production', '--outputs', outputs]);
    assert.equal(run.code, 1);
    assert.match(lineOf(run.stdout, 'api /health'), /^ok\s/);
    assert.match(lineOf(run.stdout, 'api /health/ready'), /^FAIL\s.*HTTP 503 .*"primary":"down"/);
    assert.match(lineOf(run.stdout, 'ecs tasks'), /^FAIL\s.*running 1 of desired 3, pending 2/);
    assert.match(lineOf(run.stdout, 'rds primary'), /^ok\s/);
    assert.match(lineOf(run.stdout, 'rds replica'), /^FAIL\s.*dms-production-replica-1 storage-full/);
    assert.match(lineOf(run.stdout, 'alarms'), /^FAIL\s.*in ALARM: dms-production-alb-5xx-rate, dms-production-rds-replica-lag/);
    assert.match(lineOf(run.stdout, 'errors (last hour)'), /^FAIL\s.*14 unhandled_error\/unhandled_error_non_error/);
    assert.match(lineOf(run.stdout, 'latest snapshot'), /^FAIL\s.*rds:old is 1d06h old/);
    assert.match(lineOf(run.stdout, 'budget'), /^FAIL\s.*AccessDeniedException: not authorized/);
    assert.match(run.stdout, /result\s+UNHEALTHY/);
  });

  it('fails the budget check when actual spend reaches the limit', async () => {
    healthyStack(aws);
    aws.budgets.on(DescribeBudgetCommand).resolves({
      Budget: { BudgetName: 'b', BudgetType: 'COST', TimeUnit: 'MONTHLY', BudgetLimit: { Amount: '1500', Unit: 'USD' }, CalculatedSpend: { ActualSpend: { Amount: '1612.5', Unit: 'USD' } } },
    });
    const run = await runCli(['health-check', '--stack', 'production', '--outputs', outputs]);
    assert.equal(run.code, 1);
    assert.match(lineOf(run.stdout, 'budget'), /^FAIL\s.*actual 1612\.5 USD of 1500 USD \(108%\)/);
  });

  it('tolerates up to --max-errors unhandled errors', async () => {
    healthyStack(aws);
    aws.logs.on(GetQueryResultsCommand).resolves({ status: 'Complete', results: [[{ field: 'errors', value: '2' }]] });
    const run = await runCli(['health-check', '--stack', 'production', '--outputs', outputs, '--max-errors', '5']);
    assert.equal(run.code, 0, run.stdout);
  });

  it('reports a stack without a replica as such, and an unreachable API as FAIL', async () => {
    healthyStack(aws);
    const gone = await localServer(() => undefined);
    await gone.close();
    const run = await runCli(['health-check', '--stack', 'production', '--outputs', outputsFile({ apiUrl: gone.url, dbReplicaIdentifier: '' })]);
    assert.equal(run.code, 1);
    assert.match(lineOf(run.stdout, 'rds replica'), /^ok\s.*no read replica in this stack/);
    assert.match(lineOf(run.stdout, 'api /health'), /^FAIL\s.*fetch failed \(connect ECONNREFUSED 127\.0\.0\.1:\d+\)/);
    assert.equal(aws.rds.commandCalls(DescribeDBInstancesCommand).length, 1);
  });
});
