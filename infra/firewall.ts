/**
 * WAFv2 in front of the ALB, blocking: the operators' block lists (IPv4 and IPv6, edited by
 * `npm run ops -- block-ip`), a rate limit per client IP, a tighter one on `/auth/login`, and AWS
 * managed rule groups; logging with credentials and query strings redacted.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

export interface FirewallArgs {
  /** `dms-<stack>`. */
  prefix: string;
  /** The ALB the web ACL protects. */
  loadBalancerArn: pulumi.Input<string>;
  /** Requests per client IP per 5 minutes, all paths. */
  rateLimitPer5Min: number;
  /** Requests per client IP per 5 minutes to `/auth/login`. */
  loginRateLimitPer5Min: number;
  /** IPv4 CIDRs blocked at creation. */
  blockedIpv4: string[];
  /** IPv6 CIDRs blocked at creation. */
  blockedIpv6: string[];
  /** Key of the WAF log group. */
  logsKey: aws.kms.Key;
  /** WAF log retention (days). */
  logRetentionDays: number;
}

/** AWS managed rule groups, in evaluation order after the block lists and rate limits. */
export const MANAGED_RULE_GROUPS = [
  'AWSManagedRulesAmazonIpReputationList',
  'AWSManagedRulesCommonRuleSet',
  'AWSManagedRulesKnownBadInputsRuleSet',
  'AWSManagedRulesSQLiRuleSet',
] as const;

/** Rule names as CloudWatch reports them (`Rule` dimension of the WAF metrics). */
export const WAF_RULES = {
  blockedIpv4: 'blocked-ipv4',
  blockedIpv6: 'blocked-ipv6',
  rateLimitPerIp: 'rate-limit-per-ip',
  loginRateLimitPerIp: 'login-rate-limit-per-ip',
} as const;

export class Firewall extends pulumi.ComponentResource {
  readonly webAcl: aws.wafv2.WebAcl;
  /** `dms-blocked-ips-<stack>-v4`: WAF names are unique per scope, so each address family carries a suffix. */
  readonly blockedIpv4: aws.wafv2.IpSet;
  /** `dms-blocked-ips-<stack>-v6`. */
  readonly blockedIpv6: aws.wafv2.IpSet;
  /** CloudWatch metric name of the web ACL (`WebACL` dimension is its name). */
  readonly metricName: string;
  readonly logGroup: aws.cloudwatch.LogGroup;

  constructor(name: string, args: FirewallArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:firewall:Firewall', name, {}, opts);
    const child = { parent: this };
    const { prefix } = args;
    const stack = prefix.slice('dms-'.length);
    this.metricName = `${prefix}-waf`;

    const ipSet = (version: 'v4' | 'v6', addresses: string[]) =>
      new aws.wafv2.IpSet(
        `dms-blocked-ips-${stack}-${version}`,
        {
          name: `dms-blocked-ips-${stack}-${version}`,
          description: `DMS ${stack}: IP${version} ranges blocked by operators (npm run ops -- block-ip)`,
          scope: 'REGIONAL',
          ipAddressVersion: version === 'v4' ? 'IPV4' : 'IPV6',
          addresses,
        },
        // Seeded from config once; afterwards the runbook command owns the list.
        { ...child, ignoreChanges: ['addresses'] },
      );
    this.blockedIpv4 = ipSet('v4', args.blockedIpv4);
    this.blockedIpv6 = ipSet('v6', args.blockedIpv6);

    const visibility = (metricName: string) => ({ cloudwatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName });
    const blockRule = (ruleName: string, priority: number, statement: aws.types.input.wafv2.WebAclRuleStatement) => ({
      name: ruleName,
      priority,
      action: { block: {} },
      statement,
      visibilityConfig: visibility(ruleName),
    });

    this.webAcl = new aws.wafv2.WebAcl(
      `${prefix}-waf`,
      {
        name: `${prefix}-waf`,
        description: 'DMS API: block lists, per-IP rate limits, AWS managed rules',
        scope: 'REGIONAL',
        defaultAction: { allow: {} },
        visibilityConfig: visibility(this.metricName),
        rules: [
          blockRule(WAF_RULES.blockedIpv4, 0, { ipSetReferenceStatement: { arn: this.blockedIpv4.arn } }),
          blockRule(WAF_RULES.blockedIpv6, 1, { ipSetReferenceStatement: { arn: this.blockedIpv6.arn } }),
          blockRule(WAF_RULES.loginRateLimitPerIp, 2, {
            rateBasedStatement: {
              aggregateKeyType: 'IP',
              limit: args.loginRateLimitPer5Min,
              evaluationWindowSec: 300,
              scopeDownStatement: {
                byteMatchStatement: {
                  fieldToMatch: { uriPath: {} },
                  positionalConstraint: 'STARTS_WITH',
                  searchString: '/auth/login',
                  textTransformations: [{ priority: 0, type: 'LOWERCASE' }],
                },
              },
            },
          }),
          blockRule(WAF_RULES.rateLimitPerIp, 3, { rateBasedStatement: { aggregateKeyType: 'IP', limit: args.rateLimitPer5Min, evaluationWindowSec: 300 } }),
          ...MANAGED_RULE_GROUPS.map((group, index) => ({
            name: group,
            priority: 10 + index,
            overrideAction: { none: {} },
            statement: { managedRuleGroupStatement: { vendorName: 'AWS', name: group } },
            visibilityConfig: visibility(group),
          })),
        ],
      },
      child,
    );
    new aws.wafv2.WebAclAssociation(`${prefix}-waf`, { resourceArn: args.loadBalancerArn, webAclArn: this.webAcl.arn }, child);

    // WAF only delivers to log groups whose name starts with `aws-waf-logs-`.
    this.logGroup = new aws.cloudwatch.LogGroup(
      `aws-waf-logs-${prefix}`,
      { name: `aws-waf-logs-${prefix}`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
      child,
    );
    new aws.wafv2.WebAclLoggingConfiguration(
      `${prefix}-waf`,
      {
        resourceArn: this.webAcl.arn,
        logDestinationConfigs: [this.logGroup.arn],
        // Bearer tokens and cookies are credentials; query strings may carry search terms about patients.
        redactedFields: [{ singleHeader: { name: 'authorization' } }, { singleHeader: { name: 'cookie' } }, { queryString: {} }],
      },
      child,
    );

    this.registerOutputs({ webAclArn: this.webAcl.arn, ipSetIds: { v4: this.blockedIpv4.id, v6: this.blockedIpv6.id } });
  }
}
