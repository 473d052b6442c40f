import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GetIPSetCommand } from '@aws-sdk/client-wafv2';
import { opsCommands } from '../../runbooks/ops/registry.js';
import { FIXTURE, fixtureOutputs, runCli, STACK_ARGS, useAwsMocks } from './support.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** `npm run ops -- …` as an operator types it, with no AWS credentials anywhere it could find them. */
function npmRunOps(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  Object.assign(env, {
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
    AWS_CONFIG_FILE: '/nonexistent/config',
    AWS_EC2_METADATA_DISABLED: 'true',
    NO_COLOR: '1',
  });
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'ops', '--', ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('ops CLI as a process: real exit codes and messages', () => {
  it('exits 2 with one clear line for a malformed CIDR', async () => {
    const run = await npmRunOps(['block-ip', 'not-a-cidr', '--stack', 'production', '--outputs', FIXTURE]);
    assert.equal(run.code, 2);
    const errorLines = run.stderr.split('\n').filter((line) => line.startsWith('error:'));
    assert.deepEqual(errorLines, ['error: "not-a-cidr" is not an IPv4 or IPv6 address (see npm run ops -- block-ip --help)']);
    assert.equal(run.stdout, '');
  });

  it('prints the full dry-run plan of a drill with no AWS credentials, and exits 0', async () => {
    const run = await npmRunOps(['dr-drill', '--stack', 'production', '--outputs', FIXTURE, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    const operations = [...run.stdout.matchAll(/^\d+\. (\w+ \w+):/gm)].map((match) => match[1]);
    assert.deepEqual(operations, [
      'rds DescribeDBInstances',
      'rds DescribeDBSnapshots',
      'ecs DescribeTaskDefinition',
      'sts GetCallerIdentity',
      'iam GetRole',
      'iam SimulatePrincipalPolicy',
      'rds RestoreDBInstanceFromDBSnapshot',
      'rds DescribeDBInstances',
      'secretsmanager GetSecretValue',
      'rds ModifyDBInstance',
      'rds DescribeDBInstances',
      'ecs RunTask',
      'ecs DescribeTasks',
      'logs GetLogEvents',
      'ecs StopTask',
      'rds DeleteDBInstance',
    ]);
  });
});

describe('ops CLI: commands, help and usage errors', () => {
  const aws = useAwsMocks();

  it('registers every command of the runbooks, each with --help that exits 0 and shows its usage', async () => {
    assert.deepEqual(opsCommands.map((command) => command.name).sort(), [
      'block-ip',
      'dr-drill',
      'drill-sweep',
      'failover',
      'health-check',
      'page-test',
      'preflight',
      'preserve-evidence',
      'revoke-sessions',
      'rollback',
      'rotate-jwt-key',
      'scale',
      'top-offenders',
      'unblock-ip',
    ]);
    for (const command of opsCommands) {
      const run = await runCli([command.name, '--help']);
      assert.equal(run.code, 0, command.name);
      assert.match(run.stdout, new RegExp(`usage: npm run ops -- ${command.name} `));
      for (const flag of command.flags) assert.match(run.stdout, new RegExp(`--${flag}\\b`), `${command.name} --help lists --${flag}`);
    }
  });

  it('offers --dry-run on every command that changes something', () => {
    const changing = ['dr-drill', 'drill-sweep', 'block-ip', 'unblock-ip', 'rollback', 'scale', 'rotate-jwt-key'];
    assert.deepEqual(changing.filter((name) => !opsCommands.find((command) => command.name === name)?.flags.includes('dry-run')), []);
  });

  it('lists the commands without arguments (exit 2) and with --help (exit 0)', async () => {
    const bare = await runCli([]);
    assert.equal(bare.code, 2);
    assert.match(bare.stdout, /dr-drill\s+restore the database/);
    assert.equal((await runCli(['--help'])).code, 0);
  });

  it('refuses an unknown command with exit 2 and the list of commands', async () => {
    const run = await runCli(['drill']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: unknown command "drill"; commands: dr-drill, drill-sweep, block-ip, /);
  });

  it('refuses a malformed stack name and a missing outputs file with exit 2', async () => {
    const badStack = await runCli(['health-check', '--stack', 'prod duction', '--outputs', FIXTURE]);
    assert.equal(badStack.code, 2);
    assert.match(badStack.stderr, /--stack "prod duction" is not a Pulumi stack name/);
    const noFile = await runCli(['health-check', '--stack', 'production', '--outputs', '/nonexistent/outputs.json']);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /--outputs \/nonexistent\/outputs\.json: no such file/);
  });

  it('reads outputs with `pulumi stack output --json --show-secrets -s <stack>` when --outputs is not given', async () => {
    const asked: (readonly string[])[] = [];
    aws.waf.on(GetIPSetCommand).resolves({ IPSet: { Name: 'n', Id: 'i', ARN: 'a', IPAddressVersion: 'IPV4', Addresses: ['203.0.113.7/32'] }, LockToken: 't' });
    const run = await runCli(['block-ip', '203.0.113.7', '--stack', 'acme/dms/production'], {
      pulumi: async (args) => {
        asked.push(args);
        return JSON.stringify(fixtureOutputs);
      },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(asked, [['stack', 'output', '--json', '--show-secrets', '-s', 'acme/dms/production']]);
    assert.equal(aws.waf.commandCalls(GetIPSetCommand)[0]?.args[0].input.Name, 'dms-blocked-ips-production-v4', 'resource names use the stack\'s own name');
  });

  it('says to pass --outputs when the Pulumi CLI is not installed, and never echoes what Pulumi printed', async () => {
    const missing = await runCli(['block-ip', '203.0.113.7', '--stack', 'production']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /the pulumi CLI is not installed here: pass --outputs <file\.json>/);

    const garbled = await runCli(['block-ip', '203.0.113.7', '--stack', 'production'], { pulumi: async () => 'warning: secret-value-xyz {' });
    assert.equal(garbled.code, 1);
    assert.match(garbled.stderr, /stack outputs from pulumi stack output -s production are not valid JSON/);
    assert.ok(!garbled.stderr.includes('secret-value-xyz'));
  });

  it('turns an unexpected SDK failure into one line and exit 1, with no stack trace', async () => {
    aws.waf.on(GetIPSetCommand).rejects(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    const run = await runCli(['block-ip', '203.0.113.7', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.deepEqual(run.stderr.split('\n').filter((line) => !line.startsWith('[+')), ['error: CredentialsProviderError: Could not load credentials from any providers']);
  });
});
