import { ChatbotClient, DescribeSlackWorkspacesCommand } from '@aws-sdk/client-chatbot';
import { DescribeReservedCacheNodesOfferingsCommand, ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { DescribeAddressesCommand, DescribeAvailabilityZonesCommand, DescribeNatGatewaysCommand, DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribePhoneNumbersCommand, PinpointSMSVoiceV2Client } from '@aws-sdk/client-pinpoint-sms-voice-v2';
import { DescribeDBEngineVersionsCommand, DescribeOrderableDBInstanceOptionsCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetHostedZoneCommand, Route53Client } from '@aws-sdk/client-route-53';
import { GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { execFile } from 'node:child_process';
import { resolveNs } from 'node:dns/promises';
import { promisify } from 'node:util';
import { parseConfig, type StackConfig } from '../../../infra/config.js';
import { loadStackFile } from '../../../infra/plan/stack-file.js';
import { defineCommand, stackShortName } from '../lib/command.js';
import type { LocalProbes, OpsContext } from '../lib/context.js';
import { describeError, UsageError } from '../lib/errors.js';

const execFileAsync = promisify(execFile);

/** The machine's own Docker and DNS resolver. */
export const systemProbes: LocalProbes = {
  run: async (file, args) => (await execFileAsync(file, [...args], { timeout: 20_000 })).stdout,
  resolveNs: (name) => resolveNs(name),
};

/**
 * Service Quotas codes of what a stack adds (https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html):
 * one VPC, one Elastic IP per NAT gateway, one NAT gateway per AZ it uses.
 */
export const QUOTAS = {
  vpcs: { ServiceCode: 'vpc', QuotaCode: 'L-F678F1CE', label: 'VPCs per Region' },
  elasticIps: { ServiceCode: 'ec2', QuotaCode: 'L-0263D0A3', label: 'EC2-VPC Elastic IPs' },
  natPerAz: { ServiceCode: 'vpc', QuotaCode: 'L-FE5A380F', label: 'NAT gateways per Availability Zone' },
} as const;

/** The AWS Chatbot API answers in a few Regions only; its console (where workspaces are authorised) is in us-east-2. */
export const CHATBOT_API_REGION = 'us-east-2';

export type Status = 'PASS' | 'FAIL' | 'SKIP';

export interface CheckResult {
  status: Status;
  /** What the check saw. */
  saw: string;
  /** What to do about a FAIL (or why a SKIP). */
  todo?: string;
}

interface Check {
  name: string;
  /** The calls it makes, as `--dry-run` prints them. */
  calls: string[];
  run(): Promise<CheckResult>;
}

/** What earlier checks found and later ones need. */
interface Findings {
  zones?: string[];
  engineVersion?: string;
}

function lazy<T>(build: () => T): () => T {
  let built: T | undefined;
  return () => (built ??= build());
}

const pass = (saw: string): CheckResult => ({ status: 'PASS', saw });
const fail = (saw: string, todo: string): CheckResult => ({ status: 'FAIL', saw, todo });
const skip = (saw: string, todo?: string): CheckResult => ({ status: 'SKIP', saw, ...(todo ? { todo } : {}) });
const withoutDot = (name: string) => name.toLowerCase().replace(/\.$/, '');

/** The checks for one stack, in order; each says what it calls (for `--dry-run`) and what it found. */
export function preflightChecks(config: StackConfig, probes: LocalProbes): Check[] {
  const { region } = config;
  const clients = {
    sts: lazy(() => new STSClient({ region })),
    ec2: lazy(() => new EC2Client({ region })),
    route53: lazy(() => new Route53Client({ region })),
    rds: lazy(() => new RDSClient({ region })),
    elasticache: lazy(() => new ElastiCacheClient({ region })),
    chatbot: lazy(() => new ChatbotClient({ region: CHATBOT_API_REGION })),
    sms: lazy(() => new PinpointSMSVoiceV2Client({ region })),
    quotas: lazy(() => new ServiceQuotasClient({ region })),
  };
  const found: Findings = {};
  const major = config.database.engineVersion;
  const classes = [...new Set([config.database.instanceClass, config.database.replicaInstanceClass])];
  const natCount = config.network.natGateways === 'per-az' ? config.network.azCount : 1;
  const { hostedZoneId, domainName, certificateArn } = config.api;
  const slackTeam = config.monitoring.chatSlackTeamId;
  const cacheNodeType = config.cache.nodeType;

  return [
    {
      name: 'credentials',
      calls: ['sts:GetCallerIdentity'],
      async run() {
        const identity = await clients.sts().send(new GetCallerIdentityCommand({}));
        return pass(`account ${identity.Account} as ${identity.Arn}`);
      },
    },
    {
      name: 'region',
      calls: [`ec2:DescribeAvailabilityZones (${region}, state available, no opt-in)`],
      async run() {
        const answer = await clients.ec2().send(
          new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }, { Name: 'opt-in-status', Values: ['opt-in-not-required'] }] }),
        );
        const zones = (answer.AvailabilityZones ?? []).map((zone) => zone.ZoneName ?? '').filter(Boolean).sort();
        found.zones = zones.slice(0, config.network.azCount);
        const saw = `${region} offers ${zones.length} zone(s): ${zones.join(', ') || 'none'}`;
        if (zones.length < config.network.azCount) return fail(saw, `dms:network.azCount is ${config.network.azCount}: pick a region with that many zones, or lower it`);
        return pass(saw);
      },
    },
    {
      name: 'hosted zone',
      calls: hostedZoneId ? [`route53:GetHostedZone ${hostedZoneId}`, 'DNS: NS records of the zone name (public resolvers)'] : [],
      async run() {
        if (!hostedZoneId || !domainName) {
          return certificateArn
            ? skip(`dms:api.certificateArn is set (${certificateArn})`, `point ${domainName ?? 'the API name'} at the albDnsName output yourself after the first pulumi up`)
            : skip('no dms:api.hostedZoneId: the API is served on the ALB name over HTTP', 'staging only; production refuses this');
        }
        const zone = await clients.route53().send(new GetHostedZoneCommand({ Id: hostedZoneId }));
        const zoneName = withoutDot(zone.HostedZone?.Name ?? '');
        if (zone.HostedZone?.Config?.PrivateZone) return fail(`${hostedZoneId} (${zoneName}) is a private zone`, 'set dms:api.hostedZoneId to the public zone of the API name');
        if (domainName !== zoneName && !domainName.endsWith(`.${zoneName}`)) {
          return fail(`${hostedZoneId} is ${zoneName}, which does not hold ${domainName}`, 'set dms:api.hostedZoneId to the zone of dms:api.domainName (each stack its own zone)');
        }
        const assigned = (zone.DelegationSet?.NameServers ?? []).map(withoutDot).sort();
        let answered: string[];
        try {
          answered = (await probes.resolveNs(zoneName)).map(withoutDot).sort();
        } catch (error) {
          return fail(`${zoneName}: public DNS has no NS records (${describeError(error)})`, `delegate ${zoneName} to ${assigned.join(', ')} at its parent (registrar or parent zone)`);
        }
        const saw = `${zoneName} (${hostedZoneId}); Route 53 name servers ${assigned.join(', ')}; public DNS answers ${answered.join(', ')}`;
        if (assigned.join() !== answered.join()) return fail(saw, `set the NS records of ${zoneName} at its parent to ${assigned.join(', ')}: ACM validates the certificate through this zone`);
        return pass(saw);
      },
    },
    {
      name: 'engine version',
      calls: [`rds:DescribeDBEngineVersions (postgres, family postgres${major}, default only)`],
      async run() {
        const answer = await clients.rds().send(new DescribeDBEngineVersionsCommand({ Engine: 'postgres', DBParameterGroupFamily: `postgres${major}`, DefaultOnly: true }));
        const version = (answer.DBEngineVersions ?? []).find((candidate) => candidate.Status === undefined || candidate.Status === 'available');
        if (!version?.EngineVersion) {
          return fail(`no available PostgreSQL ${major} in ${region}`, `set dms:database.engineVersion to a major RDS offers here (aws rds describe-db-engine-versions --engine postgres)`);
        }
        found.engineVersion = version.EngineVersion;
        return pass(`PostgreSQL ${major} → RDS creates ${version.EngineVersion}`);
      },
    },
    {
      name: 'instance classes',
      calls: classes.map((instanceClass) => `rds:DescribeOrderableDBInstanceOptions (postgres, ${instanceClass})`),
      async run() {
        if (!found.zones || !found.engineVersion) return skip('needs the region and engine version checks to pass first');
        const missing: string[] = [];
        for (const instanceClass of classes) {
          const answer = await clients.rds().send(new DescribeOrderableDBInstanceOptionsCommand({ Engine: 'postgres', EngineVersion: found.engineVersion, DBInstanceClass: instanceClass }));
          const offered = new Set((answer.OrderableDBInstanceOptions ?? []).flatMap((option) => (option.AvailabilityZones ?? []).map((zone) => zone.Name)));
          const absent = found.zones.filter((zone) => !offered.has(zone));
          if (absent.length > 0) missing.push(`${instanceClass} not in ${absent.join(', ')}`);
        }
        const saw = `${classes.join(', ')} with PostgreSQL ${found.engineVersion} in ${found.zones.join(', ')}`;
        if (missing.length > 0) return fail(`${saw}: ${missing.join('; ')}`, 'pick classes offered in every zone the stack uses (dms:database.instanceClass, replicaInstanceClass)');
        return pass(`${saw}: offered in every zone`);
      },
    },
    {
      name: 'cache node type',
      // ElastiCache has no "orderable options" call like RDS: the reserved-node offerings of a region
      // list every node type it sells there, so an empty answer for the type means it cannot be created
      // (https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DescribeReservedCacheNodesOfferings.html).
      calls: config.cache.enabled ? [`elasticache:DescribeReservedCacheNodesOfferings (${cacheNodeType})`] : [],
      async run() {
        if (!config.cache.enabled) return skip('dms:cache.enabled is false: the stack creates no Valkey');
        const todo = `set dms:cache.nodeType to a type ElastiCache offers in ${region} (aws elasticache describe-reserved-cache-nodes-offerings --query 'ReservedCacheNodesOfferings[].CacheNodeType')`;
        let offerings: number;
        try {
          const answer = await clients.elasticache().send(new DescribeReservedCacheNodesOfferingsCommand({ CacheNodeType: cacheNodeType, MaxRecords: 20 }));
          offerings = answer.ReservedCacheNodesOfferings?.length ?? 0;
        } catch (error) {
          // An unknown node type is refused as a bad parameter rather than answered with no offerings.
          if (error instanceof Error && error.name.startsWith('InvalidParameter')) return fail(`${cacheNodeType}: ${describeError(error)}`, todo);
          throw error;
        }
        if (offerings === 0) return fail(`ElastiCache offers no ${cacheNodeType} in ${region}`, todo);
        return pass(`${cacheNodeType} offered in ${region}`);
      },
    },
    {
      name: 'docker buildx',
      calls: ['local: docker buildx version'],
      async run() {
        try {
          const version = (await probes.run('docker', ['buildx', 'version'])).trim().split('\n')[0] ?? '';
          return pass(version);
        } catch (error) {
          return fail(`docker buildx version: ${describeError(error)}`, 'install Docker with the Buildx plugin and start it: pulumi up builds and pushes the API image');
        }
      },
    },
    {
      name: 'chat workspace',
      calls: slackTeam ? [`chatbot:DescribeSlackWorkspaces (${CHATBOT_API_REGION})`] : [],
      async run() {
        if (!slackTeam) return skip('no dms:monitoring.chatSlackTeamId: level 1 goes to the alarm e-mail');
        const workspaces: string[] = [];
        let NextToken: string | undefined;
        do {
          const page = await clients.chatbot().send(new DescribeSlackWorkspacesCommand({ NextToken }));
          workspaces.push(...(page.SlackWorkspaces ?? []).map((workspace) => `${workspace.SlackTeamId} (${workspace.SlackTeamName})`));
          NextToken = page.NextToken;
        } while (NextToken);
        const saw = `authorised workspaces: ${workspaces.join(', ') || 'none'}`;
        if (!workspaces.some((workspace) => workspace.startsWith(`${slackTeam} `))) {
          return fail(saw, `authorise Slack workspace ${slackTeam} once: AWS Chatbot console (us-east-2) → Configure new client → Slack → Allow`);
        }
        return pass(saw);
      },
    },
    {
      name: 'origination identity',
      calls: ['sms-voice:DescribePhoneNumbers'],
      async run() {
        const numbers: { number: string; capabilities: string[] }[] = [];
        let NextToken: string | undefined;
        do {
          const page = await clients.sms().send(new DescribePhoneNumbersCommand({ NextToken }));
          for (const phone of page.PhoneNumbers ?? []) {
            if (phone.Status === 'ACTIVE') numbers.push({ number: phone.PhoneNumber ?? '?', capabilities: phone.NumberCapabilities ?? [] });
          }
          NextToken = page.NextToken;
        } while (NextToken);
        const usable = numbers.find((phone) => phone.capabilities.includes('SMS') && phone.capabilities.includes('VOICE'));
        const saw = numbers.length === 0 ? `no active origination number in ${region}` : numbers.map((phone) => `${phone.number} (${phone.capabilities.join('+')})`).join(', ');
        if (!usable) {
          return fail(saw, `request a number with SMS and voice in AWS End User Messaging SMS (${region}); the escalation texts and calls the on-call engineers`);
        }
        return pass(saw);
      },
    },
    {
      name: 'quotas',
      calls: [
        ...Object.values(QUOTAS).map((quota) => `servicequotas:GetServiceQuota ${quota.ServiceCode}/${quota.QuotaCode} (${quota.label})`),
        'ec2:DescribeVpcs',
        'ec2:DescribeAddresses',
        'ec2:DescribeNatGateways (pending, available)',
        'ec2:DescribeSubnets (of those NAT gateways)',
      ],
      async run() {
        const quota = async (which: keyof typeof QUOTAS) => {
          const { ServiceCode, QuotaCode } = QUOTAS[which];
          return (await clients.quotas().send(new GetServiceQuotaCommand({ ServiceCode, QuotaCode }))).Quota?.Value ?? 0;
        };
        const vpcs = (await clients.ec2().send(new DescribeVpcsCommand({}))).Vpcs?.length ?? 0;
        const addresses = (await clients.ec2().send(new DescribeAddressesCommand({}))).Addresses?.length ?? 0;
        const gateways = (await clients.ec2().send(new DescribeNatGatewaysCommand({ Filter: [{ Name: 'state', Values: ['pending', 'available'] }] }))).NatGateways ?? [];
        // A NAT gateway's zone is its subnet's: count the existing ones per zone the stack will add one to.
        const subnetIds = [...new Set(gateways.map((gateway) => gateway.SubnetId).filter((id): id is string => Boolean(id)))];
        const subnets = subnetIds.length > 0 ? ((await clients.ec2().send(new DescribeSubnetsCommand({ SubnetIds: subnetIds }))).Subnets ?? []) : [];
        const zoneOf = new Map(subnets.map((subnet) => [subnet.SubnetId, subnet.AvailabilityZone]));
        const natZones = (found.zones ?? []).slice(0, natCount);
        const busiestZone = Math.max(0, ...natZones.map((zone) => gateways.filter((gateway) => zoneOf.get(gateway.SubnetId) === zone).length));
        const limits = { vpcs: await quota('vpcs'), elasticIps: await quota('elasticIps'), natPerAz: await quota('natPerAz') };
        const rows = [
          { label: 'VPCs', used: vpcs, adds: 1, limit: limits.vpcs },
          { label: 'Elastic IPs', used: addresses, adds: natCount, limit: limits.elasticIps },
          { label: 'NAT gateways in one zone (at most)', used: busiestZone, adds: 1, limit: limits.natPerAz },
        ];
        const saw = rows.map((row) => `${row.label} ${row.used} + ${row.adds} of ${row.limit}`).join('; ');
        const over = rows.filter((row) => row.used + row.adds > row.limit);
        if (over.length > 0) return fail(saw, `request an increase in Service Quotas for ${over.map((row) => row.label).join(', ')} before pulumi up`);
        return pass(saw);
      },
    },
  ];
}

function stackConfig(stack: string): StackConfig {
  const name = stackShortName(stack);
  try {
    return parseConfig(loadStackFile(name).config, name);
  } catch (error) {
    throw new UsageError(`preflight: ${describeError(error)}`);
  }
}

function print(ctx: OpsContext, name: string, result: CheckResult): void {
  const label = `${result.status}  ${name.padEnd(21)}`;
  ctx.io.out(`${label}saw: ${result.saw}`);
  if (result.todo) ctx.io.out(`${' '.repeat(label.length)}${result.status === 'FAIL' ? 'do' : 'note'}: ${result.todo}`);
}

export const preflight = defineCommand({
  name: 'preflight',
  summary: 'before the first pulumi up: check every prerequisite of the stack (PASS/FAIL, what it saw, what to do)',
  options: {
    'dry-run': { type: 'boolean', description: 'print the calls each check would make; needs no credentials' },
  },
  details: [
    'Reads Pulumi.<stack>.yaml (no stack outputs needed) and checks, in order: the credentials and account, the',
    'region and its zones, the hosted zone exists and public DNS delegates to it, the engine version is creatable,',
    'the instance classes are offered in the zones the stack uses, the Valkey node type is offered in the region,',
    'Docker with Buildx answers, the Slack workspace',
    'is authorised in AWS Chatbot, an SMS+voice origination number exists, and the VPC, Elastic IP and NAT gateway',
    'quotas leave room for the stack. Exit 0 when nothing FAILs, 1 otherwise.',
    'Example: npm run ops -- preflight --stack production --dry-run',
  ],
  async run({ options }, ctx) {
    const config = stackConfig(options.stack);
    const checks = preflightChecks(config, ctx.probes ?? systemProbes);
    ctx.io.out(`preflight: ${config.stack} (${config.region})${options['dry-run'] ? ', dry run: the calls each check would make, nothing is called' : ''}`);
    if (options['dry-run']) {
      for (const check of checks) ctx.io.out(`  ${check.name.padEnd(21)}${check.calls.join('; ') || '(nothing to call for this stack)'}`);
      return 0;
    }
    let failed = 0;
    for (const check of checks) {
      let result: CheckResult;
      try {
        result = await check.run();
      } catch (error) {
        result = fail(describeError(error), 'fix the credentials or permissions for this call, then run preflight again');
      }
      if (result.status === 'FAIL') failed++;
      print(ctx, check.name, result);
    }
    ctx.io.out(failed === 0 ? `preflight: ready for pulumi up -s ${config.stack}` : `preflight: ${failed} prerequisite(s) FAIL: fix them before pulumi up -s ${config.stack}`);
    return failed === 0 ? 0 : 1;
  },
});
