// Firewall: WAFv2 on the ALB in blocking mode, IPv4 and IPv6 block lists the runbook command
// edits, a per-IP rate limit and a tighter one on /auth/login, AWS managed rule groups, and logs
// with credentials redacted.
import { strict as assert } from 'node:assert';
import { parseConfig } from '../../infra/config.js';
import { BODY_LIMIT_BYTES } from '../../api/http/limits.js';
import { isIPv6 } from 'node:net';
import { ALL_IPV6, decimalAbove, IPV6_LOGIN_PER_ASN_FACTOR, MANAGED_RULE_GROUPS } from '../../infra/firewall.js';
import type { StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { one, ofType, planned, plannedWith, section, STACKS } from './fixture.js';

interface Rule {
  name: string;
  priority: number;
  action?: Record<string, unknown>;
  overrideAction?: Record<string, unknown>;
  statement: Record<string, Record<string, unknown>>;
}

for (const stack of STACKS) {
  describe(`firewall: ${stack}`, () => {
    let run: StackRun;
    const config = parseConfig(loadStackFile(stack).config, stack);
    const webAcl = () => one(run, 'aws:wafv2/webAcl:WebAcl', `dms-${stack}-waf`);
    const rules = () => [...(webAcl().inputs['rules'] as Rule[])].sort((a, b) => a.priority - b.priority);
    before(async () => {
      run = await planned(stack);
    });

    it('keeps an IPv4 and an IPv6 block list, named per stack and exported for block-ip', () => {
      const v4 = one(run, 'aws:wafv2/ipSet:IpSet', `dms-blocked-ips-${stack}-v4`);
      const v6 = one(run, 'aws:wafv2/ipSet:IpSet', `dms-blocked-ips-${stack}-v6`);
      assert.deepEqual([v4.inputs['ipAddressVersion'], v6.inputs['ipAddressVersion']], ['IPV4', 'IPV6']);
      assert.deepEqual([v4.inputs['scope'], v6.inputs['scope']], ['REGIONAL', 'REGIONAL']);
      assert.deepEqual(run.outputs['wafIpSetIds'], { v4: v4.id, v6: v6.id });
      assert.deepEqual(run.outputs['wafIpSetNames'], { v4: `dms-blocked-ips-${stack}-v4`, v6: `dms-blocked-ips-${stack}-v6` });
      assert.deepEqual(v4.ignoreChanges, ['addresses'], 'pulumi up does not unblock what block-ip blocked');
    });

    it('evaluates the block lists first, then the login limit, the per-IP limit, the body limit and the managed groups', () => {
      assert.deepEqual(webAcl().inputs['defaultAction'], { allow: {} });
      assert.deepEqual(
        rules().map((rule) => rule.name),
        ['blocked-ipv4', 'blocked-ipv6', 'login-rate-limit-per-ip', 'rate-limit-per-ip', 'body-over-api-limit', 'ipv6-login-rate-limit-per-asn', ...MANAGED_RULE_GROUPS],
      );
      for (const rule of rules().slice(0, 6)) assert.deepEqual(rule.action, { block: {} }, `${rule.name} blocks (not count)`);
      for (const rule of rules().slice(6)) assert.deepEqual(rule.overrideAction, { none: {} }, `${rule.name} keeps the group's block actions`);
      const v4 = one(run, 'aws:wafv2/ipSet:IpSet', `dms-blocked-ips-${stack}-v4`);
      assert.equal(rules()[0]?.statement['ipSetReferenceStatement']?.['arn'], v4.outputs['arn']);
    });

    it('rate-limits each client IP, and /auth/login tighter', () => {
      const byName = Object.fromEntries(rules().map((rule) => [rule.name, rule.statement['rateBasedStatement']]));
      assert.equal(byName['rate-limit-per-ip']?.['limit'], config.firewall.rateLimitPer5Min);
      assert.equal(byName['rate-limit-per-ip']?.['aggregateKeyType'], 'IP');
      const login = byName['login-rate-limit-per-ip'] as { limit: number; scopeDownStatement: { byteMatchStatement: { searchString: string; fieldToMatch: unknown } } };
      assert.equal(login.limit, config.firewall.loginRateLimitPer5Min);
      assert.ok(login.limit < config.firewall.rateLimitPer5Min);
      assert.equal(login.scopeDownStatement.byteMatchStatement.searchString, '/auth/login');
      assert.deepEqual(login.scopeDownStatement.byteMatchStatement.fieldToMatch, { uriPath: {} });
    });

    it('limits IPv6 sign-ins per network (ASN), since no WAF aggregation key is an IPv6 /64', () => {
      const rule = rules().find((r) => r.name === 'ipv6-login-rate-limit-per-asn')!;
      const statement = rule.statement['rateBasedStatement'] as {
        aggregateKeyType: string; customKeys: Record<string, unknown>[]; limit: number; evaluationWindowSec: number;
        scopeDownStatement: { andStatement: { statements: Record<string, Record<string, unknown>>[] } };
      };
      assert.equal(statement.aggregateKeyType, 'CUSTOM_KEYS');
      assert.deepEqual(statement.customKeys, [{ asn: {} }]);
      assert.equal(statement.limit, config.firewall.loginRateLimitPer5Min * IPV6_LOGIN_PER_ASN_FACTOR);
      assert.equal(statement.evaluationWindowSec, 300);
      const [ipv6, path] = statement.scopeDownStatement.andStatement.statements;
      const all = one(run, 'aws:wafv2/ipSet:IpSet', `dms-all-ipv6-${stack}`);
      assert.equal(ipv6?.['ipSetReferenceStatement']?.['arn'], all.outputs['arn']);
      assert.equal(all.inputs['ipAddressVersion'], 'IPV6');
      assert.deepEqual(all.inputs['addresses'], ALL_IPV6);
      // The two halves of the IPv6 space (top bit 0, top bit 1): every IPv6 address, no IPv4 one.
      assert.deepEqual(ALL_IPV6.map((cidr) => [isIPv6(cidr.split('/')[0]!), cidr.split('/')[1]]), [[true, '1'], [true, '1']]);
      assert.deepEqual(ALL_IPV6.map((cidr) => parseInt(cidr.split(':')[0] || '0', 16) >> 15), [0, 1]);
      assert.equal(path?.['byteMatchStatement']?.['searchString'], '/auth/login');
    });

    it('plans only what WAF accepts: no /0 in an IP set, no IP or forwarded-IP custom key alone', () => {
      // "AWS WAF supports all IPv4 and IPv6 CIDR ranges except for /0" (waf-rule-statement-type-ipset-match.html);
      // "When you specify an IP or forwarded IP in the custom key settings, you must also specify at least one
      // other key" (API_RateBasedStatementCustomKey.html).
      for (const set of ofType(run, 'aws:wafv2/ipSet:IpSet')) {
        for (const cidr of set.inputs['addresses'] as string[]) assert.notEqual(cidr.split('/')[1], '0', `${set.name}: ${cidr}`);
      }
      for (const rule of rules()) {
        const keys = (rule.statement['rateBasedStatement']?.['customKeys'] ?? []) as Record<string, unknown>[];
        if (keys.length === 1) assert.ok(!('ip' in keys[0]!) && !('forwardedIp' in keys[0]!), `${rule.name}: a lone IP key is aggregateKeyType IP`);
      }
    });

    it("lets through every body the API accepts: the Core rule set's 8 KB size rule only counts, and WAF blocks above the API's own limit", () => {
      const core = rules().find((rule) => rule.name === 'AWSManagedRulesCommonRuleSet');
      assert.deepEqual(core?.statement['managedRuleGroupStatement']?.['ruleActionOverrides'], [{ name: 'SizeRestrictions_BODY', actionToUse: { count: {} } }]);
      const sizeRule = rules().find((rule) => rule.name === 'body-over-api-limit');
      const regex = sizeRule?.statement['regexMatchStatement'] as { regexString: string; fieldToMatch: unknown };
      assert.deepEqual(regex.fieldToMatch, { singleHeader: { name: 'content-length' } });
      // The same constant the API's body parser answers 413 above.
      const blocks = (length: string) => new RegExp(regex.regexString).test(length);
      assert.equal(blocks(String(BODY_LIMIT_BYTES)), false, 'a body of exactly the limit passes');
      assert.equal(blocks(String(BODY_LIMIT_BYTES + 1)), true, 'one byte more is blocked');
      assert.equal(blocks('8193'), false, 'a 9 KB prescription passes (the Core rule set would have blocked it)');
    });

    it('protects the ALB', () => {
      const association = ofType(run, 'aws:wafv2/webAclAssociation:WebAclAssociation');
      assert.equal(association.length, 1);
      assert.equal(association[0]?.inputs['resourceArn'], one(run, 'aws:lb/loadBalancer:LoadBalancer', `dms-${stack}-alb`).outputs['arn']);
      assert.equal(association[0]?.inputs['webAclArn'], webAcl().outputs['arn']);
      assert.equal(run.outputs['wafWebAclArn'], webAcl().outputs['arn']);
    });

    it('logs to an encrypted aws-waf-logs- group with the authorization and cookie headers redacted', () => {
      const logging = one(run, 'aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration', `dms-${stack}-waf`);
      const group = one(run, 'aws:cloudwatch/logGroup:LogGroup', `aws-waf-logs-dms-${stack}`);
      assert.deepEqual(logging.inputs['logDestinationConfigs'], [group.outputs['arn']]);
      const redacted = logging.inputs['redactedFields'] as Record<string, { name?: string }>[];
      assert.ok(redacted.some((field) => field['singleHeader']?.name === 'authorization'));
      assert.ok(redacted.some((field) => field['singleHeader']?.name === 'cookie'));
      assert.ok(group.inputs['kmsKeyId']);
    });
  });
}

describe('firewall: blocked ranges in config seed the sets', () => {
  it('puts configured IPv4 and IPv6 ranges in their sets', async () => {
    const run = await plannedWith('staging', (config) => {
      Object.assign(section(config, 'firewall'), { blockedIpv4: ['203.0.113.7/32'], blockedIpv6: ['2001:db8:bad::/48'] });
    });
    assert.deepEqual(one(run, 'aws:wafv2/ipSet:IpSet', 'dms-blocked-ips-staging-v4').inputs['addresses'], ['203.0.113.7/32']);
    assert.deepEqual(one(run, 'aws:wafv2/ipSet:IpSet', 'dms-blocked-ips-staging-v6').inputs['addresses'], ['2001:db8:bad::/48']);
  });
});

describe('firewall: the Content-Length rule matches exactly the lengths above a limit', () => {
  it('agrees with n > limit around the API limit, at digit-count boundaries and with leading zeros', () => {
    for (const limit of [BODY_LIMIT_BYTES, 0, 9, 10, 99, 100, 199, 8192, 999_999]) {
      const regex = new RegExp(decimalAbove(limit));
      const samples = [0, 1, 9, 10, 11, 99, 100, 101, limit - 1, limit, limit + 1, limit + 9, limit * 10, limit * 10 + 1, 10 ** String(limit).length, 123_456_789];
      for (let offset = -300; offset <= 300; offset++) samples.push(limit + offset);
      for (const length of samples.filter((value) => value >= 0)) {
        assert.equal(regex.test(String(length)), length > limit, `limit ${limit}, length ${length}`);
        assert.equal(regex.test(`00${length}`), length > limit, `limit ${limit}, length 00${length}`);
      }
      for (const junk of ['', '-1', '1e9', ' 200000', '200000 ', 'abc']) assert.equal(regex.test(junk), false, junk);
      assert.ok(decimalAbove(limit).length <= 512, "within WAF's regex length");
    }
  });
});
