import assert from 'node:assert/strict';
import { GetQueryResultsCommand, StartQueryCommand, StopQueryCommand } from '@aws-sdk/client-cloudwatch-logs';
import { runCli, STACK_ARGS, T0, totalCalls, useAwsMocks } from './support.js';

const row = (ip: string, failures: number) => [
  { field: 'ip', value: ip },
  { field: 'failures', value: String(failures) },
];

describe('ops top-offenders: the clients with most failed logins, counted as the login limit counts them', () => {
  const aws = useAwsMocks();

  it('queries the API log group for every login failure event over the window, grouped by ip', async () => {
    aws.logs.on(StartQueryCommand).resolves({ queryId: 'q-1' });
    aws.logs.on(GetQueryResultsCommand).resolves({ status: 'Complete', results: [] });
    const run = await runCli(['top-offenders', ...STACK_ARGS, '--since', '2h', '--limit', '5']);
    assert.equal(run.code, 0, run.stderr);
    const input = aws.logs.commandCalls(StartQueryCommand)[0]?.args[0].input;
    assert.equal(input?.logGroupName, '/dms/production/api');
    assert.equal(input?.endTime, T0.getTime() / 1000);
    assert.equal(input?.startTime, T0.getTime() / 1000 - 7200);
    assert.equal(
      input?.queryString,
      'filter event in ["auth_login_invalid_user", "auth_login_bad_password", "auth_login_locked", "auth_login_rate_limited"] and ispresent(ip)' +
        ' | stats count(*) as failures by ip | sort failures desc | limit 10000',
    );
    assert.match(run.stdout, /suggested\s+none/);
  });

  it('polls until the query completes, prints a table most-first and the block-ip line for the top IP', async () => {
    aws.logs.on(StartQueryCommand).resolves({ queryId: 'q-2' });
    aws.logs
      .on(GetQueryResultsCommand)
      .resolvesOnce({ status: 'Running' })
      .resolves({ status: 'Complete', results: [row('198.51.100.23', 40), row('203.0.113.9', 312), row('2001:db8::7', 12)] });
    const run = await runCli(['top-offenders', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.logs.commandCalls(GetQueryResultsCommand).length, 2);
    assert.deepEqual(aws.logs.commandCalls(GetQueryResultsCommand)[0]?.args[0].input, { queryId: 'q-2' });
    const table = run.stdout.split('\n').filter((line) => /^\s*\d+\s/.test(line));
    assert.deepEqual(table.map((line) => line.split(/\s+/).filter(Boolean)), [
      ['1', '203.0.113.9', '312', '1'],
      ['2', '198.51.100.23', '40', '1'],
      ['3', '2001:db8:0:0::/64', '12', '1'],
    ]);
    assert.match(run.stdout, /suggested\s+npm run ops -- block-ip 203\.0\.113\.9\/32 --stack production --reason "312 login failures in 1h"/);
  });

  it('counts an IPv6 client by its /64, as the login limit does, and suggests blocking the /64', async () => {
    aws.logs.on(StartQueryCommand).resolves({ queryId: 'q-3' });
    aws.logs.on(GetQueryResultsCommand).resolves({
      status: 'Complete',
      results: [row('198.51.100.23', 60), row('2001:DB8::7', 30), row('2001:db8::8', 25), row('2001:db8:0:0:ffff::1', 20), row('2001:db8:0:1::1', 50)],
    });
    const run = await runCli(['top-offenders', ...STACK_ARGS, '--limit', '2']);
    assert.equal(run.code, 0, run.stderr);
    const table = run.stdout.split('\n').filter((line) => /^\s*\d+\s/.test(line));
    assert.deepEqual(table.map((line) => line.split(/\s+/).filter(Boolean)), [
      ['1', '2001:db8:0:0::/64', '75', '3'],
      ['2', '198.51.100.23', '60', '1'],
    ]);
    assert.match(run.stdout, /block-ip 2001:db8::\/64 --stack production --reason "75 login failures in 1h"/);
  });

  it('exits 1 when the query fails, and stops it', async () => {
    aws.logs.on(StartQueryCommand).resolves({ queryId: 'q-4' });
    aws.logs.on(GetQueryResultsCommand).resolves({ status: 'Failed' });
    const run = await runCli(['top-offenders', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: Logs Insights query on \/dms\/production\/api ended Failed$/m);
    assert.deepEqual(aws.logs.commandCalls(StopQueryCommand)[0]?.args[0].input, { queryId: 'q-4' });
  });

  it('refuses a malformed --since or --limit with exit 2', async () => {
    for (const args of [['--since', 'yesterday'], ['--limit', '0'], ['--limit', '5000']]) {
      const run = await runCli(['top-offenders', ...STACK_ARGS, ...args]);
      assert.equal(run.code, 2, args.join(' '));
    }
    assert.equal(totalCalls(aws), 0);
  });
});
