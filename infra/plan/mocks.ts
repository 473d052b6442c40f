/**
 * Pulumi runtime mocks standing in for the AWS control plane: plausible ids, ARNs and computed
 * outputs for every resource type the program creates, and the data-source invokes it calls.
 * One implementation, shared by `npm run plan` and the tests.
 */
import type * as pulumi from '@pulumi/pulumi';
import { createHash } from 'node:crypto';

/** The account the offline plan pretends to deploy into. */
export const MOCK_ACCOUNT_ID = '123456789012';

/** ELB log-delivery accounts of the regions a clinic is likely to pick (others fall back to us-east-1's). */
const ELB_ACCOUNTS: Readonly<Record<string, string>> = {
  'us-east-1': '127311923021',
  'us-east-2': '033677994240',
  'us-west-1': '027434742980',
  'us-west-2': '797873946194',
  'eu-west-1': '156460612806',
  'eu-west-2': '652711504416',
  'eu-central-1': '054676820928',
  'ca-central-1': '985666609251',
};

/** Route 53 zone id of ALBs per region (alias targets). */
const ALB_ZONE_IDS: Readonly<Record<string, string>> = {
  'us-east-1': 'Z35SXDOTRQ7X7K',
  'us-east-2': 'Z3AADJGX6KTTL2',
  'us-west-2': 'Z1H1FL5HABSF5',
  'eu-west-1': 'Z32O12XQLNTSW2',
  'eu-west-2': 'ZHURV8PSTC4K8',
  'eu-central-1': 'Z215JYRZR1TBD5',
};

type State = Record<string, unknown>;

/** Deterministic hex derived from a seed, so repeated runs print the same ids. */
function hex(seed: string, length: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, length);
}

function uuid(seed: string): string {
  const h = hex(seed, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function str(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== '' ? value : fallback;
}

/** Mocks for one stack run in `homeRegion` (a resource with its own `region` input lives there instead). */
export function createMocks(homeRegion: string): pulumi.runtime.Mocks {
  const account = MOCK_ACCOUNT_ID;

  const computed = (type: string, name: string, inputs: State): { id: string; state: State } => {
    // Pulumi AWS v7 takes a `region` on every resource (the DR region's resources set it).
    const region = str(inputs['region'], homeRegion);
    const arn = (service: string, resource: string, withRegion = true) => `arn:aws:${service}:${withRegion ? region : ''}:${withRegion ? account : ''}:${resource}`;
    const seed = `${type}::${name}`;
    const physical = str(inputs['name'], name);
    const ec2Id = (prefix: string) => ({ id: `${prefix}-${hex(seed, 17)}`, state: {} });
    switch (type) {
      case 'aws:s3/bucket:Bucket': {
        const bucket = str(inputs['bucket'], `${name}-${hex(seed, 8)}`);
        return { id: bucket, state: { bucket, arn: `arn:aws:s3:::${bucket}`, bucketRegionalDomainName: `${bucket}.s3.${region}.amazonaws.com`, region } };
      }
      case 'aws:ec2/vpc:Vpc':
        return {
          id: `vpc-${hex(seed, 17)}`,
          state: { ipv6CidrBlock: `2600:1f16:${hex(seed, 3)}:${hex(`${seed}6`, 2)}00::/56`, arn: arn('ec2', `vpc/vpc-${hex(seed, 17)}`), defaultNetworkAclId: `acl-${hex(`${seed}acl`, 17)}` },
        };
      case 'aws:ec2/subnet:Subnet':
        return ec2Id('subnet');
      case 'aws:ec2/securityGroup:SecurityGroup':
      case 'aws:ec2/defaultSecurityGroup:DefaultSecurityGroup':
        return ec2Id('sg');
      case 'aws:ec2/internetGateway:InternetGateway':
        return ec2Id('igw');
      case 'aws:ec2/natGateway:NatGateway':
        return ec2Id('nat');
      case 'aws:ec2/eip:Eip':
        return { id: `eipalloc-${hex(seed, 17)}`, state: { publicIp: `3.${parseInt(hex(seed, 2), 16)}.${parseInt(hex(`${seed}b`, 2), 16)}.10` } };
      case 'aws:ec2/routeTable:RouteTable':
        return ec2Id('rtb');
      case 'aws:ec2/vpcEndpoint:VpcEndpoint':
        return ec2Id('vpce');
      case 'aws:ec2/flowLog:FlowLog':
        return ec2Id('fl');
      case 'aws:kms/key:Key': {
        const keyId = uuid(seed);
        return { id: keyId, state: { keyId, arn: arn('kms', `key/${keyId}`) } };
      }
      case 'aws:iam/role:Role':
        return { id: physical, state: { name: physical, arn: `arn:aws:iam::${account}:role/${physical}`, uniqueId: `AROA${hex(seed, 17).toUpperCase()}` } };
      case 'aws:cloudwatch/logGroup:LogGroup':
        return { id: physical, state: { name: physical, arn: arn('logs', `log-group:${physical}`) } };
      case 'aws:secretsmanager/secret:Secret': {
        const secretArn = arn('secretsmanager', `secret:${physical}-${hex(seed, 6)}`);
        return { id: secretArn, state: { arn: secretArn } };
      }
      case 'aws:rds/instance:Instance': {
        const identifier = str(inputs['identifier'], name);
        const address = `${identifier}.c${hex(seed, 11)}.${region}.rds.amazonaws.com`;
        const managed = inputs['manageMasterUserPassword'] === true
          ? { masterUserSecrets: [{ secretArn: arn('secretsmanager', `secret:rds!db-${uuid(seed)}-${hex(`${seed}s`, 6)}`), kmsKeyId: inputs['masterUserSecretKmsKeyId'], secretStatus: 'active' }] }
          : { masterUserSecrets: [] };
        return {
          id: `db-${hex(seed, 26).toUpperCase()}`,
          state: {
            identifier,
            address,
            endpoint: `${address}:${Number(inputs['port'] ?? 5432)}`,
            port: Number(inputs['port'] ?? 5432),
            arn: arn('rds', `db:${identifier}`),
            resourceId: `db-${hex(seed, 26).toUpperCase()}`,
            // RDS picks the newest minor of a major-only engineVersion; the plan shows a stand-in minor.
            engineVersionActual: `${str(inputs['engineVersion'], '17').split('.')[0] ?? '17'}.0`,
            ...managed,
          },
        };
      }
      case 'aws:rds/subnetGroup:SubnetGroup':
        return { id: physical, state: { name: physical, arn: arn('rds', `subgrp:${physical}`) } };
      case 'aws:rds/parameterGroup:ParameterGroup':
        return { id: physical, state: { name: physical, arn: arn('rds', `pg:${physical}`) } };
      case 'aws:ecr/repository:Repository':
        return {
          id: physical,
          state: { name: physical, arn: arn('ecr', `repository/${physical}`), registryId: account, repositoryUrl: `${account}.dkr.ecr.${region}.amazonaws.com/${physical}` },
        };
      case 'awsx:ecr:Image':
        return { id: '', state: { imageUri: `${str(inputs['repositoryUrl'], 'repository')}@sha256:${hex(`${seed}${String(inputs['imageTag'])}`, 64)}` } };
      case 'aws:ecs/cluster:Cluster':
        return { id: arn('ecs', `cluster/${physical}`), state: { name: physical, arn: arn('ecs', `cluster/${physical}`) } };
      case 'aws:ecs/taskDefinition:TaskDefinition': {
        const family = str(inputs['family'], name);
        return {
          id: family,
          state: { family, revision: 1, arn: arn('ecs', `task-definition/${family}:1`), arnWithoutRevision: arn('ecs', `task-definition/${family}`) },
        };
      }
      case 'aws:ecs/service:Service': {
        const cluster = str(inputs['cluster'], 'cluster').split('/').pop() ?? 'cluster';
        return { id: arn('ecs', `service/${cluster}/${physical}`), state: { name: physical } };
      }
      case 'aws:lb/loadBalancer:LoadBalancer': {
        const suffix = `app/${physical}/${hex(seed, 16)}`;
        return {
          id: arn('elasticloadbalancing', `loadbalancer/${suffix}`),
          state: {
            arn: arn('elasticloadbalancing', `loadbalancer/${suffix}`),
            arnSuffix: suffix,
            dnsName: `${physical}-${parseInt(hex(seed, 8), 16)}.${region}.elb.amazonaws.com`,
            zoneId: ALB_ZONE_IDS[region] ?? 'Z35SXDOTRQ7X7K',
          },
        };
      }
      case 'aws:lb/targetGroup:TargetGroup': {
        const suffix = `targetgroup/${physical}/${hex(seed, 16)}`;
        return { id: arn('elasticloadbalancing', suffix), state: { arn: arn('elasticloadbalancing', suffix), arnSuffix: suffix } };
      }
      case 'aws:acm/certificate:Certificate': {
        const domain = str(inputs['domainName'], 'example.invalid');
        const certificateArn = arn('acm', `certificate/${uuid(seed)}`);
        return {
          id: certificateArn,
          state: {
            arn: certificateArn,
            domainValidationOptions: [
              { domainName: domain, resourceRecordName: `_${hex(seed, 32)}.${domain}.`, resourceRecordType: 'CNAME', resourceRecordValue: `_${hex(`${seed}v`, 32)}.acm-validations.aws.` },
            ],
          },
        };
      }
      case 'aws:route53/record:Record':
        return { id: `${str(inputs['zoneId'], 'Z')}_${str(inputs['name'], name)}_${str(inputs['type'], 'A')}`, state: { fqdn: str(inputs['name'], name).replace(/\.$/, '') } };
      case 'aws:wafv2/ipSet:IpSet':
      case 'aws:wafv2/webAcl:WebAcl': {
        const id = uuid(seed);
        const kind = type === 'aws:wafv2/ipSet:IpSet' ? 'ipset' : 'webacl';
        return { id, state: { arn: arn('wafv2', `regional/${kind}/${physical}/${id}`), name: physical } };
      }
      case 'aws:elasticache/replicationGroup:ReplicationGroup': {
        const groupId = str(inputs['replicationGroupId'], name);
        return {
          id: groupId,
          state: { arn: arn('elasticache', `replicationgroup:${groupId}`), primaryEndpointAddress: `master.${groupId}.${hex(seed, 6)}.use2.cache.amazonaws.com`, readerEndpointAddress: `replica.${groupId}.${hex(seed, 6)}.use2.cache.amazonaws.com` },
        };
      }
      case 'aws:lambda/function:Function':
        return { id: physical, state: { arn: arn('lambda', `function:${physical}`), invokeArn: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${arn('lambda', `function:${physical}`)}/invocations` } };
      case 'aws:sfn/stateMachine:StateMachine':
        return { id: arn('states', `stateMachine:${physical}`), state: { arn: arn('states', `stateMachine:${physical}`), name: physical } };
      case 'aws:lambda/functionUrl:FunctionUrl':
        return { id: str(inputs['functionName'], name), state: { functionUrl: `https://${hex(seed, 32)}.lambda-url.${region}.on.aws/`, urlId: hex(seed, 32) } };
      case 'aws:dynamodb/table:Table':
        return { id: physical, state: { name: physical, arn: arn('dynamodb', `table/${physical}`) } };
      case 'aws:sns/topic:Topic':
        return { id: arn('sns', physical), state: { arn: arn('sns', physical), name: physical } };
      case 'aws:backup/vault:Vault':
        return { id: physical, state: { name: physical, arn: arn('backup', `backup-vault:${physical}`), recoveryPoints: 0 } };
      case 'aws:backup/plan:Plan': {
        const planId = uuid(seed);
        return { id: planId, state: { arn: arn('backup', `backup-plan:${planId}`), version: hex(seed, 32) } };
      }
      default: {
        const service = type.split(':')[1]?.split('/')[0] ?? 'unknown';
        const kind = type.split(':')[2] ?? 'resource';
        return { id: `${physical}-${hex(seed, 8)}`, state: { arn: arn(service, `${kind.toLowerCase()}/${physical}`) } };
      }
    }
  };

  const region = homeRegion;
  return {
    newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
      const inputs = (args.inputs ?? {}) as State;
      const { id, state } = computed(args.type, args.name, inputs);
      return { id, state: { ...inputs, ...state } };
    },
    call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
      switch (args.token) {
        case 'aws:index/getAvailabilityZones:getAvailabilityZones': {
          const letters = ['a', 'b', 'c', 'd'];
          return { id: region, names: letters.map((letter) => `${region}${letter}`), zoneIds: letters.map((_, index) => `use2-az${index + 1}`), state: 'available' };
        }
        case 'aws:index/getCallerIdentity:getCallerIdentity':
          return { id: account, accountId: account, arn: `arn:aws:iam::${account}:user/offline-plan`, userId: 'AIDAOFFLINEPLAN' };
        case 'aws:index/getPartition:getPartition':
          return { id: 'aws', partition: 'aws', dnsSuffix: 'amazonaws.com', reverseDnsPrefix: 'com.amazonaws' };
        case 'aws:index/getRegion:getRegion':
          return { id: region, name: region, region, endpoint: `ec2.${region}.amazonaws.com`, description: region };
        case 'aws:elb/getServiceAccount:getServiceAccount': {
          const elbAccount = ELB_ACCOUNTS[region] ?? ELB_ACCOUNTS['us-east-1'];
          return { id: elbAccount, arn: `arn:aws:iam::${elbAccount}:root` };
        }
        default:
          // A new data source must be mocked on purpose, not answered with nothing.
          throw new Error(`no mock for invoke ${args.token}: add it to infra/plan/mocks.ts`);
      }
    },
  };
}
