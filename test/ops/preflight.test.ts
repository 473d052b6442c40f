// `npm run ops -- preflight --stack <name>`: before the first `pulumi up`, every prerequisite says
// PASS or FAIL with what it saw and what to do; `--dry-run` lists the calls and makes none.
import { strict as assert } from 'node:assert';
import { ChatbotClient, DescribeSlackWorkspacesCommand } from '@aws-sdk/client-chatbot';
import { DescribeReservedCacheNodesOfferingsCommand, ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { DescribeAddressesCommand, DescribeAvailabilityZonesCommand, DescribeNatGatewaysCommand, DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribePhoneNumbersCommand, PinpointSMSVoiceV2Client } from '@aws-sdk/client-pinpoint-sms-voice-v2';
import { DescribeDBEngineVersionsCommand, DescribeOrderableDBInstanceOptionsCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetHostedZoneCommand, Route53Client } from '@aws-sdk/client-route-53';
import { GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { parseConfig } from '../../infra/config.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { QUOTAS } from '../../runbooks/ops/commands/preflight.js';
import { defaultAwsClients } from '../../runbooks/ops/lib/aws.js';
import type { LocalProbes, OpsContext } from '../../runbooks/ops/lib/context.js';
import { runOps } from '../../runbooks/ops/registry.js';
import { fakeClock } from './support.js';

const production = parseConfig(loadStackFile('production').config, 'production');
const ZONE_NAME = 'riversidefamilydental.com';
const NAME_SERVERS = ['ns-1204.awsdns-22.org', 'ns-181.awsdns-22.com', 'ns-1862.awsdns-40.co.uk', 'ns-650.awsdns-17.net'];
const ZONES = ['us-east-2a', 'us-east-2b', 'us-east-2c'];

const mocks = {
  sts: mockClient(STSClient),
  ec2: mockClient(EC2Client),
  route53: mockClient(Route53Client),
  rds: mockClient(RDSClient),
  elasticache: mockClient(ElastiCacheClient),
  // @aws-sdk/client-chatbot is still published on older @smithy types than the other clients: the same
  // class at run time, a different type at compile time.
  chatbot: mockClient(ChatbotClient as unknown as typeof STSClient),
  sms: mockClient(PinpointSMSVoiceV2Client),
  quotas: mockClient(ServiceQuotasClient),
};

/** A fresh account that meets every prerequisite of the production stack file. */
function readyAccount(): void {
  for (const mock of Object.values(mocks)) mock.reset();
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: '210987654321', Arn: 'arn:aws:iam::210987654321:user/deployer' });
  mocks.ec2.on(DescribeAvailabilityZonesCommand).resolves({ AvailabilityZones: ZONES.map((ZoneName) => ({ ZoneName, State: 'available' })) });
  mocks.route53.on(GetHostedZoneCommand).resolves({
    HostedZone: { Id: `/hostedzone/${production.api.hostedZoneId}`, Name: `${ZONE_NAME}.`, CallerReference: 'x', Config: { PrivateZone: false } },
    DelegationSet: { NameServers: NAME_SERVERS },
  });
  mocks.rds.on(DescribeDBEngineVersionsCommand).resolves({ DBEngineVersions: [{ Engine: 'postgres', EngineVersion: '17.6', Status: 'available' }] });
  mocks.rds.on(DescribeOrderableDBInstanceOptionsCommand).resolves({ OrderableDBInstanceOptions: [{ AvailabilityZones: ZONES.map((Name) => ({ Name })) }] });
  mocks.elasticache.on(DescribeReservedCacheNodesOfferingsCommand).resolves({
    ReservedCacheNodesOfferings: [{ CacheNodeType: production.cache.nodeType, Duration: 31536000, ProductDescription: 'redis', OfferingType: 'No Upfront' }],
  });
  mocks.chatbot.on(DescribeSlackWorkspacesCommand as never).resolves({ SlackWorkspaces: [{ SlackTeamId: production.monitoring.chatSlackTeamId ?? '', SlackTeamName: 'Riverside' }] } as never);
  mocks.sms.on(DescribePhoneNumbersCommand).resolves({
    PhoneNumbers: [{ PhoneNumber: '+18885550100', Status: 'ACTIVE', NumberCapabilities: ['SMS', 'VOICE'] } as never],
  });
  mocks.quotas.on(GetServiceQuotaCommand, { QuotaCode: QUOTAS.vpcs.QuotaCode }).resolves({ Quota: { Value: 5 } });
  mocks.quotas.on(GetServiceQuotaCommand, { QuotaCode: QUOTAS.elasticIps.QuotaCode }).resolves({ Quota: { Value: 5 } });
  mocks.quotas.on(GetServiceQuotaCommand, { QuotaCode: QUOTAS.natPerAz.QuotaCode }).resolves({ Quota: { Value: 5 } });
  mocks.ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [{ VpcId: 'vpc-default' }] });
  mocks.ec2.on(DescribeAddressesCommand).resolves({ Addresses: [] });
  mocks.ec2.on(DescribeNatGatewaysCommand).resolves({ NatGateways: [] });
  mocks.ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [] });
}

const dockerAnswers: LocalProbes = {
  run: async (file, args) => {
    assert.deepEqual([file, ...args], ['docker', 'buildx', 'version']);
    return 'github.com/docker/buildx v0.17.1 257815a\n';
  },
  resolveNs: async (name) => {
    assert.equal(name, ZONE_NAME);
    return NAME_SERVERS.map((server) => `${server.toUpperCase()}.`);
  },
};

async function preflight(argv: string[], probes: LocalProbes = dockerAnswers): Promise<{ code: number; lines: string[] }> {
  const out: string[] = [];
  const ctx: OpsContext = {
    io: { out: (line) => out.push(line), err: (line) => out.push(line) },
    env: {},
    clock: fakeClock(),
    aws: defaultAwsClients,
    pulumi: () => Promise.reject(new Error('preflight reads the stack file, not stack outputs')),
    signal: new AbortController().signal,
    probes,
  };
  const code = await runOps(['preflight', ...argv], ctx);
  return { code, lines: out };
}

const line = (lines: string[], check: string) => lines.find((candidate) => new RegExp(`^(PASS|FAIL|SKIP)  ${check} `).test(candidate)) ?? `no line for ${check}`;
const nextLine = (lines: string[], check: string) => lines[lines.indexOf(line(lines, check)) + 1] ?? '';
const callCount = () => Object.values(mocks).reduce((total, mock) => total + mock.calls().length, 0);

describe('ops preflight: an account ready for the first pulumi up', () => {
  beforeEach(readyAccount);

  it('passes every prerequisite, saying what it saw, and exits 0', async () => {
    const { code, lines } = await preflight(['--stack', 'production']);
    assert.equal(code, 0, lines.join('\n'));
    for (const check of ['credentials', 'region', 'hosted zone', 'engine version', 'instance classes', 'cache node type', 'docker buildx', 'chat workspace', 'origination identity', 'quotas']) {
      assert.match(line(lines, check), /^PASS /, check);
    }
    assert.match(line(lines, 'credentials'), /account 210987654321 as arn:aws:iam::210987654321:user\/deployer/);
    assert.match(line(lines, 'engine version'), /PostgreSQL 17 → RDS creates 17\.6/);
    assert.match(line(lines, 'hosted zone'), new RegExp(`${ZONE_NAME} \\(${production.api.hostedZoneId}\\)`));
    assert.match(line(lines, 'quotas'), /VPCs 1 \+ 1 of 5; Elastic IPs 0 \+ 3 of 5/);
    assert.equal(lines.at(-1), 'preflight: ready for pulumi up -s production');
    // The engine version it checks is the major from the stack file, the classes are the file's.
    assert.deepEqual(mocks.rds.commandCalls(DescribeDBEngineVersionsCommand)[0]?.args[0].input, { Engine: 'postgres', DBParameterGroupFamily: 'postgres17', DefaultOnly: true });
    assert.equal(mocks.rds.commandCalls(DescribeOrderableDBInstanceOptionsCommand)[0]?.args[0].input.DBInstanceClass, production.database.instanceClass);
    assert.equal(mocks.elasticache.commandCalls(DescribeReservedCacheNodesOfferingsCommand)[0]?.args[0].input.CacheNodeType, production.cache.nodeType);
    assert.match(line(lines, 'cache node type'), new RegExp(`${production.cache.nodeType} offered in us-east-2`));
  });

  it('--dry-run prints every call it would make and makes none (no credentials needed)', async () => {
    const noProbes: LocalProbes = {
      run: () => Promise.reject(new Error('dry run ran a program')),
      resolveNs: () => Promise.reject(new Error('dry run resolved DNS')),
    };
    const { code, lines } = await preflight(['--stack', 'production', '--dry-run'], noProbes);
    assert.equal(code, 0);
    assert.equal(callCount(), 0, 'no AWS call');
    const text = lines.join('\n');
    for (const call of ['sts:GetCallerIdentity', 'route53:GetHostedZone', 'rds:DescribeDBEngineVersions', 'rds:DescribeOrderableDBInstanceOptions', `elasticache:DescribeReservedCacheNodesOfferings (${production.cache.nodeType})`, 'docker buildx version', 'chatbot:DescribeSlackWorkspaces', 'sms-voice:DescribePhoneNumbers', 'servicequotas:GetServiceQuota vpc/L-F678F1CE']) {
      assert.ok(text.includes(call), `${call} in\n${text}`);
    }
  });
});

describe('ops preflight: what is missing, and what to do about it', () => {
  beforeEach(readyAccount);

  it('a zone public DNS does not delegate to Route 53: FAIL naming the name servers to set', async () => {
    const { code, lines } = await preflight(['--stack', 'production'], { ...dockerAnswers, resolveNs: async () => ['ns1.registrar-parking.example.'] });
    assert.equal(code, 1);
    assert.match(line(lines, 'hosted zone'), /^FAIL .*public DNS answers ns1\.registrar-parking\.example/);
    assert.match(nextLine(lines, 'hosted zone'), /do: set the NS records of riversidefamilydental\.com at its parent to ns-1204\.awsdns-22\.org/);
  });

  it('no Docker, no authorised Slack workspace, no SMS+voice number: a FAIL each, and the other checks still run', async () => {
    mocks.chatbot.on(DescribeSlackWorkspacesCommand as never).resolves({ SlackWorkspaces: [] } as never);
    mocks.sms.on(DescribePhoneNumbersCommand).resolves({ PhoneNumbers: [{ PhoneNumber: '+18885550100', Status: 'ACTIVE', NumberCapabilities: ['SMS'] } as never] });
    const missingDocker = Object.assign(new Error('spawn docker ENOENT'), { code: 'ENOENT' });
    const { code, lines } = await preflight(['--stack', 'production'], { ...dockerAnswers, run: () => Promise.reject(missingDocker) });
    assert.equal(code, 1);
    assert.match(line(lines, 'docker buildx'), /^FAIL .*spawn docker ENOENT/);
    assert.match(nextLine(lines, 'docker buildx'), /do: install Docker with the Buildx plugin/);
    assert.match(line(lines, 'chat workspace'), /^FAIL .*authorised workspaces: none/);
    assert.match(nextLine(lines, 'chat workspace'), new RegExp(`authorise Slack workspace ${production.monitoring.chatSlackTeamId}`));
    assert.match(line(lines, 'origination identity'), /^FAIL .*\+18885550100 \(SMS\)/);
    assert.match(line(lines, 'quotas'), /^PASS /);
    assert.equal(lines.at(-1), 'preflight: 3 prerequisite(s) FAIL: fix them before pulumi up -s production');
  });

  it('an engine major RDS does not offer: FAIL, and the class check that needs it is skipped', async () => {
    mocks.rds.on(DescribeDBEngineVersionsCommand).resolves({ DBEngineVersions: [] });
    const { code, lines } = await preflight(['--stack', 'production']);
    assert.equal(code, 1);
    assert.match(line(lines, 'engine version'), /^FAIL .*no available PostgreSQL 17 in us-east-2/);
    assert.match(line(lines, 'instance classes'), /^SKIP /);
  });

  it('a class not offered in one of the zones, and a region at its VPC and per-zone NAT quotas', async () => {
    mocks.rds.on(DescribeOrderableDBInstanceOptionsCommand).resolves({ OrderableDBInstanceOptions: [{ AvailabilityZones: [{ Name: 'us-east-2a' }, { Name: 'us-east-2b' }] }] });
    mocks.ec2.on(DescribeVpcsCommand).resolves({ Vpcs: Array.from({ length: 5 }, (_, index) => ({ VpcId: `vpc-${index}` })) });
    mocks.ec2.on(DescribeNatGatewaysCommand).resolves({ NatGateways: Array.from({ length: 5 }, (_, index) => ({ NatGatewayId: `nat-${index}`, SubnetId: 'subnet-b' })) });
    mocks.ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [{ SubnetId: 'subnet-b', AvailabilityZone: 'us-east-2b' }] });
    const { code, lines } = await preflight(['--stack', 'production']);
    assert.equal(code, 1);
    assert.match(line(lines, 'instance classes'), /^FAIL .*db\.m7g\.large not in us-east-2c/);
    assert.match(line(lines, 'quotas'), /^FAIL .*VPCs 5 \+ 1 of 5.*NAT gateways in one zone \(at most\) 5 \+ 1 of 5/);
    assert.match(nextLine(lines, 'quotas'), /do: request an increase in Service Quotas for VPCs, NAT gateways in one zone/);
  });

  it('a Valkey node type the region does not sell, or one ElastiCache does not know: FAIL saying which setting to change', async () => {
    mocks.elasticache.on(DescribeReservedCacheNodesOfferingsCommand).resolves({ ReservedCacheNodesOfferings: [] });
    const absent = await preflight(['--stack', 'production']);
    assert.equal(absent.code, 1);
    assert.match(line(absent.lines, 'cache node type'), new RegExp(`^FAIL .*ElastiCache offers no ${production.cache.nodeType} in us-east-2`));
    assert.match(nextLine(absent.lines, 'cache node type'), /do: set dms:cache\.nodeType to a type ElastiCache offers in us-east-2/);

    mocks.elasticache.on(DescribeReservedCacheNodesOfferingsCommand).rejects(Object.assign(new Error('Invalid cache node type: cache.t9.huge'), { name: 'InvalidParameterValueException', $metadata: {} }));
    const unknown = await preflight(['--stack', 'production']);
    assert.match(line(unknown.lines, 'cache node type'), /^FAIL .*InvalidParameterValueException: Invalid cache node type/);
    assert.match(nextLine(unknown.lines, 'cache node type'), /do: set dms:cache\.nodeType/);
  });

  it('a stack without Valkey asks nothing of ElastiCache', async () => {
    const small = parseConfig(loadStackFile('small').config, 'small');
    assert.equal(small.cache.enabled, false);
    const { lines } = await preflight(['--stack', 'small']);
    assert.match(line(lines, 'cache node type'), /^SKIP .*dms:cache\.enabled is false/);
    assert.equal(mocks.elasticache.commandCalls(DescribeReservedCacheNodesOfferingsCommand).length, 0);
  });

  it('credentials AWS refuses: FAIL with the service error, not a stack trace', async () => {
    mocks.sts.on(GetCallerIdentityCommand).rejects(Object.assign(new Error('The security token included in the request is invalid.'), { name: 'InvalidClientTokenId', $metadata: {} }));
    const { code, lines } = await preflight(['--stack', 'production']);
    assert.equal(code, 1);
    assert.match(line(lines, 'credentials'), /^FAIL .*InvalidClientTokenId: The security token included in the request is invalid\./);
    assert.ok(!lines.join('\n').includes('    at '), 'no stack trace');
  });

  it('an unknown stack is a usage error naming the missing stack file', async () => {
    const { code, lines } = await preflight(['--stack', 'nosuchstack']);
    assert.equal(code, 2);
    assert.match(lines.join('\n'), /no stack file Pulumi\.nosuchstack\.yaml/);
  });
});
