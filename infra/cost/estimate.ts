/**
 * A monthly estimate of a planned stack from its resources: the fixed part (hours a month × the
 * on-demand price, what the stack costs idle) and the usage part (the assumptions in ./usage.ts ×
 * their prices). Prices come from ./prices.json, the date they were taken with them. A resource type
 * neither priced here nor known to be free is reported as not priced, never counted as zero.
 */
import { readFileSync } from 'node:fs';
import type { RecordedResource, StackRun } from '../plan/run.js';
import type { Usage } from './usage.js';

/** Hours in the month AWS bills by (365 × 24 / 12). */
export const HOURS_PER_MONTH = 730;

export interface PriceEntry {
  usd: number;
  unit: string;
  /** The Price List API query that finds it (`pricing:GetProducts`), used by the refresh command. */
  query: { serviceCode: string; filters: Record<string, string> };
}

export interface PriceFile {
  takenOn: string;
  currency: 'USD';
  source: string;
  regions: Record<string, { location: string; prices: Record<string, PriceEntry> }>;
}

export const PRICE_FILE = new URL('./prices.json', import.meta.url);

export function loadPrices(file: URL | string = PRICE_FILE): PriceFile {
  return JSON.parse(readFileSync(file, 'utf8')) as PriceFile;
}

export interface CostLine {
  resource: string;
  type: string;
  /** The component the resource belongs to (`network`, `database`, …). */
  component: string;
  fixedUsd: number;
  usageUsd: number;
  /** The arithmetic, in words: quantity × price for each part. */
  basis: string;
}

export interface Estimate {
  region: string;
  pricesTakenOn: string;
  usage: Usage;
  lines: CostLine[];
  /** Resources of a type this estimate has no price for: their cost is unknown, not zero. */
  notPriced: { resource: string; type: string; component: string }[];
  byComponent: Record<string, { fixedUsd: number; usageUsd: number }>;
  totals: { fixedUsd: number; usageUsd: number; totalUsd: number };
  /** The stack's budget against the fixed part: a budget below it alarms on day one. */
  budget?: { limitUsd: number; belowFixedCost: boolean };
}

/**
 * Types AWS does not bill for by themselves (their traffic or storage is priced where it lands):
 * IAM, the VPC's own pieces, bucket settings, listeners, task definitions, aliases, permissions, …
 */
const FREE_TYPES = new Set([
  'aws:iam/role:Role', 'aws:iam/rolePolicy:RolePolicy', 'aws:iam/rolePolicyAttachment:RolePolicyAttachment', 'aws:iam/policy:Policy',
  'aws:ec2/vpc:Vpc', 'aws:ec2/subnet:Subnet', 'aws:ec2/routeTable:RouteTable', 'aws:ec2/routeTableAssociation:RouteTableAssociation',
  'aws:ec2/internetGateway:InternetGateway', 'aws:ec2/securityGroup:SecurityGroup', 'aws:ec2/defaultSecurityGroup:DefaultSecurityGroup',
  'aws:ec2/defaultNetworkAcl:DefaultNetworkAcl', 'aws:ec2/flowLog:FlowLog', 'aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway',
  'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', 'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule',
  'aws:s3/bucketCorsConfiguration:BucketCorsConfiguration', 'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration',
  'aws:s3/bucketLogging:BucketLogging', 'aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration',
  'aws:s3/bucketOwnershipControls:BucketOwnershipControls', 'aws:s3/bucketPolicy:BucketPolicy', 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock',
  'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', 'aws:s3/bucketVersioning:BucketVersioning',
  'aws:kms/alias:Alias', 'aws:lb/listener:Listener', 'aws:lb/targetGroup:TargetGroup', 'aws:acm/certificate:Certificate',
  'aws:acm/certificateValidation:CertificateValidation', 'aws:route53/record:Record', 'aws:wafv2/ipSet:IpSet',
  'aws:wafv2/webAclAssociation:WebAclAssociation', 'aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration',
  'aws:rds/subnetGroup:SubnetGroup', 'aws:rds/parameterGroup:ParameterGroup', 'aws:rds/eventSubscription:EventSubscription',
  'aws:elasticache/subnetGroup:SubnetGroup', 'aws:ecs/cluster:Cluster', 'aws:ecs/taskDefinition:TaskDefinition',
  'aws:appautoscaling/target:Target', 'aws:appautoscaling/policy:Policy', 'aws:lambda/permission:Permission',
  'aws:lambda/functionUrl:FunctionUrl', 'aws:lambda/invocation:Invocation', 'aws:secretsmanager/secretVersion:SecretVersion',
  'aws:sns/topicPolicy:TopicPolicy', 'aws:sns/topicSubscription:TopicSubscription', 'aws:ecr/lifecyclePolicy:LifecyclePolicy',
  'aws:cloudwatch/eventTarget:EventTarget', 'aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration', 'awsx:ecr:Image',
  'aws:backup/plan:Plan', 'aws:backup/selection:Selection', 'aws:backup/vaultLockConfiguration:VaultLockConfiguration',
  'aws:ecr/replicationConfiguration:ReplicationConfiguration', 'aws:secretsmanager/secretRotation:SecretRotation',
]);

/** Pay-per-use types whose use here is a handful of calls a month: priced at zero, with the reason shown. */
const NEGLIGIBLE_TYPES: Record<string, string> = {
  'aws:lambda/function:Function': 'Lambda: a few thousand invocations a month, inside the free tier',
  'aws:sfn/stateMachine:StateMachine': 'Step Functions: one execution per alarm, a few dozen transitions each',
  'aws:sns/topic:Topic': 'SNS: alarm notifications, inside the free tier',
  'aws:cloudwatch/eventRule:EventRule': 'EventBridge: AWS service events are free',
  'aws:dynamodb/table:Table': 'DynamoDB on demand: acknowledgement tokens, a few KB',
  'aws:budgets/budget:Budget': 'AWS Budgets: the first two budgets of an account are free',
  'aws:s3/bucketReplicationConfig:BucketReplicationConfig':
    'S3 Replication: new objects only (a few GB a month), inter-region transfer about $0.02/GB plus $0.015/GB with Replication Time Control; the replicas are priced with their buckets',
};

type Pricer = (resource: RecordedResource, context: PricingContext) => Omit<CostLine, 'resource' | 'type' | 'component'> | undefined;

interface PricingContext {
  price(id: string): number;
  usage: Usage;
  /** Resources of the run by type. */
  ofType(type: string): RecordedResource[];
}

const money = (usd: number) => `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
/** A quantity in a basis: whole, or to two decimals. */
const qty = (value: number) => String(Number.isInteger(value) ? value : Number(value.toFixed(2)));
const hourly = (context: PricingContext, id: string, count = 1) => ({
  usd: count * context.price(id) * HOURS_PER_MONTH,
  text: `${count === 1 ? '' : `${count} × `}${HOURS_PER_MONTH} h × ${money(context.price(id))}`,
});

/** Fargate cost of one task of `definition` for `hours`. */
function fargate(context: PricingContext, definition: RecordedResource, hours: number): { usd: number; text: string } {
  const arch = (definition.inputs['runtimePlatform'] as { cpuArchitecture?: string } | undefined)?.cpuArchitecture === 'ARM64' ? 'arm' : 'x86';
  const vcpu = Number(definition.inputs['cpu']) / 1024;
  const gb = Number(definition.inputs['memory']) / 1024;
  const vcpuPrice = context.price(`fargate.${arch}.vcpuHour`);
  const gbPrice = context.price(`fargate.${arch}.gbHour`);
  return {
    usd: hours * (vcpu * vcpuPrice + gb * gbPrice),
    text: `${qty(hours)} h × (${vcpu} vCPU × ${money(vcpuPrice)} + ${gb} GB × ${money(gbPrice)}) ${arch}`,
  };
}

const taskDefinitionByArn = (context: PricingContext, arn: unknown) =>
  context.ofType('aws:ecs/taskDefinition:TaskDefinition').find((definition) => definition.outputs['arn'] === arn);

/** Runs a month of a schedule expression, where it can be read: `rate(n unit)` or a daily `cron`. */
export function runsPerMonth(expression: string): number | undefined {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (rate) {
    const every = Number(rate[1]) * { minute: 1, minutes: 1, hour: 60, hours: 60, day: 1440, days: 1440 }[rate[2] as 'minute'];
    return (HOURS_PER_MONTH * 60) / every;
  }
  if (/^cron\(\d+ \d+ \* \* \? \*\)$/.test(expression)) return HOURS_PER_MONTH / 24;
  return undefined;
}

const PRICERS: Record<string, Pricer> = {
  'aws:ec2/natGateway:NatGateway': (_r, c) => {
    const hours = hourly(c, 'natGateway.hour');
    const share = c.usage.natGb / c.ofType('aws:ec2/natGateway:NatGateway').length;
    return { fixedUsd: hours.usd, usageUsd: share * c.price('natGateway.gb'), basis: `${hours.text}; ${qty(share)} GB processed × ${money(c.price('natGateway.gb'))}` };
  },
  'aws:ec2/eip:Eip': (_r, c) => {
    const hours = hourly(c, 'publicIpv4.hour');
    return { fixedUsd: hours.usd, usageUsd: 0, basis: `public IPv4 ${hours.text}` };
  },
  'aws:ec2/vpcEndpoint:VpcEndpoint': (r, c) => {
    if (r.inputs['vpcEndpointType'] !== 'Interface') return { fixedUsd: 0, usageUsd: 0, basis: 'gateway endpoint: free' };
    const azs = (r.inputs['subnetIds'] as unknown[] | undefined)?.length ?? 1;
    const hours = hourly(c, 'vpcEndpoint.interface.azHour', azs);
    const share = c.usage.interfaceEndpointGb / c.ofType('aws:ec2/vpcEndpoint:VpcEndpoint').filter((e) => e.inputs['vpcEndpointType'] === 'Interface').length;
    return { fixedUsd: hours.usd, usageUsd: share * c.price('vpcEndpoint.interface.gb'), basis: `${hours.text} (one per AZ); ${qty(share)} GB × ${money(c.price('vpcEndpoint.interface.gb'))}` };
  },
  'aws:lb/loadBalancer:LoadBalancer': (_r, c) => {
    const hours = hourly(c, 'alb.hour');
    const lcu = HOURS_PER_MONTH * c.usage.albLcu * c.price('alb.lcuHour');
    const out = Math.max(0, c.usage.dataOutGb - 100) * c.price('dataTransfer.outGb');
    return {
      fixedUsd: hours.usd, usageUsd: lcu + out,
      basis: `${hours.text}; ${HOURS_PER_MONTH} h × ${c.usage.albLcu} LCU × ${money(c.price('alb.lcuHour'))}; (${c.usage.dataOutGb} − 100 free) GB out × ${money(c.price('dataTransfer.outGb'))}`,
    };
  },
  'aws:ecs/service:Service': (r, c) => {
    const definition = taskDefinitionByArn(c, r.inputs['taskDefinition']);
    if (!definition) return undefined;
    const count = Number(r.inputs['desiredCount'] ?? 1);
    const task = fargate(c, definition, HOURS_PER_MONTH);
    return { fixedUsd: count * task.usd, usageUsd: 0, basis: `${count} task(s) (the minimum; autoscaling adds more under load) × ${task.text}` };
  },
  'aws:scheduler/schedule:Schedule': (r, c) => {
    const target = r.inputs['target'] as { ecsParameters?: { taskDefinitionArn?: unknown } } | undefined;
    if (!target?.ecsParameters) return { fixedUsd: 0, usageUsd: 0, basis: 'EventBridge Scheduler: inside the free 14 million invocations (its Lambda target is priced with Lambda)' };
    const runs = runsPerMonth(String(r.inputs['scheduleExpression']));
    const definition = taskDefinitionByArn(c, target.ecsParameters.taskDefinitionArn);
    if (runs === undefined || !definition) return undefined;
    const hours = (runs * c.usage.minutesPerScheduledRun) / 60;
    const task = fargate(c, definition, hours);
    return { fixedUsd: 0, usageUsd: task.usd, basis: `${qty(runs)} runs × ${c.usage.minutesPerScheduledRun} min = ${task.text}` };
  },
  'aws:rds/instance:Instance': (r, c) => {
    const multiAz = r.inputs['multiAz'] === true;
    const copies = multiAz ? 2 : 1;
    const instance = hourly(c, `rds.postgres.${String(r.inputs['instanceClass'])}`, copies);
    const source = r.inputs['replicateSourceDb'] ? c.ofType('aws:rds/instance:Instance').find((db) => db.inputs['identifier'] === r.inputs['replicateSourceDb'] || db.outputs['identifier'] === r.inputs['replicateSourceDb']) : undefined;
    const gb = Number(r.inputs['allocatedStorage'] ?? source?.inputs['allocatedStorage'] ?? 0);
    const storage = copies * gb * c.price('rds.gp3.gbMonth');
    const backups = r.inputs['replicateSourceDb'] ? 0 : c.usage.extraBackupGb * c.price('rds.backup.gbMonth');
    return {
      fixedUsd: instance.usd + storage,
      usageUsd: backups,
      basis: `${instance.text}${multiAz ? ' (Multi-AZ: primary and standby)' : ''}; ${copies} × ${gb} GB gp3 × ${money(c.price('rds.gp3.gbMonth'))}`
        + (r.inputs['replicateSourceDb'] ? '' : `; ${c.usage.extraBackupGb} GB backups beyond the free allowance × ${money(c.price('rds.backup.gbMonth'))}`)
        + (Number(r.inputs['performanceInsightsRetentionPeriod'] ?? 7) > 7 ? '; Performance Insights retention beyond 7 days is billed per vCPU and not priced here' : ''),
    };
  },
  'aws:elasticache/replicationGroup:ReplicationGroup': (r, c) => {
    const nodes = Number(r.inputs['numCacheClusters'] ?? 1);
    const hours = hourly(c, `elasticache.valkey.${String(r.inputs['nodeType'])}`, nodes);
    return { fixedUsd: hours.usd, usageUsd: 0, basis: `${hours.text} (Valkey nodes)` };
  },
  'aws:wafv2/webAcl:WebAcl': (r, c) => {
    const rules = (r.inputs['rules'] as unknown[] | undefined)?.length ?? 0;
    const fixed = c.price('waf.webAclMonth') + rules * c.price('waf.ruleMonth');
    const requests = (c.usage.requestsPerMonth / 1e6) * c.price('waf.millionRequests');
    return { fixedUsd: fixed, usageUsd: requests, basis: `${money(c.price('waf.webAclMonth'))} + ${rules} rules × ${money(c.price('waf.ruleMonth'))}; ${c.usage.requestsPerMonth / 1e6} M requests × ${money(c.price('waf.millionRequests'))}` };
  },
  'aws:kms/key:Key': (_r, c) => {
    const share = c.usage.kmsRequests / c.ofType('aws:kms/key:Key').length;
    return { fixedUsd: c.price('kms.keyMonth'), usageUsd: (share / 10_000) * c.price('kms.tenThousandRequests'), basis: `1 key × ${money(c.price('kms.keyMonth'))}; ${qty(share)} requests × ${money(c.price('kms.tenThousandRequests'))} / 10,000` };
  },
  'aws:cloudwatch/metricAlarm:MetricAlarm': (r, c) => {
    const queries = r.inputs['metricQueries'] as { metric?: unknown }[] | undefined;
    const metrics = queries ? queries.filter((query) => query.metric).length : 1;
    return { fixedUsd: metrics * c.price('cloudwatch.alarmMetricMonth'), usageUsd: 0, basis: `${metrics} alarm metric(s) × ${money(c.price('cloudwatch.alarmMetricMonth'))}` };
  },
  'aws:cloudwatch/compositeAlarm:CompositeAlarm': (_r, c) => ({ fixedUsd: c.price('cloudwatch.compositeAlarmMonth'), usageUsd: 0, basis: `1 composite alarm × ${money(c.price('cloudwatch.compositeAlarmMonth'))}` }),
  'aws:cloudwatch/dashboard:Dashboard': (_r, c) => ({ fixedUsd: c.price('cloudwatch.dashboardMonth'), usageUsd: 0, basis: `1 dashboard × ${money(c.price('cloudwatch.dashboardMonth'))}` }),
  'aws:cloudwatch/logMetricFilter:LogMetricFilter': (_r, c) => ({ fixedUsd: c.price('cloudwatch.metricMonth'), usageUsd: 0, basis: `1 custom metric × ${money(c.price('cloudwatch.metricMonth'))}` }),
  'aws:cloudwatch/contributorInsightRule:ContributorInsightRule': (_r, c) => ({
    fixedUsd: c.price('cloudwatch.contributorInsightsRuleMonth'),
    usageUsd: (c.usage.requestsPerMonth / 1e6) * c.price('cloudwatch.contributorInsightsMillionEvents'),
    basis: `1 rule × ${money(c.price('cloudwatch.contributorInsightsRuleMonth'))}; ${c.usage.requestsPerMonth / 1e6} M events × ${money(c.price('cloudwatch.contributorInsightsMillionEvents'))}`,
  }),
  'aws:cloudwatch/logGroup:LogGroup': (r, c) => {
    const name = String(r.inputs['name'] ?? r.name);
    const gb = /\/api$/.test(name) ? c.usage.apiLogGb : /flow-logs|aws-waf-logs/.test(name) ? c.usage.networkLogGb / 2 : 0;
    if (gb === 0) return { fixedUsd: 0, usageUsd: 0, basis: 'a few MB a month (database, Lambda and job logs)' };
    // A year in, a group holds up to twelve months of what it ingests (less with a shorter retention).
    const months = Math.min(12, Number(r.inputs['retentionInDays'] ?? 3653) / 30);
    const usage = gb * c.price('logs.ingestGb') + gb * months * c.price('logs.storageGbMonth');
    return { fixedUsd: 0, usageUsd: usage, basis: `${gb} GB ingested × ${money(c.price('logs.ingestGb'))}; ${gb} GB × ${months.toFixed(1)} months kept × ${money(c.price('logs.storageGbMonth'))}` };
  },
  'aws:secretsmanager/secret:Secret': (_r, c) => ({ fixedUsd: c.price('secretsManager.secretMonth'), usageUsd: 0, basis: `1 secret × ${money(c.price('secretsManager.secretMonth'))}` }),
  'aws:s3/bucket:Bucket': (r, c) => {
    // A replica in the DR region holds what its source holds (priced at the stack region's rates).
    const name = r.name.replace(/-replica$/, '');
    if (name.endsWith('-xray')) return { fixedUsd: 0, usageUsd: c.usage.xrayGb * c.price('s3.standard.gbMonth'), basis: `${c.usage.xrayGb} GB × ${money(c.price('s3.standard.gbMonth'))}` };
    if (name.endsWith('-audit')) return { fixedUsd: 0, usageUsd: c.usage.auditGb * c.price('s3.glacierFlexible.gbMonth'), basis: `${c.usage.auditGb} GB in Glacier × ${money(c.price('s3.glacierFlexible.gbMonth'))}` };
    if (name.endsWith('-forensics')) return { fixedUsd: 0, usageUsd: c.usage.forensicsGb * c.price('s3.standard.gbMonth'), basis: `${c.usage.forensicsGb} GB of incident evidence × ${money(c.price('s3.standard.gbMonth'))}` };
    if (name.endsWith('-access-logs')) return { fixedUsd: 0, usageUsd: c.usage.accessLogGb * c.price('s3.standard.gbMonth'), basis: `${c.usage.accessLogGb} GB × ${money(c.price('s3.standard.gbMonth'))}` };
    return undefined;
  },
  'aws:backup/vault:Vault': (r, c) => ({
    fixedUsd: 0,
    usageUsd: c.usage.backupVaultGb * c.price('rds.backup.gbMonth'),
    basis: `${c.usage.backupVaultGb} GB of recovery points × ${money(c.price('rds.backup.gbMonth'))} (AWS Backup bills RDS recovery points as RDS snapshot storage${typeof r.inputs['region'] === 'string' ? '; cross-region copy transfer about $0.02/GB on top' : ''})`,
  }),
  'aws:ecr/repository:Repository': (_r, c) => ({ fixedUsd: 0, usageUsd: c.usage.ecrGb * c.price('ecr.gbMonth'), basis: `${c.usage.ecrGb} GB of images × ${money(c.price('ecr.gbMonth'))}` }),
};

/** The estimate of one planned stack in `region`, with `usage` for the usage part. */
export function estimateCost(run: StackRun, { region, prices, usage }: { region: string; prices: PriceFile; usage: Usage }): Estimate {
  const regional = prices.regions[region];
  if (!regional) throw new Error(`no prices for ${region} in infra/cost/prices.json (regions: ${Object.keys(prices.regions).join(', ')})`);
  const context: PricingContext = {
    price: (id) => {
      const entry = regional.prices[id];
      if (!entry) throw new MissingPrice(id);
      return entry.usd;
    },
    usage,
    ofType: (type) => run.resources.filter((resource) => resource.type === type),
  };
  const lines: CostLine[] = [];
  const notPriced: Estimate['notPriced'] = [];
  for (const resource of run.resources) {
    const { type } = resource;
    if (FREE_TYPES.has(type) || type.startsWith('dms:') || type.startsWith('pulumi:')) continue;
    const where = { resource: resource.name, type, component: resource.parent ?? '(stack)' };
    const negligible = NEGLIGIBLE_TYPES[type];
    if (negligible) {
      lines.push({ ...where, fixedUsd: 0, usageUsd: 0, basis: negligible });
      continue;
    }
    let priced: ReturnType<Pricer>;
    try {
      priced = PRICERS[type]?.(resource, context);
    } catch (error) {
      if (!(error instanceof MissingPrice)) throw error;
      priced = undefined;
    }
    if (priced) lines.push({ ...where, ...priced });
    else notPriced.push(where);
  }

  const byComponent: Estimate['byComponent'] = {};
  for (const line of lines) {
    const sum = (byComponent[line.component] ??= { fixedUsd: 0, usageUsd: 0 });
    sum.fixedUsd += line.fixedUsd;
    sum.usageUsd += line.usageUsd;
  }
  const fixedUsd = lines.reduce((total, line) => total + line.fixedUsd, 0);
  const usageUsd = lines.reduce((total, line) => total + line.usageUsd, 0);
  const budgetLimit = run.resources.find((resource) => resource.type === 'aws:budgets/budget:Budget')?.inputs['limitAmount'];
  return {
    region,
    pricesTakenOn: prices.takenOn,
    usage,
    lines,
    notPriced,
    byComponent,
    totals: { fixedUsd, usageUsd, totalUsd: fixedUsd + usageUsd },
    ...(budgetLimit === undefined ? {} : { budget: { limitUsd: Number(budgetLimit), belowFixedCost: Number(budgetLimit) < fixedUsd } }),
  };
}

class MissingPrice extends Error {
  constructor(readonly id: string) {
    super(`no price ${id}`);
  }
}

/** The estimate for a reviewer: totals, components, every line with its arithmetic, what is not priced. */
export function formatEstimate(stack: string, estimate: Estimate): string {
  const usd = (value: number) => `$${value.toFixed(2)}`;
  const out: string[] = [
    `Monthly cost estimate of ${stack} (${estimate.region}, on-demand prices of ${estimate.pricesTakenOn}, ${HOURS_PER_MONTH} h a month)`,
    `  fixed ${usd(estimate.totals.fixedUsd)} + usage ${usd(estimate.totals.usageUsd)} = ${usd(estimate.totals.totalUsd)} a month`,
  ];
  if (estimate.budget) {
    out.push(estimate.budget.belowFixedCost
      ? `  WARNING: the budget (${usd(estimate.budget.limitUsd)}) is below the fixed cost (${usd(estimate.totals.fixedUsd)}): its alarm would fire on day one. Raise dms:budget.monthlyUsd.`
      : `  budget ${usd(estimate.budget.limitUsd)}: above the fixed cost`);
  }
  out.push('', 'By component:');
  for (const [component, sum] of Object.entries(estimate.byComponent).sort(([, a], [, b]) => b.fixedUsd + b.usageUsd - (a.fixedUsd + a.usageUsd))) {
    out.push(`  ${component.padEnd(28)} fixed ${usd(sum.fixedUsd).padStart(10)}  usage ${usd(sum.usageUsd).padStart(10)}`);
  }
  out.push('', 'By resource (fixed | usage | how):');
  for (const line of [...estimate.lines].sort((a, b) => b.fixedUsd + b.usageUsd - (a.fixedUsd + a.usageUsd))) {
    out.push(`  ${usd(line.fixedUsd).padStart(9)} | ${usd(line.usageUsd).padStart(8)} | ${line.resource} (${line.type.split(':')[1]}): ${line.basis}`);
  }
  out.push('', 'Usage assumptions (change with --assume name=value):');
  for (const [name, value] of Object.entries(estimate.usage)) out.push(`  ${name}=${value}`);
  out.push('', estimate.notPriced.length === 0 ? 'Not priced: none.' : 'Not priced (cost unknown, not zero):');
  for (const item of estimate.notPriced) out.push(`  ${item.resource} (${item.type})`);
  return `${out.join('\n')}\n`;
}
