/**
 * The human form of a plan: resources grouped by component, each with the settings a security
 * reviewer checks (encryption, public access, deletion protection, backups, TLS policy, IAM
 * actions and resources), then the policy results and the stack outputs.
 */
import type { Plan, PlanResource } from '../plan.js';
import type { Violation } from '../policy/harness.js';

type Inputs = Record<string, unknown>;
type Summary = (inputs: Inputs) => (string | undefined)[];

const yes = (value: unknown, label: string, otherwise = `NO ${label}`) => (value === true ? label : otherwise);
const json = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : value);
const arr = <T>(value: unknown): T[] => (Array.isArray(value) ? (value as T[]) : []);
const rec = (value: unknown): Inputs => (typeof value === 'object' && value !== null ? (value as Inputs) : {});

interface Statement {
  Sid?: string;
  Effect: string;
  Action?: string | string[];
  Resource?: string | string[];
  Principal?: unknown;
  Condition?: unknown;
}

function statements(policy: unknown): string[] {
  return arr<Statement>(rec(json(policy))['Statement']).map((statement) => {
    const actions = [statement.Action ?? []].flat().join(',');
    const resources = [statement.Resource ?? []].flat().join(',');
    const principal = statement.Principal === undefined ? '' : ` principal ${JSON.stringify(statement.Principal)}`;
    const condition = statement.Condition === undefined ? '' : ` if ${JSON.stringify(statement.Condition)}`;
    return `${statement.Effect} ${actions}${resources ? ` on ${resources}` : ''}${principal}${condition}`;
  });
}

const SUMMARIES: Readonly<Record<string, Summary>> = {
  'aws:s3/bucket:Bucket': (i) => [String(i['bucket']), `data ${String(rec(i['tags'])['DataClassification'])}`, i['objectLockEnabled'] === true ? 'object lock' : undefined],
  'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration': (i) =>
    arr<Inputs>(i['rules']).map((rule) => {
      const byDefault = rec(rule['applyServerSideEncryptionByDefault']);
      return `encryption ${String(byDefault['sseAlgorithm'])}${byDefault['kmsMasterKeyId'] ? ` key ${String(byDefault['kmsMasterKeyId'])}` : ''}${rule['bucketKeyEnabled'] ? ' bucket key' : ''}`;
    }),
  'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock': (i) => [
    ['blockPublicAcls', 'blockPublicPolicy', 'ignorePublicAcls', 'restrictPublicBuckets'].every((key) => i[key] === true) ? 'public access blocked (4/4)' : 'PUBLIC ACCESS NOT FULLY BLOCKED',
  ],
  'aws:s3/bucketVersioning:BucketVersioning': (i) => [`versioning ${String(rec(i['versioningConfiguration'])['status'])}`],
  'aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration': (i) => {
    const retention = rec(rec(i['rule'])['defaultRetention']);
    return [`object lock ${String(retention['mode'])} ${String(retention['days'])} days`];
  },
  'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration': (i) =>
    arr<Inputs>(i['rules']).map((rule) => {
      const transitions = arr<Inputs>(rule['transitions']).map((t) => `${String(t['storageClass'])} after ${String(t['days'])} d`);
      const expiry = rec(rule['expiration'])['days'];
      return `${String(rule['id'])}: ${[...transitions, expiry ? `expire after ${String(expiry)} d` : undefined].filter(Boolean).join(', ') || 'versions/uploads only'}`;
    }),
  'aws:s3/bucketPolicy:BucketPolicy': (i) => statements(i['policy']),
  'aws:kms/key:Key': (i) => [yes(i['enableKeyRotation'], 'rotation on'), `deletion window ${String(i['deletionWindowInDays'])} d`],
  'aws:rds/instance:Instance': (i) => [
    i['replicateSourceDb'] ? `replica of ${String(i['replicateSourceDb'])}` : `${String(i['engine'])} ${String(i['engineVersion'])}`,
    String(i['instanceClass']),
    i['replicateSourceDb'] ? `az ${String(i['availabilityZone'])}` : yes(i['multiAz'], 'multi-AZ', 'single-AZ'),
    i['replicateSourceDb'] ? 'encrypted as its source' : `${yes(i['storageEncrypted'], 'encrypted')} key ${String(i['kmsKeyId'])}`,
    i['publiclyAccessible'] === false ? 'private' : 'PUBLIC',
    yes(i['iamDatabaseAuthenticationEnabled'], 'IAM auth'),
    `backups ${String(i['backupRetentionPeriod'])} d`,
    yes(i['deletionProtection'], 'deletion protection'),
    i['replicateSourceDb'] ? undefined : i['skipFinalSnapshot'] === false ? `final snapshot ${String(i['finalSnapshotIdentifier'])}` : 'no final snapshot',
    i['manageMasterUserPassword'] === true ? 'master password managed by RDS' : undefined,
  ],
  'aws:rds/parameterGroup:ParameterGroup': (i) =>
    arr<Inputs>(i['parameters']).filter((p) => /ssl|log_min_duration|log_parameter|max_connections/.test(String(p['name']))).map((p) => `${String(p['name'])}=${String(p['value'])}`),
  'aws:lb/loadBalancer:LoadBalancer': (i) => [
    i['internal'] === true ? 'internal' : 'internet-facing',
    String(i['ipAddressType']),
    yes(i['dropInvalidHeaderFields'], 'drops invalid headers'),
    yes(i['enableDeletionProtection'], 'deletion protection'),
    `access logs ${rec(i['accessLogs'])['enabled'] === true ? `to ${String(rec(i['accessLogs'])['bucket'])}/${String(rec(i['accessLogs'])['prefix'])}` : 'OFF'}`,
    `idle ${String(i['idleTimeout'])} s`,
  ],
  'aws:lb/listener:Listener': (i) => [
    `${String(i['protocol'])}:${String(i['port'])}`,
    i['sslPolicy'] ? `TLS policy ${String(i['sslPolicy'])}` : undefined,
    arr<Inputs>(i['defaultActions']).map((action) => String(action['type'])).join(','),
  ],
  'aws:lb/targetGroup:TargetGroup': (i) => [`${String(i['protocol'])}:${String(i['port'])}`, `health ${String(rec(i['healthCheck'])['path'])}`],
  'aws:iam/role:Role': (i) => [String(i['name']), ...statements(i['assumeRolePolicy']).map((s) => `trust: ${s}`)],
  'aws:iam/rolePolicy:RolePolicy': (i) => statements(i['policy']),
  'aws:iam/rolePolicyAttachment:RolePolicyAttachment': (i) => [String(i['policyArn'])],
  'aws:cloudwatch/logGroup:LogGroup': (i) => [String(i['name']), `retention ${i['retentionInDays'] ? `${String(i['retentionInDays'])} d` : 'FOREVER'}`, i['kmsKeyId'] ? 'KMS-encrypted' : 'NOT KMS-ENCRYPTED'],
  'aws:secretsmanager/secret:Secret': (i) => [String(i['name']), i['kmsKeyId'] ? `key ${String(i['kmsKeyId'])}` : 'AWS-MANAGED KEY'],
  'aws:ecs/cluster:Cluster': (i) => arr<Inputs>(i['settings']).map((s) => `${String(s['name'])}=${String(s['value'])}`),
  'aws:ecs/service:Service': (i) => {
    const network = rec(i['networkConfiguration']);
    return [
      `desired ${String(i['desiredCount'])}`,
      network['assignPublicIp'] === false ? 'no public IP' : 'PUBLIC IP',
      `subnets ${arr<string>(network['subnets']).join(',')}`,
      rec(i['deploymentCircuitBreaker'])['rollback'] === true ? 'circuit breaker with rollback' : 'NO ROLLBACK',
      yes(i['enableExecuteCommand'], 'ECS Exec ON', 'no ECS Exec'),
    ];
  },
  'aws:ecs/taskDefinition:TaskDefinition': (i) =>
    arr<Inputs>(json(i['containerDefinitions'])).flatMap((c) => [
      `${String(c['name'])}: ${arr<string>(c['command']).join(' ')}`,
      `user ${String(c['user'])}`,
      yes(c['readonlyRootFilesystem'], 'read-only root fs'),
      `secrets ${arr<Inputs>(c['secrets']).map((s) => String(s['name'])).join(',') || 'none'}`,
      `task role ${i['taskRoleArn'] ? String(i['taskRoleArn']).split('/').pop() : 'none'}`,
    ]),
  'aws:elasticache/replicationGroup:ReplicationGroup': (i) => [
    `${String(i['engine'])} ${String(i['engineVersion'])} ${String(i['nodeType'])} x${String(i['numCacheClusters'])}`,
    yes(i['transitEncryptionEnabled'], 'TLS'),
    yes(i['atRestEncryptionEnabled'], 'encrypted at rest'),
    i['authToken'] ? 'AUTH token' : 'NO AUTH',
  ],
  'aws:ecr/repository:Repository': (i) => [yes(rec(i['imageScanningConfiguration'])['scanOnPush'], 'scan on push'), String(i['imageTagMutability'])],
  'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule': (i) => [`in tcp/${String(i['fromPort'])} from ${String(i['cidrIpv4'] ?? i['cidrIpv6'] ?? i['referencedSecurityGroupId'])}`],
  'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule': (i) => [`out tcp/${String(i['fromPort'])} to ${String(i['cidrIpv4'] ?? i['cidrIpv6'] ?? i['referencedSecurityGroupId'])}`],
  'aws:ec2/subnet:Subnet': (i) => [String(i['cidrBlock']), String(i['availabilityZone']), yes(i['mapPublicIpOnLaunch'], 'PUBLIC IPs ON LAUNCH', 'no public IPs on launch')],
  'aws:wafv2/webAcl:WebAcl': (i) =>
    arr<Inputs>(i['rules']).map((rule) => `${String(rule['priority'])} ${String(rule['name'])} ${Object.keys(rec(rule['action'] ?? rule['overrideAction'])).join('')}`),
  'aws:wafv2/ipSet:IpSet': (i) => [String(i['name']), String(i['ipAddressVersion']), `${arr(i['addresses']).length} address(es)`],
  'aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration': (i) => [`redacted ${arr<Inputs>(i['redactedFields']).map((f) => JSON.stringify(f)).join(' ')}`],
  'aws:scheduler/schedule:Schedule': (i) => [String(i['scheduleExpression']), String(i['scheduleExpressionTimezone'])],
  'aws:sfn/stateMachine:StateMachine': (i) => {
    const states = rec(rec(json(i['definition']))['States']);
    return [`${String(i['name'])} ${String(i['type'])}`, `role ${String(i['roleArn']).split('/').pop()}`, `states ${Object.keys(states).join(', ')}`];
  },
  'aws:cloudwatch/eventRule:EventRule': (i) => [String(i['name']), `pattern ${JSON.stringify(json(i['eventPattern']))}`],
  'aws:cloudwatch/eventTarget:EventTarget': (i) => [`target ${String(i['arn'])}`, `role ${String(i['roleArn']).split('/').pop()}`],
  'aws:lambda/function:Function': (i) => [String(i['name']), `${String(i['runtime'])} ${String(i['handler'])}`, `role ${String(i['role']).split('/').pop()}`],
  'aws:lambda/functionUrl:FunctionUrl': (i) => [`function ${String(i['functionName'])}`, `auth ${String(i['authorizationType'])}`],
  'aws:lambda/permission:Permission': (i) => [
    `${String(i['action'])} for ${String(i['principal'])}`,
    i['functionUrlAuthType'] ? `function URL auth ${String(i['functionUrlAuthType'])}` : undefined,
    i['invokedViaFunctionUrl'] === true ? 'only through the function URL' : undefined,
  ],
  'aws:dynamodb/table:Table': (i) => [String(i['name']), rec(i['serverSideEncryption'])['kmsKeyArn'] ? `encrypted key ${String(rec(i['serverSideEncryption'])['kmsKeyArn'])}` : 'AWS-OWNED KEY'],
  'aws:sns/topic:Topic': (i) => [String(i['name']), i['kmsMasterKeyId'] ? `encrypted key ${String(i['kmsMasterKeyId'])}` : 'NOT ENCRYPTED'],
  'aws:backup/vault:Vault': (i) => [String(i['name']), `key ${String(i['kmsKeyArn'])}`],
  'aws:backup/vaultLockConfiguration:VaultLockConfiguration': (i) => [
    i['changeableForDays'] === undefined ? 'vault lock GOVERNANCE' : `vault lock COMPLIANCE, immutable ${String(i['changeableForDays'])} d after it is set`,
    `recovery points kept ${String(i['minRetentionDays'])} d at least`,
  ],
  'aws:backup/plan:Plan': (i) =>
    arr<Inputs>(i['rules']).flatMap((rule) => [
      `${String(rule['ruleName'])}: ${String(rule['schedule'])} into ${String(rule['targetVaultName'])}, kept ${String(rec(rule['lifecycle'])['deleteAfter'])} d`,
      ...arr<Inputs>(rule['copyActions']).map((copy) => `copy to ${String(copy['destinationVaultArn'])}, kept ${String(rec(copy['lifecycle'])['deleteAfter'])} d`),
    ]),
  'aws:backup/selection:Selection': (i) => arr<string>(i['resources']).map((resource) => `backs up ${resource}`),
  'aws:s3/bucketReplicationConfig:BucketReplicationConfig': (i) =>
    arr<Inputs>(i['rules']).flatMap((rule) => {
      const destination = rec(rule['destination']);
      return [
        `${String(rule['id'])} to ${String(destination['bucket'])}`,
        `replica key ${String(rec(destination['encryptionConfiguration'])['replicaKmsKeyId'])}`,
        `delete markers ${String(rec(rule['deleteMarkerReplication'])['status'])}`,
        rec(destination['replicationTime'])['status'] === 'Enabled' ? 'Replication Time Control (15 min)' : 'no Replication Time Control',
      ];
    }),
  'aws:ecr/replicationConfiguration:ReplicationConfiguration': (i) =>
    arr<Inputs>(rec(i['replicationConfiguration'])['rules']).map(
      (rule) => `images ${arr<Inputs>(rule['repositoryFilters']).map((filter) => String(filter['filter'])).join(',')}* to ${arr<Inputs>(rule['destinations']).map((destination) => String(destination['region'])).join(',')}`,
    ),
};

/** Types without a reviewer summary show their physical name, when they have one. */
const titled: Summary = (inputs) => {
  const name = inputs['name'] ?? inputs['alarmName'];
  return typeof name === 'string' ? [name] : [];
};

export function formatPlan(stack: string, plan: Plan, violations: Violation[], elapsedMs: number, standIns: string[]): string {
  const lines = [`dms ${stack}: ${plan.resources.length} resources, planned offline under mocks in ${(elapsedMs / 1000).toFixed(1)} s`];
  if (standIns.length > 0) lines.push(`secure config values not decrypted offline (stand-ins used): ${standIns.join(', ')}`);
  const byName = new Map(plan.resources.map((resource) => [resource.name, resource]));
  const topLevel = (resource: PlanResource): PlanResource => {
    let current = resource;
    for (let parent = byName.get(current.parent ?? ''); parent && parent !== current; parent = byName.get(current.parent ?? '')) current = parent;
    return current;
  };
  const components = plan.resources.filter((resource) => !resource.parent);
  for (const component of components) {
    const children = plan.resources.filter((resource) => resource !== component && topLevel(resource) === component);
    if (children.length === 0) continue;
    lines.push('', `${component.name} (${component.type}): ${children.length} resources`);
    for (const resource of children) {
      const details = (SUMMARIES[resource.type] ?? titled)(resource.inputs).filter((detail): detail is string => Boolean(detail));
      // Resources outside the stack's region say where they are (Pulumi AWS v7 resource-level region).
      lines.push(`  ${resource.type}  ${resource.name}${typeof resource.inputs['region'] === 'string' ? `  [${resource.inputs['region']}]` : ''}`);
      for (const detail of details) lines.push(`      ${detail}`);
    }
  }
  lines.push('', violations.length === 0 ? 'policies: no violations' : `policies: ${violations.length} violation(s)`);
  for (const violation of violations) lines.push(`  [${violation.policy}] ${violation.resource ?? 'stack'}: ${violation.message}`);
  lines.push('', 'outputs:');
  for (const [key, value] of Object.entries(plan.outputs)) lines.push(`  ${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return `${lines.join('\n')}\n`;
}
