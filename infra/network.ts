/**
 * The VPC: public subnets (ALB, NAT), private subnets (API tasks, egress through NAT) and isolated
 * subnets (database, cache: no route out), flow logs, and endpoints so image pulls, logs and secrets
 * stay on the AWS network.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AwsEnvironment } from './config.js';
import { policyDocument, trustPolicy } from './iam.js';

export interface NetworkArgs {
  /** `dms-<stack>`. */
  prefix: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /** VPC IPv4 CIDR (/16 to /20). */
  cidr: string;
  /** Number of availability zones to use. */
  azCount: number;
  /** One NAT gateway per AZ, a single shared one, or none (the tasks reach AWS through the endpoints only). */
  natGateways: 'per-az' | 'single' | 'none';
  /** AZs the tasks and the interface endpoints use: the first `taskAzCount` (ALB and database use all `azCount`). */
  taskAzCount: number;
  /** KMS key of the flow-log group. */
  logsKey: aws.kms.Key;
  /** Flow-log retention (days). */
  logRetentionDays: number;
  /** Port the API container listens on (the ALB forwards to it). */
  apiPort: number;
  /** Port PostgreSQL listens on (the task and database security groups open it). */
  databasePort: number;
  /** ARNs of the stack's buckets the tasks use: the only buckets reachable through the S3 gateway endpoint (with ECR's layer bucket). */
  s3BucketArns: pulumi.Input<string>[];
}

type PeerArgs = { cidrIpv4: string } | { cidrIpv6: string } | { referencedSecurityGroupId: pulumi.Input<string> };

/** Interface endpoints the tasks need with no internet path: image pulls, log shipping, secrets. */
export const INTERFACE_ENDPOINT_SERVICES = ['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager'] as const;
/** What only a stack without NAT gateways needs an endpoint for: `infra/secret-rotation.ts` restarts the API through ECS. */
export const NO_NAT_ENDPOINT_SERVICES = ['ecs'] as const;

export class Network extends pulumi.ComponentResource {
  readonly vpc: aws.ec2.Vpc;
  /** Availability zones in subnet order. */
  readonly availabilityZones: pulumi.Output<string[]>;
  /** ALB and NAT gateways. */
  readonly publicSubnetIds: pulumi.Output<string>[];
  /** API and job tasks (and the interface endpoints), in the first `taskAzCount` AZs. */
  readonly privateSubnetIds: pulumi.Output<string>[];
  /** Database and cache. */
  readonly isolatedSubnetIds: pulumi.Output<string>[];
  readonly flowLogGroup: aws.cloudwatch.LogGroup;
  /** The ALB: HTTP(S) from anywhere, out only to the API tasks. */
  readonly albSecurityGroup: aws.ec2.SecurityGroup;
  /** API and job tasks: in from the ALB on the API port, out to the database, the cache and HTTPS. */
  readonly serviceSecurityGroup: aws.ec2.SecurityGroup;
  /** The database (and DR drill restores): in from the tasks only, no way out. */
  readonly databaseSecurityGroup: aws.ec2.SecurityGroup;
  /** Valkey: in from the tasks only, no way out. */
  readonly cacheSecurityGroup: aws.ec2.SecurityGroup;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:network:Network', name, {}, opts);
    const child = { parent: this };
    const { prefix, azCount } = args;
    const layout = subnetLayout(args.cidr, azCount);
    const zones = aws.getAvailabilityZonesOutput({ state: 'available', filters: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }] }, child);
    this.availabilityZones = zones.names.apply((names) => {
      if (names.length < azCount) {
        throw new Error(`network.azCount is ${azCount} but ${args.env.region} offers ${names.length} availability zones`);
      }
      return names.slice(0, azCount);
    });
    const zone = (index: number) => this.availabilityZones.apply((names) => names[index] as string);

    this.vpc = new aws.ec2.Vpc(
      `${prefix}-vpc`,
      {
        cidrBlock: args.cidr,
        // IPv6 only reaches the public subnets: the ALB is dual-stack so IPv6 clients (and the IPv6 block list) matter.
        assignGeneratedIpv6CidrBlock: true,
        enableDnsHostnames: true,
        enableDnsSupport: true,
        tags: { Name: `${prefix}-vpc` },
      },
      child,
    );
    // The default security group admits all traffic between its members; strip it so nothing can rely on it.
    new aws.ec2.DefaultSecurityGroup(`${prefix}-default`, { vpcId: this.vpc.id, ingress: [], egress: [], tags: { Name: `${prefix}-default-locked` } }, child);

    // Every subnet uses the default network ACL, which AWS creates allowing everything in, SSH and RDP
    // included (FSBP EC2.21). It now admits from the internet only what the tiers need: HTTP(S) to the
    // ALB, ICMP, and replies on ephemeral ports with 22 and 3389 cut out (an allow entry covering
    // either port from 0.0.0.0/0 or ::/0 fails the control, whatever deny precedes it:
    // https://docs.aws.amazon.com/config/latest/developerguide/nacl-no-unrestricted-ssh-rdp.html).
    // Security groups still decide what reaches each tier; inside the VPC everything passes.
    new aws.ec2.DefaultNetworkAcl(
      `${prefix}-default-acl`,
      {
        defaultNetworkAclId: this.vpc.defaultNetworkAclId,
        ingress: [
          { ruleNo: 100, action: 'allow', protocol: '-1', fromPort: 0, toPort: 0, cidrBlock: args.cidr },
          { ruleNo: 101, action: 'allow', protocol: '-1', fromPort: 0, toPort: 0, ipv6CidrBlock: this.vpc.ipv6CidrBlock },
          ...internetIngress().map((entry, index) => ({ ruleNo: 200 + index, action: 'allow', ...entry })),
        ],
        egress: [
          { ruleNo: 100, action: 'allow', protocol: '-1', fromPort: 0, toPort: 0, cidrBlock: '0.0.0.0/0' },
          { ruleNo: 101, action: 'allow', protocol: '-1', fromPort: 0, toPort: 0, ipv6CidrBlock: '::/0' },
        ],
        tags: { Name: `${prefix}-default-acl` },
      },
      child,
    );

    const internetGateway = new aws.ec2.InternetGateway(`${prefix}-igw`, { vpcId: this.vpc.id, tags: { Name: `${prefix}-igw` } }, child);
    const publicRoutes = new aws.ec2.RouteTable(
      `${prefix}-public`,
      {
        vpcId: this.vpc.id,
        routes: [
          { cidrBlock: '0.0.0.0/0', gatewayId: internetGateway.id },
          { ipv6CidrBlock: '::/0', gatewayId: internetGateway.id },
        ],
        tags: { Name: `${prefix}-public` },
      },
      child,
    );
    const isolatedRoutes = new aws.ec2.RouteTable(`${prefix}-isolated`, { vpcId: this.vpc.id, tags: { Name: `${prefix}-isolated` } }, child);

    const publicSubnets: aws.ec2.Subnet[] = [];
    const privateSubnets: aws.ec2.Subnet[] = [];
    const isolatedSubnets: aws.ec2.Subnet[] = [];
    const privateRouteTables: aws.ec2.RouteTable[] = [];
    const natGateways: aws.ec2.NatGateway[] = [];
    for (let index = 0; index < azCount; index++) {
      const az = zone(index);
      const cidrs = layout[index] as SubnetCidrs;
      const publicSubnet = new aws.ec2.Subnet(
        `${prefix}-public-${index}`,
        {
          vpcId: this.vpc.id,
          availabilityZone: az,
          cidrBlock: cidrs.public,
          ipv6CidrBlock: this.vpc.ipv6CidrBlock.apply((block) => ipv6Subnet64(block, index)),
          // Nothing launched here needs an address handed out: the ALB and NAT gateways bring their own.
          mapPublicIpOnLaunch: false,
          assignIpv6AddressOnCreation: false,
          tags: { Name: `${prefix}-public-${index}`, Tier: 'public' },
        },
        child,
      );
      publicSubnets.push(publicSubnet);
      new aws.ec2.RouteTableAssociation(`${prefix}-public-${index}`, { subnetId: publicSubnet.id, routeTableId: publicRoutes.id }, child);

      if (args.natGateways === 'per-az' || (args.natGateways === 'single' && index === 0)) {
        const address = new aws.ec2.Eip(`${prefix}-nat-${index}`, { domain: 'vpc', tags: { Name: `${prefix}-nat-${index}` } }, child);
        natGateways.push(
          new aws.ec2.NatGateway(
            `${prefix}-nat-${index}`,
            { allocationId: address.id, subnetId: publicSubnet.id, tags: { Name: `${prefix}-nat-${index}` } },
            { ...child, dependsOn: [internetGateway] },
          ),
        );
      }
      if (index < args.taskAzCount) {
        const nat = natGateways[args.natGateways === 'per-az' ? index : 0];
        const privateRoutes = new aws.ec2.RouteTable(
          `${prefix}-private-${index}`,
          // Without a NAT gateway the tasks have no route out: S3 through the gateway endpoint, ECR, logs and secrets through the interface endpoints.
          { vpcId: this.vpc.id, routes: nat ? [{ cidrBlock: '0.0.0.0/0', natGatewayId: nat.id }] : [], tags: { Name: `${prefix}-private-${index}` } },
          child,
        );
        privateRouteTables.push(privateRoutes);
        const privateSubnet = new aws.ec2.Subnet(
          `${prefix}-private-${index}`,
          { vpcId: this.vpc.id, availabilityZone: az, cidrBlock: cidrs.private, mapPublicIpOnLaunch: false, tags: { Name: `${prefix}-private-${index}`, Tier: 'private' } },
          child,
        );
        privateSubnets.push(privateSubnet);
        new aws.ec2.RouteTableAssociation(`${prefix}-private-${index}`, { subnetId: privateSubnet.id, routeTableId: privateRoutes.id }, child);
      }

      const isolatedSubnet = new aws.ec2.Subnet(
        `${prefix}-isolated-${index}`,
        { vpcId: this.vpc.id, availabilityZone: az, cidrBlock: cidrs.isolated, mapPublicIpOnLaunch: false, tags: { Name: `${prefix}-isolated-${index}`, Tier: 'isolated' } },
        child,
      );
      isolatedSubnets.push(isolatedSubnet);
      new aws.ec2.RouteTableAssociation(`${prefix}-isolated-${index}`, { subnetId: isolatedSubnet.id, routeTableId: isolatedRoutes.id }, child);
    }
    this.publicSubnetIds = publicSubnets.map((subnet) => subnet.id);
    this.privateSubnetIds = privateSubnets.map((subnet) => subnet.id);
    this.isolatedSubnetIds = isolatedSubnets.map((subnet) => subnet.id);

    this.flowLogGroup = new aws.cloudwatch.LogGroup(
      `${prefix}-flow-logs`,
      { name: `/dms/${prefix.slice('dms-'.length)}/vpc-flow-logs`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
      child,
    );
    const flowLogRole = new aws.iam.Role(
      `${prefix}-flow-logs`,
      {
        name: `${prefix}-flow-logs`,
        assumeRolePolicy: trustPolicy('vpc-flow-logs.amazonaws.com', args.env.accountId),
      },
      child,
    );
    new aws.iam.RolePolicy(
      `${prefix}-flow-logs`,
      {
        role: flowLogRole.id,
        policy: policyDocument([
          {
            Sid: 'WriteFlowLogs',
            Effect: 'Allow',
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
            Resource: pulumi.interpolate`${this.flowLogGroup.arn}:*`,
          },
        ]),
      },
      child,
    );
    new aws.ec2.FlowLog(
      `${prefix}-vpc`,
      { vpcId: this.vpc.id, trafficType: 'ALL', logDestinationType: 'cloud-watch-logs', logDestination: this.flowLogGroup.arn, iamRoleArn: flowLogRole.arn, maxAggregationInterval: 60 },
      child,
    );

    // S3 through a gateway endpoint: free, and X-ray/audit traffic never crosses the NAT.
    new aws.ec2.VpcEndpoint(
      `${prefix}-s3`,
      {
        vpcId: this.vpc.id,
        serviceName: `com.amazonaws.${args.env.region}.s3`,
        vpcEndpointType: 'Gateway',
        routeTableIds: [...privateRouteTables.map((table) => table.id), isolatedRoutes.id],
        policy: s3EndpointPolicy(args.env, args.s3BucketArns),
        tags: { Name: `${prefix}-s3` },
      },
      child,
    );
    const endpointSecurityGroup = new aws.ec2.SecurityGroup(
      `${prefix}-endpoints`,
      {
        vpcId: this.vpc.id,
        description: 'Interface endpoints: HTTPS from inside the VPC',
        ingress: [{ description: 'HTTPS from the VPC', protocol: 'tcp', fromPort: 443, toPort: 443, cidrBlocks: [args.cidr] }],
        egress: [],
        tags: { Name: `${prefix}-endpoints` },
      },
      child,
    );
    // Without NAT, the secret rotation functions redeploy the API through an ECS endpoint.
    for (const service of [...INTERFACE_ENDPOINT_SERVICES, ...(args.natGateways === 'none' ? NO_NAT_ENDPOINT_SERVICES : [])]) {
      new aws.ec2.VpcEndpoint(
        `${prefix}-${service.replace('.', '-')}`,
        {
          vpcId: this.vpc.id,
          serviceName: `com.amazonaws.${args.env.region}.${service}`,
          vpcEndpointType: 'Interface',
          privateDnsEnabled: true,
          subnetIds: this.privateSubnetIds,
          securityGroupIds: [endpointSecurityGroup.id],
          tags: { Name: `${prefix}-${service}` },
        },
        child,
      );
    }

    const tier = (tierName: string, description: string) =>
      new aws.ec2.SecurityGroup(`${prefix}-${tierName}`, { name: `${prefix}-${tierName}`, vpcId: this.vpc.id, description, tags: { Name: `${prefix}-${tierName}` } }, child);
    this.albSecurityGroup = tier('alb', 'DMS load balancer: HTTP(S) from the internet, to the API tasks');
    this.serviceSecurityGroup = tier('service', 'DMS API and job tasks');
    this.databaseSecurityGroup = tier('database', 'DMS PostgreSQL: from the API and job tasks only');
    this.cacheSecurityGroup = tier('cache', 'DMS Valkey: from the API tasks only');
    const rule = (ruleName: string, direction: 'ingress' | 'egress', group: aws.ec2.SecurityGroup, port: number, peer: PeerArgs, description: string) => {
      const ruleArgs = { securityGroupId: group.id, ipProtocol: 'tcp', fromPort: port, toPort: port, description, ...peer };
      if (direction === 'ingress') new aws.vpc.SecurityGroupIngressRule(`${prefix}-${ruleName}`, ruleArgs, child);
      else new aws.vpc.SecurityGroupEgressRule(`${prefix}-${ruleName}`, ruleArgs, child);
    };
    for (const port of [80, 443]) {
      rule(`alb-in-${port}-v4`, 'ingress', this.albSecurityGroup, port, { cidrIpv4: '0.0.0.0/0' }, `HTTP${port === 443 ? 'S' : ' (redirected)'} from IPv4 clients`);
      rule(`alb-in-${port}-v6`, 'ingress', this.albSecurityGroup, port, { cidrIpv6: '::/0' }, `HTTP${port === 443 ? 'S' : ' (redirected)'} from IPv6 clients`);
    }
    rule('alb-out-api', 'egress', this.albSecurityGroup, args.apiPort, { referencedSecurityGroupId: this.serviceSecurityGroup.id }, 'To the API tasks');
    rule('service-in-alb', 'ingress', this.serviceSecurityGroup, args.apiPort, { referencedSecurityGroupId: this.albSecurityGroup.id }, 'From the load balancer');
    rule('service-out-db', 'egress', this.serviceSecurityGroup, args.databasePort, { referencedSecurityGroupId: this.databaseSecurityGroup.id }, 'To PostgreSQL');
    rule('service-out-cache', 'egress', this.serviceSecurityGroup, 6379, { referencedSecurityGroupId: this.cacheSecurityGroup.id }, 'To Valkey');
    // AWS APIs: ECR, Logs and Secrets Manager through the interface endpoints, S3 through the gateway, the rest through NAT.
    rule('service-out-https', 'egress', this.serviceSecurityGroup, 443, { cidrIpv4: '0.0.0.0/0' }, 'AWS APIs over HTTPS');
    rule('db-in-service', 'ingress', this.databaseSecurityGroup, args.databasePort, { referencedSecurityGroupId: this.serviceSecurityGroup.id }, 'From the API and job tasks');
    rule('cache-in-service', 'ingress', this.cacheSecurityGroup, 6379, { referencedSecurityGroupId: this.serviceSecurityGroup.id }, 'From the API tasks');

    this.registerOutputs({ vpcId: this.vpc.id, privateSubnetIds: this.privateSubnetIds });
  }
}

/** The AWS-owned bucket ECR serves image layers from, in the stack's region. */
export function ecrLayerBucketObjects(env: AwsEnvironment): pulumi.Output<string> {
  return pulumi.interpolate`arn:${env.partition}:s3:::prod-${env.region}-starport-layer-bucket/*`;
}

/**
 * The S3 gateway endpoint's policy: without one, anything in the VPC holding credentials (a
 * compromised task) could copy PHI to any bucket in any account. Through the endpoint only the
 * stack's buckets answer, and ECR's layer bucket, from which Fargate pulls the image ("Minimum
 * Amazon S3 bucket permissions for Amazon ECR": s3:GetObject on
 * arn:aws:s3:::prod-<region>-starport-layer-bucket/*,
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html). An endpoint policy
 * grants nothing by itself: the task roles and bucket policies still decide who may do what.
 */
function s3EndpointPolicy(env: AwsEnvironment, bucketArns: pulumi.Input<string>[]): pulumi.Output<string> {
  return policyDocument([
    {
      Sid: 'StackBucketsOnly',
      Effect: 'Allow',
      Principal: '*',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:ListBucket'],
      Resource: bucketArns.flatMap((arn) => [arn, pulumi.interpolate`${arn}/*`]),
    },
    { Sid: 'EcrImageLayers', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: ecrLayerBucketObjects(env) },
  ]);
}

/** Remote administration ports FSBP EC2.21 requires closed to the internet. */
export const ADMIN_PORTS = [22, 3389] as const;

/** Port ranges from `from` to `to` with the admin ports cut out. */
function withoutAdminPorts(from: number, to: number): [number, number][] {
  const ranges: [number, number][] = [];
  let start = from;
  for (const port of ADMIN_PORTS) {
    if (port < start || port > to) continue;
    if (port > start) ranges.push([start, port - 1]);
    start = port + 1;
  }
  if (start <= to) ranges.push([start, to]);
  return ranges;
}

/** Inbound entries from anywhere (IPv4 and IPv6): HTTP(S), ICMP, and TCP/UDP replies on ephemeral ports. */
function internetIngress(): { protocol: string; fromPort: number; toPort: number; cidrBlock?: string; ipv6CidrBlock?: string }[] {
  const ports: { protocol: string; fromPort: number; toPort: number }[] = [
    { protocol: 'tcp', fromPort: 80, toPort: 80 },
    { protocol: 'tcp', fromPort: 443, toPort: 443 },
    ...(['tcp', 'udp'] as const).flatMap((protocol) => withoutAdminPorts(1024, 65535).map(([fromPort, toPort]) => ({ protocol, fromPort, toPort }))),
  ];
  return [
    ...ports.flatMap((entry) => [{ ...entry, cidrBlock: '0.0.0.0/0' }, { ...entry, ipv6CidrBlock: '::/0' }]),
    // Path MTU discovery ("fragmentation needed") must reach the tasks and the ALB.
    { protocol: 'icmp', fromPort: -1, toPort: -1, cidrBlock: '0.0.0.0/0' },
    { protocol: '58', fromPort: -1, toPort: -1, ipv6CidrBlock: '::/0' },
  ];
}

interface SubnetCidrs {
  public: string;
  private: string;
  isolated: string;
}

/**
 * Carves the VPC CIDR into eighths: the first six are the private (task) subnets of up to six AZs,
 * the seventh is cut into eight public subnets, the eighth into eight isolated subnets. A /16 gives
 * /19 private (8k addresses each) and /22 public and isolated subnets; a /20 still leaves /26s,
 * above the /27 an ALB needs.
 */
export function subnetLayout(cidr: string, azCount: number): SubnetCidrs[] {
  const [address = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText);
  const base = address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) throw new Error(`${cidr} is not aligned to its prefix length`);
  const eighth = size / 8;
  const sixtyFourth = size / 64;
  const block = (start: number, bits: number) => `${toDotted(start)}/${bits}`;
  return Array.from({ length: azCount }, (_, index) => ({
    private: block(base + index * eighth, prefix + 3),
    public: block(base + 6 * eighth + index * sixtyFourth, prefix + 6),
    isolated: block(base + 7 * eighth + index * sixtyFourth, prefix + 6),
  }));
}

function toDotted(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** The `index`-th /64 of the VPC's Amazon-provided /56. */
export function ipv6Subnet64(block56: string, index: number): string {
  const [address = ''] = block56.split('/');
  const [head = '', tail = ''] = address.split('::');
  const groups = head.split(':').filter(Boolean);
  const tailGroups = tail.split(':').filter(Boolean);
  const full = [...groups, ...Array<string>(8 - groups.length - tailGroups.length).fill('0'), ...tailGroups].map((group) => parseInt(group, 16));
  full[3] = ((full[3] ?? 0) & 0xff00) | index;
  return `${full.slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
}
