// Network: public, private (tasks) and isolated (database) subnets over the configured AZs, NAT
// per AZ in production and one in staging, flow logs, S3 gateway and interface endpoints, and
// security groups that admit each tier only from the one in front of it.
import { strict as assert } from 'node:assert';
import { DATABASE_PORT } from '../../infra/database.js';
import { INTERFACE_ENDPOINT_SERVICES, ipv6Subnet64, subnetLayout } from '../../infra/network.js';
import { opensAdminPort } from '../../infra/policy/policies.js';
import type { StackRun } from '../../infra/plan/run.js';
import { asList, one, ofType, planned, statement, statements, STACKS } from './fixture.js';

const tier = (run: StackRun, name: string) => ofType(run, 'aws:ec2/subnet:Subnet').filter((subnet) => (subnet.inputs['tags'] as Record<string, string>)['Tier'] === name);

function toRange(cidr: string): [number, number] {
  const [address = '', bits = ''] = cidr.split('/');
  const start = address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
  return [start, start + 2 ** (32 - Number(bits)) - 1];
}

describe('network: subnet layout', () => {
  it('carves non-overlapping subnets inside the VPC for up to six AZs', () => {
    for (const vpc of ['10.40.0.0/16', '172.20.0.0/20']) {
      const [low, high] = toRange(vpc);
      const ranges = subnetLayout(vpc, 6).flatMap((zone) => [zone.public, zone.private, zone.isolated]).map(toRange);
      for (const [start, end] of ranges) assert.ok(start >= low && end <= high, `${start}-${end} outside ${vpc}`);
      const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
      for (let index = 1; index < sorted.length; index++) assert.ok((sorted[index] as [number, number])[0] > (sorted[index - 1] as [number, number])[1], 'subnets overlap');
    }
  });

  it('leaves public subnets of a /20 VPC large enough for an ALB (/27 or bigger)', () => {
    assert.equal(subnetLayout('10.0.0.0/20', 3)[0]?.public.split('/')[1], '26');
  });

  it('refuses a CIDR not aligned to its prefix', () => {
    assert.throws(() => subnetLayout('10.40.1.0/16', 2), /not aligned/);
  });

  it('numbers the /64s of the VPC /56 by AZ', () => {
    assert.equal(ipv6Subnet64('2600:1f16:abc:de00::/56', 2), '2600:1f16:abc:de02::/64');
  });
});

for (const stack of STACKS) {
  describe(`network: ${stack} VPC`, () => {
    let run: StackRun;
    const azCount = stack === 'production' ? 3 : 2;
    before(async () => {
      run = await planned(stack);
    });

    it(`spreads public, private and isolated subnets over ${azCount} AZs`, () => {
      for (const name of ['public', 'private', 'isolated']) {
        const subnets = tier(run, name);
        assert.equal(subnets.length, azCount, `${name} subnets`);
        assert.equal(new Set(subnets.map((subnet) => subnet.inputs['availabilityZone'])).size, azCount, `${name} subnets in distinct AZs`);
        for (const subnet of subnets) assert.equal(subnet.inputs['mapPublicIpOnLaunch'], false);
      }
    });

    it(stack === 'production' ? 'has one NAT gateway per AZ' : 'has a single NAT gateway', () => {
      const nats = ofType(run, 'aws:ec2/natGateway:NatGateway');
      assert.equal(nats.length, stack === 'production' ? 3 : 1);
      const publicIds = tier(run, 'public').map((subnet) => subnet.id);
      for (const nat of nats) assert.ok(publicIds.includes(String(nat.inputs['subnetId'])), 'NAT lives in a public subnet');
      const privateTables = ofType(run, 'aws:ec2/routeTable:RouteTable').filter((table) => table.name.includes('-private-'));
      const natIds = nats.map((nat) => nat.id);
      for (const table of privateTables) {
        const routes = table.inputs['routes'] as { cidrBlock: string; natGatewayId?: string; gatewayId?: string }[];
        assert.deepEqual(routes.map((route) => route.cidrBlock), ['0.0.0.0/0']);
        assert.ok(natIds.includes(String(routes[0]?.natGatewayId)), 'private subnets leave through a NAT gateway, never the internet gateway');
      }
      if (stack === 'production') assert.equal(new Set(privateTables.map((table) => (table.inputs['routes'] as { natGatewayId: string }[])[0]?.natGatewayId)).size, 3);
    });

    it('gives the isolated (database) subnets no route out of the VPC', () => {
      const isolated = one(run, 'aws:ec2/routeTable:RouteTable', `dms-${stack}-isolated`);
      assert.deepEqual(isolated.inputs['routes'] ?? [], []);
      const isolatedIds = tier(run, 'isolated').map((subnet) => subnet.id);
      const associations = ofType(run, 'aws:ec2/routeTableAssociation:RouteTableAssociation').filter((association) => isolatedIds.includes(String(association.inputs['subnetId'])));
      assert.equal(associations.length, azCount);
      for (const association of associations) assert.equal(association.inputs['routeTableId'], isolated.id);
    });

    it('records VPC flow logs to an encrypted log group with retention', () => {
      const vpc = one(run, 'aws:ec2/vpc:Vpc', `dms-${stack}-vpc`);
      const flowLog = one(run, 'aws:ec2/flowLog:FlowLog', `dms-${stack}-vpc`);
      assert.equal(flowLog.inputs['vpcId'], vpc.id);
      assert.equal(flowLog.inputs['trafficType'], 'ALL');
      const group = ofType(run, 'aws:cloudwatch/logGroup:LogGroup').find((candidate) => candidate.outputs['arn'] === flowLog.inputs['logDestination']);
      assert.ok(group, 'flow logs go to a log group of the stack');
      assert.ok(group.inputs['kmsKeyId']);
      assert.ok(Number(group.inputs['retentionInDays']) > 0);
      const write = statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `dms-${stack}-flow-logs`).inputs['policy'], 'WriteFlowLogs');
      assert.equal(write.Resource, `${String(group.outputs['arn'])}:*`);
    });

    it('reaches S3 through a gateway endpoint and ECR, Logs, Secrets Manager through interface endpoints', () => {
      const endpoints = ofType(run, 'aws:ec2/vpcEndpoint:VpcEndpoint');
      const region = run.outputs['region'];
      const s3 = endpoints.find((endpoint) => endpoint.inputs['serviceName'] === `com.amazonaws.${String(region)}.s3`);
      assert.equal(s3?.inputs['vpcEndpointType'], 'Gateway');
      assert.equal((s3?.inputs['routeTableIds'] as string[]).length, azCount + 1, 'every private table and the isolated one');
      for (const service of INTERFACE_ENDPOINT_SERVICES) {
        const endpoint = endpoints.find((candidate) => candidate.inputs['serviceName'] === `com.amazonaws.${String(region)}.${service}`);
        assert.equal(endpoint?.inputs['vpcEndpointType'], 'Interface', service);
        assert.equal(endpoint?.inputs['privateDnsEnabled'], true);
        assert.deepEqual(endpoint?.inputs['subnetIds'], run.outputs['privateSubnetIds']);
      }
    });

    it("lets only the stack's buckets and ECR's layer bucket through the S3 gateway endpoint", () => {
      const region = String(run.outputs['region']);
      const s3 = ofType(run, 'aws:ec2/vpcEndpoint:VpcEndpoint').find((endpoint) => endpoint.inputs['serviceName'] === `com.amazonaws.${region}.s3`);
      assert.ok(s3?.inputs['policy'], 'an endpoint without a policy reaches every bucket in every account');
      const buckets = [run.outputs['xrayBucketName'], run.outputs['auditBucketName']].map((name) => `arn:aws:s3:::${String(name)}`);
      const reachable = statements(s3.inputs['policy']).flatMap((granted) => {
        assert.equal(granted.Effect, 'Allow');
        assert.ok(!asList(granted.Action).some((action) => action.endsWith('*')), `${granted.Sid} names its actions`);
        return asList(granted.Resource);
      });
      assert.deepEqual(reachable.sort(), [...buckets, ...buckets.map((arn) => `${arn}/*`), `arn:aws:s3:::prod-${region}-starport-layer-bucket/*`].sort());
      assert.deepEqual(asList(statement(s3.inputs['policy'], 'EcrImageLayers').Action), ['s3:GetObject']);
    });

    it('admits the database only from the tasks, the tasks only from the ALB', () => {
      const groupId = (name: string) => one(run, 'aws:ec2/securityGroup:SecurityGroup', `dms-${stack}-${name}`).id;
      const ingress = ofType(run, 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule');
      const into = (name: string) => ingress.filter((rule) => rule.inputs['securityGroupId'] === groupId(name));
      assert.deepEqual(into('database').map((rule) => [rule.inputs['fromPort'], rule.inputs['referencedSecurityGroupId']]), [[DATABASE_PORT, groupId('service')]]);
      assert.equal(one(run, 'aws:rds/instance:Instance', `dms-${stack}-db`).inputs['port'], DATABASE_PORT, 'the database listens where the groups open');
      assert.deepEqual(into('cache').map((rule) => [rule.inputs['fromPort'], rule.inputs['referencedSecurityGroupId']]), [[6379, groupId('service')]]);
      assert.deepEqual(into('service').map((rule) => [rule.inputs['fromPort'], rule.inputs['referencedSecurityGroupId']]), [[3000, groupId('alb')]]);
      assert.deepEqual(into('alb').map((rule) => rule.inputs['fromPort']).sort(), [443, 443, 80, 80]);
      const egress = ofType(run, 'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule');
      assert.equal(egress.filter((rule) => rule.inputs['securityGroupId'] === groupId('database')).length, 0, 'the database opens no connection out');
      assert.equal(run.outputs['dbSecurityGroupId'], groupId('database'));
      assert.equal(run.outputs['serviceSecurityGroupId'], groupId('service'));
    });

    it('manages the default network ACL: the internet reaches HTTP(S), ICMP and reply ports, never SSH or RDP (FSBP EC2.21)', () => {
      const acl = one(run, 'aws:ec2/defaultNetworkAcl:DefaultNetworkAcl', `dms-${stack}-default-acl`);
      assert.equal(acl.inputs['defaultNetworkAclId'], one(run, 'aws:ec2/vpc:Vpc', `dms-${stack}-vpc`).outputs['defaultNetworkAclId']);
      const ingress = acl.inputs['ingress'] as { action: string; protocol: string; fromPort: number; toPort: number; cidrBlock?: string; ipv6CidrBlock?: string }[];
      const fromInternet = ingress.filter((entry) => entry.cidrBlock === '0.0.0.0/0' || entry.ipv6CidrBlock === '::/0');
      for (const entry of fromInternet) assert.equal(opensAdminPort(entry), false, JSON.stringify(entry));
      const reaches = (protocol: string, port: number, v6 = false) =>
        fromInternet.some((entry) => entry.protocol === protocol && entry.fromPort <= port && port <= entry.toPort && (v6 ? entry.ipv6CidrBlock : entry.cidrBlock) !== undefined);
      for (const v6 of [false, true]) {
        assert.ok(reaches('tcp', 443, v6) && reaches('tcp', 80, v6), 'clients reach the ALB');
        assert.ok(reaches('tcp', 1024, v6) && reaches('tcp', 3388, v6) && reaches('tcp', 3390, v6) && reaches('tcp', 65535, v6), 'replies reach NAT and the ALB');
        assert.ok(!reaches('tcp', 22, v6) && !reaches('tcp', 3389, v6) && !reaches('udp', 3389, v6));
      }
      assert.ok(ingress.some((entry) => entry.cidrBlock === String(one(run, 'aws:ec2/vpc:Vpc', `dms-${stack}-vpc`).inputs['cidrBlock']) && entry.protocol === '-1'), 'inside the VPC everything passes');
    });

    it('strips the default security group', () => {
      const locked = ofType(run, 'aws:ec2/defaultSecurityGroup:DefaultSecurityGroup');
      assert.equal(locked.length, 1);
      assert.deepEqual([locked[0]?.inputs['ingress'] ?? [], locked[0]?.inputs['egress'] ?? []], [[], []]);
    });
  });
}
