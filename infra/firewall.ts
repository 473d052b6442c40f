/**
 * WAFv2 in front of the ALB, blocking: the operators' block lists (IPv4 and IPv6, edited by
 * `npm run ops -- block-ip`), a rate limit per client IP, a tighter one on `/auth/login`, one on
 * IPv6 sign-ins per network (ASN), and AWS managed rule groups; logging with credentials and query
 * strings redacted.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { BODY_LIMIT_BYTES } from '../api/http/limits.js';

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
  bodyOverApiLimit: 'body-over-api-limit',
  ipv6LoginRateLimitPerNetwork: 'ipv6-login-rate-limit-per-asn',
} as const;

/**
 * Every IPv6 address, as a WAF IP set can hold it: WAF "supports all IPv4 and IPv6 CIDR ranges
 * except for /0" (https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-ipset-match.html).
 */
export const ALL_IPV6 = ['::/1', '8000::/1'];

/**
 * How many times the per-IP login limit one IPv6 network (an ASN) may send to `/auth/login` in 5
 * minutes. WAF cannot count an IPv6 client by its /64 as the API does (api/http/client-key.ts): a
 * rate-based rule aggregates by IP, forwarded IP, ASN, header, cookie, query, path, method, label
 * or TLS fingerprint, and none of them is an address prefix
 * (https://docs.aws.amazon.com/waf/latest/APIReference/API_RateBasedStatementCustomKey.html,
 * https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-aggregation-options.html).
 * So a client rotating through the 2^64 addresses of its /64 meets no per-IP limit at the edge.
 * The closest key that does hold such a client is its network's ASN, coarse enough to reach other
 * users of the same provider, so it applies to IPv6 sign-ins only and is generous: the API's own
 * per-/64 login limit (RATE_LIMIT_LOGIN_MAX) is the precise one, and refuses before any password check.
 */
export const IPV6_LOGIN_PER_ASN_FACTOR = 20;

/**
 * The rule of the Core rule set that blocks every body over 8 KB. An ALB hands WAF only the first
 * 8 KB of a body, a fixed limit ("For Application Load Balancer and AWS AppSync, the limit is fixed
 * at 8 KB", https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-setting-body-inspection-limit.html),
 * and SizeRestrictions_BODY blocks anything larger (https://repost.aws/knowledge-center/waf-http-request-body-inspection),
 * while the API accepts 100 KiB: a prescription with long notes would get a WAF 403. It is set to
 * count, and `body-over-api-limit` blocks at the API's own limit instead.
 */
export const CORE_RULE_SET_BODY_SIZE_RULE = 'SizeRestrictions_BODY';

/**
 * A regular expression matching exactly the decimal integers greater than `limit` (leading zeros
 * allowed, as HTTP allows them in Content-Length). WAF cannot see past 8 KB of an ALB request's
 * body, so the size rule reads the declared length instead; WAF regexes are PCRE without capturing
 * groups, at most 512 characters (https://docs.aws.amazon.com/waf/latest/APIReference/API_Regex.html,
 * https://docs.aws.amazon.com/waf/latest/developerguide/waf-regex-pattern-support.html).
 */
export function decimalAbove(limit: number): string {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new Error(`decimalAbove: ${limit} is not a whole number`);
  const digits = String(limit);
  const width = digits.length;
  // Any number with more digits than the limit (first digit non-zero: leading zeros are stripped by `0*`).
  const alternatives = [`[1-9][0-9]{${width},}`];
  // Same width: equal to the limit up to position i, then a larger digit there, anything after.
  for (let index = 0; index < width; index++) {
    const digit = Number(digits[index]);
    if (digit === 9) continue;
    const rest = width - index - 1;
    const larger = digit + 1 === 9 ? '9' : `[${digit + 1}-9]`;
    alternatives.push(`${digits.slice(0, index)}${larger}${rest > 0 ? `[0-9]{${rest}}` : ''}`);
  }
  const regex = `^0*(?:${alternatives.join('|')})$`;
  if (regex.length > 512) throw new Error(`decimalAbove(${limit}) is longer than WAF's 512 characters`);
  return regex;
}

export class Firewall extends pulumi.ComponentResource {
  readonly webAcl: aws.wafv2.WebAcl;
  /** `dms-blocked-ips-<stack>-v4`: WAF names are unique per scope, so each address family carries a suffix. */
  readonly blockedIpv4: aws.wafv2.IpSet;
  /** `dms-blocked-ips-<stack>-v6`. */
  readonly blockedIpv6: aws.wafv2.IpSet;
  /** `dms-all-ipv6-<stack>`: every IPv6 address, what scopes the IPv6 sign-in rule. */
  readonly allIpv6: aws.wafv2.IpSet;
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
    this.allIpv6 = new aws.wafv2.IpSet(
      `dms-all-ipv6-${stack}`,
      { name: `dms-all-ipv6-${stack}`, description: `DMS ${stack}: every IPv6 address (scopes the IPv6 sign-in rate rule)`, scope: 'REGIONAL', ipAddressVersion: 'IPV6', addresses: ALL_IPV6 },
      child,
    );

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
          // IPv6 sign-ins per network (ASN): the edge's stand-in for the API's per-/64 count (see IPV6_LOGIN_PER_ASN_FACTOR).
          blockRule(WAF_RULES.ipv6LoginRateLimitPerNetwork, 5, {
            rateBasedStatement: {
              aggregateKeyType: 'CUSTOM_KEYS',
              customKeys: [{ asn: {} }],
              limit: args.loginRateLimitPer5Min * IPV6_LOGIN_PER_ASN_FACTOR,
              evaluationWindowSec: 300,
              scopeDownStatement: {
                andStatement: {
                  statements: [
                    { ipSetReferenceStatement: { arn: this.allIpv6.arn } },
                    {
                      byteMatchStatement: {
                        fieldToMatch: { uriPath: {} },
                        positionalConstraint: 'STARTS_WITH',
                        searchString: '/auth/login',
                        textTransformations: [{ priority: 0, type: 'LOWERCASE' }],
                      },
                    },
                  ],
                },
              },
            },
          }),
          // The API's own body limit, read from the declared length (a chunked body has none: the API's 413 still applies).
          blockRule(WAF_RULES.bodyOverApiLimit, 4, {
            regexMatchStatement: {
              fieldToMatch: { singleHeader: { name: 'content-length' } },
              regexString: decimalAbove(BODY_LIMIT_BYTES),
              textTransformations: [{ priority: 0, type: 'NONE' }],
            },
          }),
          ...MANAGED_RULE_GROUPS.map((group, index) => ({
            name: group,
            priority: 10 + index,
            overrideAction: { none: {} },
            statement: {
              managedRuleGroupStatement: {
                vendorName: 'AWS',
                name: group,
                ...(group === 'AWSManagedRulesCommonRuleSet' ? { ruleActionOverrides: [{ name: CORE_RULE_SET_BODY_SIZE_RULE, actionToUse: { count: {} } }] } : {}),
              },
            },
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
