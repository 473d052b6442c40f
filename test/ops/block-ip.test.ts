import assert from 'node:assert/strict';
import { GetIPSetCommand, UpdateIPSetCommand, WAFOptimisticLockException } from '@aws-sdk/client-wafv2';
import { fixtureOutputs, outputsFile, runCli, STACK_ARGS, totalCalls, useAwsMocks } from './support.js';

const ids = fixtureOutputs.wafIpSetIds as { v4: string; v6: string };
const V4_SET = { Name: 'dms-blocked-ips-production-v4', Scope: 'REGIONAL', Id: ids.v4 };
const V6_SET = { Name: 'dms-blocked-ips-production-v6', Scope: 'REGIONAL', Id: ids.v6 };

function ipSet(addresses: string[], lockToken: string) {
  return { IPSet: { Name: 'x', Id: 'x', ARN: 'arn', IPAddressVersion: 'IPV4' as const, Addresses: addresses, Description: 'Blocked by on-call' }, LockToken: lockToken };
}

const lockLost = (): WAFOptimisticLockException => new WAFOptimisticLockException({ message: 'lock token is stale', $metadata: {} });

describe('ops block-ip: blocking a network at the WAF', () => {
  const aws = useAwsMocks();

  it('adds a bare IPv4 address as /32 to the v4 set, with the lock token it read, keeping the description', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet(['198.51.100.0/24'], 'token-1'));
    const run = await runCli(['block-ip', '203.0.113.7', ...STACK_ARGS, '--reason', 'INC-142 credential stuffing']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.waf.commandCalls(GetIPSetCommand)[0]?.args[0].input, V4_SET);
    assert.deepEqual(aws.waf.commandCalls(UpdateIPSetCommand)[0]?.args[0].input, {
      ...V4_SET,
      Addresses: ['198.51.100.0/24', '203.0.113.7/32'],
      LockToken: 'token-1',
      Description: 'Blocked by on-call',
    });
    assert.match(run.stdout, /network\s+203\.0\.113\.7\/32 \(from 203\.0\.113\.7\)/);
    assert.match(run.stdout, /reason\s+INC-142 credential stuffing/);
    assert.match(run.stdout, /result\s+blocked/);
  });

  it('sends IPv6 to the v6 set in canonical compressed form', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet([], 'token-6'));
    const run = await runCli(['block-ip', '2001:0DB8:0001:0000::/48', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    const update = aws.waf.commandCalls(UpdateIPSetCommand)[0]?.args[0].input;
    assert.deepEqual({ Name: update?.Name, Scope: update?.Scope, Id: update?.Id }, V6_SET);
    assert.deepEqual(update?.Addresses, ['2001:db8:1::/48']);
  });

  it('changes nothing when the same network is already blocked, whatever its spelling', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet(['2001:db8:0:0:0:0:0:1/128'], 'token-1'));
    const run = await runCli(['block-ip', '2001:db8::1', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.waf.commandCalls(UpdateIPSetCommand).length, 0);
    assert.match(run.stdout, /already blocked \(as 2001:db8:0:0:0:0:0:1\/128\); no change made/);
  });

  it('re-reads the set and retries with the new lock token when another writer wins the race', async () => {
    aws.waf.on(GetIPSetCommand).resolvesOnce(ipSet([], 'stale')).resolves(ipSet(['192.0.2.0/24'], 'fresh'));
    aws.waf.on(UpdateIPSetCommand).rejectsOnce(lockLost()).resolves({ NextLockToken: 'next' });
    const run = await runCli(['block-ip', '203.0.113.0/24', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    const updates = aws.waf.commandCalls(UpdateIPSetCommand).map((call) => call.args[0].input);
    assert.deepEqual(updates.map((input) => input.LockToken), ['stale', 'fresh']);
    assert.deepEqual(updates[1]?.Addresses, ['192.0.2.0/24', '203.0.113.0/24'], 'the retry keeps the other writer\'s entry');
    assert.match(run.stderr, /changed while we were updating it/);
  });

  it('gives up with exit 1 after a bounded number of lost races', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet([], 'token'));
    aws.waf.on(UpdateIPSetCommand).rejects(lockLost());
    const run = await runCli(['block-ip', '203.0.113.7', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.equal(aws.waf.commandCalls(UpdateIPSetCommand).length, 5);
    assert.match(run.stderr, /^error: dms-blocked-ips-production-v4 kept changing under us/m);
  });

  it('fails with exit 1 on any other WAF error, naming it', async () => {
    aws.waf.on(GetIPSetCommand).rejects(Object.assign(new Error('User is not authorized to perform wafv2:GetIPSet'), { name: 'AccessDeniedException', $metadata: {} }));
    const run = await runCli(['block-ip', '203.0.113.7', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: AccessDeniedException: User is not authorized/m);
  });
});

describe('ops block-ip: refusing bad input before any AWS call', () => {
  const aws = useAwsMocks();
  const cases: [string, string[], RegExp][] = [
    ['a malformed address', ['not-a-cidr'], /"not-a-cidr" is not an IPv4 or IPv6 address/],
    ['an octet out of range', ['203.0.113.256'], /is not an IPv4 or IPv6 address/],
    ['host bits set', ['203.0.113.7/24'], /has host bits set: the \/24 network is 203\.0\.113\.0\/24/],
    ['a prefix too long', ['203.0.113.0/33'], /IPv4 prefixes are \/0 to \/32/],
    ['a zone index', ['fe80::1%eth0'], /zone index/],
    ['an IPv4 range wider than /16', ['10.0.0.0/8'], /10\.0\.0\.0\/8 is wider than the \/16 bound for IPv4; .*--max-prefix 8/],
    ['an IPv6 range wider than /48', ['2001:db8::/32'], /2001:db8::\/32 is wider than the \/48 bound for IPv6/],
    ['the whole internet', ['0.0.0.0/0'], /0\.0\.0\.0\/0 is every address: WAF does not accept \/0/],
    ['a malformed --max-prefix', ['10.0.0.0/8', '--max-prefix', 'eight'], /--max-prefix must be a whole number/],
    ['/0 even with --max-prefix 0 (WAF refuses /0)', ['0.0.0.0/0', '--max-prefix', '0'], /0\.0\.0\.0\/0 is every address: WAF does not accept \/0/],
    ['IPv6 /0 even with --max-prefix 0', ['::/0', '--max-prefix', '0'], /::\/0 is every address: WAF does not accept \/0/],
    ['--max-prefix 0', ['10.0.0.0/8', '--max-prefix', '0'], /--max-prefix must be between 1 and 32, not 0/],
    ['no address', [], /block-ip needs <cidr>/],
    ['two addresses', ['203.0.113.7', '203.0.113.8'], /unexpected argument "203\.0\.113\.8"/],
    ['an unknown flag', ['203.0.113.7', '--force'], /Unknown option '--force'/],
  ];
  for (const [what, args, message] of cases) {
    it(`refuses ${what} with exit 2 and one line`, async () => {
      const run = await runCli(['block-ip', ...args, ...STACK_ARGS]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.split('\n').length, 1, run.stderr);
      assert.equal(totalCalls(aws), 0);
    });
  }

  it('accepts a wide range when --max-prefix allows it', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet([], 'token'));
    const run = await runCli(['block-ip', '10.0.0.0/8', '--max-prefix', '8', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.waf.commandCalls(UpdateIPSetCommand)[0]?.args[0].input.Addresses, ['10.0.0.0/8']);
  });

  it('needs --stack, and names stack outputs that are missing', async () => {
    const noStack = await runCli(['block-ip', '203.0.113.7']);
    assert.equal(noStack.code, 2);
    assert.match(noStack.stderr, /block-ip needs --stack <name>/);

    const missing = await runCli(['block-ip', '203.0.113.7', '--stack', 'production', '--outputs', outputsFile({ wafIpSetIds: undefined, region: undefined })]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /stack outputs from .*outputs\.json: missing region, wafIpSetIds/);
    assert.equal(totalCalls(aws), 0);
  });
});

describe('ops unblock-ip: removing a network from the WAF block list', () => {
  const aws = useAwsMocks();

  it('removes exactly that network, matched by value, with the lock token', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet(['198.51.100.0/24', '203.0.113.7/32'], 'token-u'));
    const run = await runCli(['unblock-ip', '203.0.113.7', ...STACK_ARGS, '--reason', 'INC-142 closed']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.waf.commandCalls(UpdateIPSetCommand)[0]?.args[0].input, {
      ...V4_SET,
      Addresses: ['198.51.100.0/24'],
      LockToken: 'token-u',
      Description: 'Blocked by on-call',
    });
    assert.match(run.stdout, /result\s+unblocked/);
  });

  it('changes nothing when the network is not blocked', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet(['198.51.100.0/24'], 'token-u'));
    const run = await runCli(['unblock-ip', '198.51.100.0/25', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.waf.commandCalls(UpdateIPSetCommand).length, 0);
    assert.match(run.stdout, /not in the block list; no change made/);
  });

  it('can remove an entry wider than the block bound', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet(['10.0.0.0/8'], 'token-u'));
    const run = await runCli(['unblock-ip', '10.0.0.0/8', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.waf.commandCalls(UpdateIPSetCommand)[0]?.args[0].input.Addresses, []);
  });

  it('--dry-run reads the set, prints the UpdateIPSet it would send, and sends none', async () => {
    aws.waf.on(GetIPSetCommand).resolves(ipSet(['198.51.100.0/24', '203.0.113.7/32'], 'token-u'));
    const run = await runCli(['unblock-ip', '203.0.113.7', ...STACK_ARGS, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.waf.commandCalls(UpdateIPSetCommand).length, 0);
    assert.match(run.stdout, /dry run, not sent: wafv2 UpdateIPSet\n\s+\{\n[^]*"Addresses": \["198\.51\.100\.0\/24"\][^]*"LockToken": "token-u"/);
    assert.match(run.stdout, /result\s+dry run: not sent/);

    const block = await runCli(['block-ip', '192.0.2.0/24', ...STACK_ARGS, '--dry-run']);
    assert.equal(block.code, 0, block.stderr);
    assert.equal(aws.waf.commandCalls(UpdateIPSetCommand).length, 0);
    assert.match(block.stdout, /"Addresses": \["198\.51\.100\.0\/24","203\.0\.113\.7\/32","192\.0\.2\.0\/24"\]/);
  });

  it('refuses a malformed CIDR with exit 2', async () => {
    const run = await runCli(['unblock-ip', '300.1.1.1', ...STACK_ARGS]);
    assert.equal(run.code, 2);
    assert.equal(totalCalls(aws), 0);
  });
});
