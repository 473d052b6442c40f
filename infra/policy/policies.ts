/**
 * The rules a security reviewer would otherwise check by eye, as @pulumi/policy policies. Plain
 * arrays: `index.ts` wraps them in a PolicyPack for `pulumi preview --policy-pack infra/policy`;
 * the harness (`harness.ts`) calls them directly for the tests and `npm run plan`.
 */
import * as aws from '@pulumi/aws';
import {
  validateResourceOfType,
  type PolicyResource,
  type ReportViolation,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
} from '@pulumi/policy';
import { DATA_CLASSIFICATION } from '../bucket.js';
import { HIGH_AVAILABILITY_STACKS, PRODUCTION_STACKS } from '../config.js';
import { CORE_RULE_SET_BODY_SIZE_RULE, decimalAbove } from '../firewall.js';
import { LOG_DELIVERY_ACTIONS } from '../monitoring/escalation.js';
import { FSBP_RDS_EVENT_SUBSCRIPTIONS } from '../monitoring/rds-change-events.js';
import { ADMIN_PORTS } from '../network.js';
import { BODY_LIMIT_BYTES } from '../../api/http/limits.js';

/** EventBridge's default quota on the size of a rule's event pattern (characters). */
export const EVENT_PATTERN_MAX_CHARS = 2048;

/** CloudWatch judges an alarm over at most one day: period times evaluation periods (seconds). */
export const ALARM_EVALUATION_MAX_SECONDS = 86_400;

/** Minimum automated backup retention of a production primary (days). */
export const PRODUCTION_BACKUP_DAYS = 35;

/** ALB security policies that allow nothing below TLS 1.2. */
export const TLS12_POLICIES = [
  'ELBSecurityPolicy-TLS13-1-2-2021-06',
  'ELBSecurityPolicy-TLS13-1-2-Res-2021-06',
  'ELBSecurityPolicy-TLS13-1-3-2021-06',
  'ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04',
  'ELBSecurityPolicy-TLS-1-2-2017-01',
  'ELBSecurityPolicy-TLS-1-2-Ext-2018-06',
  'ELBSecurityPolicy-FS-1-2-Res-2020-10',
];

/** Services whose resources hold or unlock data: an IAM grant on them must name its resources. */
const DATA_SERVICES = ['s3', 'rds', 'rds-db', 'secretsmanager', 'kms', 'dynamodb', 'ssm', 'logs', 'elasticache', 'backup'];

/** Actions AWS only grants on `*` (no resource-level permissions). */
const RESOURCELESS_ACTIONS = ['ecr:GetAuthorizationToken', 'kms:ListAliases', 'kms:ListKeys', 's3:ListAllMyBuckets', ...LOG_DELIVERY_ACTIONS];

/** The stack name inside a URN (`urn:pulumi:<stack>::<project>::...`). */
export function stackOfUrn(urn: string): string {
  return urn.split('::')[0]?.split(':').pop() ?? '';
}

const isProductionUrn = (urn: string) => PRODUCTION_STACKS.includes(stackOfUrn(urn));

interface Statement {
  Sid?: string;
  Effect?: string;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
}

function statementsOf(policy: unknown): Statement[] {
  if (typeof policy !== 'string') return [];
  const document = JSON.parse(policy) as { Statement?: Statement | Statement[] };
  return [document.Statement ?? []].flat();
}

const list = (value: string | string[] | undefined): string[] => (value === undefined ? [] : [value].flat());

/** What is wrong with one IAM identity-policy statement, if anything. */
export function iamStatementProblems(statement: Statement): string[] {
  if (statement.Effect !== 'Allow') return [];
  const problems: string[] = [];
  const actions = list(statement.Action);
  const resources = list(statement.Resource);
  const label = statement.Sid ? `statement ${statement.Sid}` : 'a statement';
  if (statement.NotAction !== undefined || statement.NotResource !== undefined) problems.push(`${label} allows by exclusion (NotAction/NotResource)`);
  for (const action of actions) {
    if (action === '*' || action.endsWith(':*')) problems.push(`${label} allows every action (${action})`);
  }
  if (resources.includes('*')) {
    const onData = actions.filter((action) => DATA_SERVICES.includes(action.split(':')[0] ?? '') && !RESOURCELESS_ACTIONS.includes(action));
    if (onData.length > 0) problems.push(`${label} allows ${onData.join(', ')} on every resource (*)`);
  }
  return problems;
}

/** The parts of a WAF rule the policies read, as the engine shows them (plain values). */
interface WafRule {
  action?: { block?: object; count?: object };
  statement?: {
    managedRuleGroupStatement?: { name?: string; ruleActionOverrides?: { name?: string; actionToUse?: { count?: object } }[] };
    regexMatchStatement?: { regexString?: string; fieldToMatch?: { singleHeader?: { name?: string } } };
  };
}

/** Condition keys that tie a service principal's use of a resource to this account (confused deputy). */
const SOURCE_KEYS = ['aws:SourceAccount', 'aws:SourceArn'];
/**
 * Services that use a key on a resource's behalf pass that resource in the encryption context:
 * CloudWatch Logs the log group (`ArnLike kms:EncryptionContext:aws:logs:arn`,
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html), SNS the
 * encrypted topic an AWS service publishes to (`kms:EncryptionContext:aws:sns:topicArn`, which SNS
 * always sends, where the publisher's own aws:Source* keys are not documented to reach KMS).
 */
const ENCRYPTION_CONTEXT_KEYS = ['kms:EncryptionContext:aws:logs:arn', 'kms:EncryptionContext:aws:sns:topicArn'];

/** Statements of a key or topic policy that let an AWS service act without naming whose resource it acts for. */
export function unconfinedServiceStatements(policy: unknown): string[] {
  return (statementsOf(policy) as (Statement & { Principal?: unknown; Condition?: Record<string, Record<string, unknown>> })[])
    .filter((statement) => statement.Effect === 'Allow' && typeof statement.Principal === 'object' && statement.Principal !== null && 'Service' in statement.Principal)
    .filter((statement) => {
      const keys = Object.values(statement.Condition ?? {}).flatMap((operator) => Object.keys(operator));
      return !keys.some((key) => SOURCE_KEYS.includes(key) || ENCRYPTION_CONTEXT_KEYS.includes(key));
    })
    .map((statement) => statement.Sid ?? JSON.stringify((statement.Principal as { Service: unknown }).Service));
}

export const resourcePolicies: ResourceValidationPolicy[] = [
  {
    name: 'service-principals-confined',
    description: 'Every AWS service a KMS key or SNS topic policy admits is tied to this account (aws:SourceAccount / aws:SourceArn, or the encryption context naming the log group or SNS topic).',
    enforcementLevel: 'mandatory',
    // Without it another account's resource could make the service use our key or topic on its behalf
    // (the confused deputy): https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html
    validateResource: [
      validateResourceOfType(aws.kms.Key, (key, args, reportViolation) => {
        for (const sid of unconfinedServiceStatements(key.policy)) reportViolation(`key ${args.name}: statement ${sid} admits a service without aws:SourceAccount or aws:SourceArn`);
      }),
      validateResourceOfType(aws.sns.TopicPolicy, (topic, args, reportViolation) => {
        for (const sid of unconfinedServiceStatements(topic.policy)) reportViolation(`topic policy ${args.name}: statement ${sid} admits a service without aws:SourceAccount or aws:SourceArn`);
      }),
    ],
  },
  {
    name: 'iam-least-privilege',
    description: 'IAM policies name their actions and, on data services, their resources: no `*` action, no `*` resource on S3, RDS, Secrets Manager, KMS, logs.',
    enforcementLevel: 'mandatory',
    validateResource: [
      validateResourceOfType(aws.iam.RolePolicy, (policy, _, reportViolation) => {
        for (const statement of statementsOf(policy.policy)) for (const problem of iamStatementProblems(statement)) reportViolation(problem);
      }),
      validateResourceOfType(aws.iam.Policy, (policy, _, reportViolation) => {
        for (const statement of statementsOf(policy.policy)) for (const problem of iamStatementProblems(statement)) reportViolation(problem);
      }),
      validateResourceOfType(aws.iam.RolePolicyAttachment, (attachment, _, reportViolation) => {
        if (/(AdministratorAccess|PowerUserAccess|FullAccess)$/.test(String(attachment.policyArn))) {
          reportViolation(`managed policy ${String(attachment.policyArn)} grants far more than one task needs`);
        }
      }),
    ],
  },
  {
    name: 'log-retention-and-encryption',
    description: 'Every log group has a retention period and is encrypted with a customer-managed key.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.cloudwatch.LogGroup, (group, _, reportViolation) => {
      if (!group.retentionInDays) reportViolation(`log group ${String(group.name)} keeps logs forever: set retentionInDays`);
      if (!group.kmsKeyId) reportViolation(`log group ${String(group.name)} is not encrypted with a customer-managed key`);
    }),
  },
  {
    name: 'kms-key-rotation',
    description: 'Customer-managed KMS keys rotate automatically.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.kms.Key, (key, _, reportViolation) => {
      if (key.enableKeyRotation !== true) reportViolation('key rotation is off: set enableKeyRotation');
    }),
  },
  {
    name: 'secrets-encrypted-with-cmk',
    description: 'Secrets Manager secrets are encrypted with a customer-managed key.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.secretsmanager.Secret, (secret, _, reportViolation) => {
      if (!secret.kmsKeyId) reportViolation(`secret ${String(secret.name)} uses the AWS-managed key`);
    }),
  },
  {
    name: 'rds-encrypted-private-protected',
    description: 'Database instances are encrypted with a customer-managed key, never publicly accessible, use IAM auth; in production they have deletion protection, a final snapshot and backups.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.rds.Instance, (db, args, reportViolation) => {
      const id = String(db.identifier ?? args.name);
      const replica = Boolean(db.replicateSourceDb);
      if (db.publiclyAccessible === true) reportViolation(`${id} is publicly accessible`);
      if (!replica && (db.storageEncrypted !== true || !db.kmsKeyId)) reportViolation(`${id} storage is not encrypted with a customer-managed key`);
      if (db.performanceInsightsEnabled === true && !db.performanceInsightsKmsKeyId) reportViolation(`${id} Performance Insights data is not encrypted with a customer-managed key`);
      if (db.iamDatabaseAuthenticationEnabled !== true) reportViolation(`${id} has IAM database authentication off`);
      if (!isProductionUrn(args.urn)) return;
      if (db.deletionProtection !== true) reportViolation(`${id} has no deletion protection in production`);
      if (replica) return;
      if (db.skipFinalSnapshot !== false) reportViolation(`${id} would be deleted without a final snapshot`);
      if ((db.backupRetentionPeriod ?? 0) < PRODUCTION_BACKUP_DAYS) reportViolation(`${id} keeps ${db.backupRetentionPeriod ?? 0} days of backups; production keeps ${PRODUCTION_BACKUP_DAYS}`);
      if (db.multiAz !== true && HIGH_AVAILABILITY_STACKS.includes(stackOfUrn(args.urn))) reportViolation(`${id} is single-AZ in production`);
    }),
  },
  {
    name: 'no-public-tasks',
    description: 'ECS tasks (services and scheduled jobs) never get a public IP.',
    enforcementLevel: 'mandatory',
    validateResource: [
      validateResourceOfType(aws.ecs.Service, (service, _, reportViolation) => {
        if (service.networkConfiguration?.assignPublicIp !== false) reportViolation(`service ${String(service.name)} tasks may get a public IP: set assignPublicIp false`);
      }),
      validateResourceOfType(aws.scheduler.Schedule, (schedule, _, reportViolation) => {
        const network = schedule.target.ecsParameters?.networkConfiguration;
        if (schedule.target.ecsParameters && network?.assignPublicIp !== false) reportViolation(`schedule ${String(schedule.name)} tasks may get a public IP`);
      }),
    ],
  },
  {
    name: 'hardened-containers',
    description: 'Containers run as a non-root user on a read-only root file system, unprivileged, with secrets injected from Secrets Manager rather than plain environment values.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.ecs.TaskDefinition, (task, _, reportViolation) => {
      const containers = JSON.parse(String(task.containerDefinitions)) as {
        name: string;
        user?: string;
        readonlyRootFilesystem?: boolean;
        privileged?: boolean;
        environment?: { name: string; value: string }[];
      }[];
      for (const container of containers) {
        const where = `${String(task.family)}/${container.name}`;
        if (!container.user || /^(0|root)(:|$)/.test(container.user)) reportViolation(`${where} runs as root`);
        if (container.readonlyRootFilesystem !== true) reportViolation(`${where} has a writable root file system`);
        if (container.privileged === true) reportViolation(`${where} is privileged`);
        for (const variable of container.environment ?? []) {
          if (/(PASSWORD|SECRET|TOKEN|JWT_KEYS|PRIVATE_KEY)/i.test(variable.name)) reportViolation(`${where} has ${variable.name} in plain environment: inject it from Secrets Manager`);
        }
      }
    }),
  },
  {
    name: 'alb-hardened',
    description: 'Load balancers drop invalid headers and log access; production load balancers have deletion protection; HTTPS listeners allow TLS 1.2+ only; in production plain HTTP only redirects.',
    enforcementLevel: 'mandatory',
    validateResource: [
      validateResourceOfType(aws.lb.LoadBalancer, (alb, args, reportViolation) => {
        if (alb.dropInvalidHeaderFields !== true) reportViolation(`${String(alb.name)} forwards invalid headers`);
        if (alb.accessLogs?.enabled !== true) reportViolation(`${String(alb.name)} does not log access`);
        if (isProductionUrn(args.urn) && alb.enableDeletionProtection !== true) reportViolation(`${String(alb.name)} has no deletion protection in production`);
      }),
      validateResourceOfType(aws.lb.Listener, (listener, args, reportViolation) => {
        if (listener.protocol === 'HTTPS' && !TLS12_POLICIES.includes(String(listener.sslPolicy))) {
          reportViolation(`HTTPS listener uses ${String(listener.sslPolicy)}, which allows TLS below 1.2`);
        }
        const servesPlainHttp = listener.protocol === 'HTTP' && (listener.defaultActions ?? []).some((action) => action.type !== 'redirect');
        if (servesPlainHttp && isProductionUrn(args.urn)) reportViolation('production serves traffic over plain HTTP: redirect it to HTTPS');
      }),
    ],
  },
  {
    name: 'cache-encrypted',
    description: 'Valkey/Redis encrypts in transit and at rest and requires an AUTH token.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.elasticache.ReplicationGroup, (group, _, reportViolation) => {
      if (group.transitEncryptionEnabled !== true) reportViolation(`${String(group.replicationGroupId)} has no TLS`);
      if (group.atRestEncryptionEnabled !== true) reportViolation(`${String(group.replicationGroupId)} is not encrypted at rest`);
      if (!group.authToken) reportViolation(`${String(group.replicationGroupId)} needs no AUTH token`);
    }),
  },
  {
    name: 'rds-engine-tracks-major',
    description: 'A database that takes automatic minor upgrades names only its major engine version: a pinned minor makes the next update ask RDS for a downgrade, which it refuses.',
    enforcementLevel: 'mandatory',
    // RDS answers InvalidParameterCombination "Cannot upgrade postgres from 17.7 to 17.6" once it has
    // applied a minor upgrade the config does not name (https://github.com/hashicorp/terraform-provider-aws/issues/39579).
    validateResource: validateResourceOfType(aws.rds.Instance, (db, args, reportViolation) => {
      if (db.replicateSourceDb || db.autoMinorVersionUpgrade === false) return;
      const version = String(db.engineVersion ?? '');
      if (version.includes('.')) {
        reportViolation(`${String(db.identifier ?? args.name)} pins engine version ${version} while RDS upgrades minors itself: give the major (${version.split('.')[0]}) only`);
      }
    }),
  },
  {
    name: 'waf-body-limit-matches-api',
    description: `The web ACL lets through every body the API accepts (${BODY_LIMIT_BYTES} bytes) and blocks larger ones: the Core rule set's 8 KB SizeRestrictions_BODY only counts, and a rule blocks a Content-Length above the API's limit.`,
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.wafv2.WebAcl, (acl, _, reportViolation) => {
      const rules = (acl.rules ?? []) as unknown as WafRule[];
      for (const rule of rules) {
        const group = rule.statement?.managedRuleGroupStatement;
        if (group?.name !== 'AWSManagedRulesCommonRuleSet') continue;
        const counted = (group.ruleActionOverrides ?? []).some((override) => override.name === CORE_RULE_SET_BODY_SIZE_RULE && override.actionToUse?.count !== undefined);
        if (!counted) reportViolation(`${String(acl.name)}: ${CORE_RULE_SET_BODY_SIZE_RULE} blocks bodies over 8 KB, the API accepts ${BODY_LIMIT_BYTES} bytes: override it to count`);
      }
      const expected = decimalAbove(BODY_LIMIT_BYTES);
      const blocksAboveLimit = rules.some((rule) => {
        const regex = rule.statement?.regexMatchStatement;
        return rule.action?.block !== undefined && regex?.fieldToMatch?.singleHeader?.name?.toLowerCase() === 'content-length' && regex.regexString === expected;
      });
      if (!blocksAboveLimit) reportViolation(`${String(acl.name)} has no rule blocking a Content-Length above the API's ${BODY_LIMIT_BYTES} bytes`);
    }),
  },
  {
    name: 'ecs-task-revisions-kept',
    description: 'Replaced task definition revisions stay ACTIVE (skipDestroy), so `npm run ops -- rollback` can move the service back to one.',
    enforcementLevel: 'mandatory',
    // ECS cannot point a service at an INACTIVE (deregistered) revision:
    // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html
    validateResource: validateResourceOfType(aws.ecs.TaskDefinition, (task, _, reportViolation) => {
      if (task.skipDestroy !== true) reportViolation(`${String(task.family)}: a replaced revision would be deregistered and rollback could not return to it: set skipDestroy`);
    }),
  },
  {
    name: 'ecr-scanned-immutable',
    description: 'Image repositories scan on push and refuse tag overwrites.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.ecr.Repository, (repository, _, reportViolation) => {
      if (repository.imageScanningConfiguration?.scanOnPush !== true) reportViolation(`${String(repository.name)} does not scan on push`);
      if (repository.imageTagMutability !== 'IMMUTABLE') reportViolation(`${String(repository.name)} lets a tag be overwritten`);
    }),
  },
  {
    name: 'public-function-urls-only',
    description:
      'A Lambda permission for everyone (principal *) only opens a function URL: InvokeFunctionUrl with auth NONE, or InvokeFunction limited to calls through the URL (both are needed since October 2025, https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html); never the Lambda Invoke API.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.lambda.Permission, (permission, _, reportViolation) => {
      if (permission.principal !== '*') return;
      const viaUrl =
        (permission.action === 'lambda:InvokeFunctionUrl' && permission.functionUrlAuthType === 'NONE') ||
        (permission.action === 'lambda:InvokeFunction' && permission.invokedViaFunctionUrl === true);
      if (!viaUrl) reportViolation(`${String(permission.function)} lets anyone call ${String(permission.action)} outside its function URL`);
    }),
  },
  {
    name: 'event-patterns-within-quota',
    description: `EventBridge rule patterns stay within the default ${EVENT_PATTERN_MAX_CHARS}-character quota (more needs a quota increase; the escalation rule lists every alarm by name): https://www.pulumi.com/registry/packages/aws/api-docs/cloudwatch/eventrule/`,
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.cloudwatch.EventRule, (rule, _, reportViolation) => {
      const length = typeof rule.eventPattern === 'string' ? rule.eventPattern.length : 0;
      if (length > EVENT_PATTERN_MAX_CHARS) reportViolation(`rule ${String(rule.name)} has a ${length}-character event pattern; EventBridge allows ${EVENT_PATTERN_MAX_CHARS} by default`);
    }),
  },
  {
    name: 'alarm-window-within-a-day',
    description: `A metric alarm's period times its evaluation periods is at most ${ALARM_EVALUATION_MAX_SECONDS} s, or PutMetricAlarm refuses it: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html (EvaluationPeriods)`,
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.cloudwatch.MetricAlarm, (alarm, _, reportViolation) => {
      const periods = [alarm.period, ...(alarm.metricQueries ?? []).map((query) => query.metric?.period)].filter((value): value is number => typeof value === 'number');
      const window = Math.max(0, ...periods) * (alarm.evaluationPeriods ?? 1);
      if (window > ALARM_EVALUATION_MAX_SECONDS) reportViolation(`alarm ${String(alarm.name)} evaluates ${window} s; CloudWatch allows ${ALARM_EVALUATION_MAX_SECONDS}`);
    }),
  },
  {
    name: 'notifications-encrypted',
    description: 'SNS topics (alarms, chat, paging e-mail) and DynamoDB tables are encrypted with a customer-managed key.',
    enforcementLevel: 'mandatory',
    validateResource: [
      validateResourceOfType(aws.sns.Topic, (topic, _, reportViolation) => {
        if (!topic.kmsMasterKeyId) reportViolation(`topic ${String(topic.name)} is not encrypted with a customer-managed key`);
      }),
      validateResourceOfType(aws.dynamodb.Table, (table, _, reportViolation) => {
        if (table.serverSideEncryption?.enabled !== true || !table.serverSideEncryption.kmsKeyArn) {
          reportViolation(`table ${String(table.name)} is not encrypted with a customer-managed key`);
        }
      }),
    ],
  },
];

/** Resources of a type in the stack. */
type ResourceClass = Parameters<PolicyResource['isType']>[0];
const ofType = (resources: PolicyResource[], resourceClass: ResourceClass) => resources.filter((resource) => resource.isType(resourceClass));

/** True when `resource`'s `property` points at `target` (by dependency, or by id/name when the engine gives values). */
function refersTo(resource: PolicyResource, property: string, target: PolicyResource, targetValues: unknown[]): boolean {
  if ((resource.propertyDependencies[property] ?? []).some((dependency) => dependency.urn === target.urn)) return true;
  const value = resource.props[property];
  return value !== undefined && targetValues.includes(value);
}

const bucketKeys = (bucket: PolicyResource) => [bucket.props['id'], bucket.props['bucket']].filter((value) => value !== undefined);

function bucketSettings(resources: PolicyResource[], bucket: PolicyResource, resourceClass: ResourceClass): PolicyResource[] {
  return ofType(resources, resourceClass).filter((setting) => refersTo(setting, 'bucket', bucket, bucketKeys(bucket)));
}

const isPhi = (bucket: PolicyResource) => ((bucket.props['tags'] ?? {}) as Record<string, string>)['DataClassification'] === DATA_CLASSIFICATION.phi;

/** The customer-managed key a bucket's default encryption names, if any. */
function bucketKeyOf(resources: PolicyResource[], bucket: PolicyResource): string | undefined {
  const rules = bucketSettings(resources, bucket, aws.s3.BucketServerSideEncryptionConfiguration).flatMap(
    (setting) => (setting.props['rules'] ?? []) as { applyServerSideEncryptionByDefault?: { sseAlgorithm?: string; kmsMasterKeyId?: string } }[],
  );
  return rules.map((rule) => rule.applyServerSideEncryptionByDefault?.kmsMasterKeyId).find((key) => key !== undefined);
}

const keyValues = (key: PolicyResource) => [key.props['arn'], key.props['keyId'], key.props['id']].filter((value) => value !== undefined);

/** The AWS-owned bucket ECR serves image layers from (any region, any partition). */
const ECR_LAYER_OBJECTS = /^arn:aws[a-z-]*:s3:::prod-[a-z0-9-]+-starport-layer-bucket\/\*$/;

export const stackPolicies: StackValidationPolicy[] = [
  {
    name: 's3-endpoint-stack-buckets-only',
    description: "S3 gateway endpoints have a policy that reaches only the stack's own buckets (and ECR's layer bucket), so nothing in the VPC can copy data to another bucket through them.",
    enforcementLevel: 'mandatory',
    // ECR's layer bucket: https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html
    validateStack: ({ resources }, reportViolation) => {
      const bucketArns = ofType(resources, aws.s3.Bucket).map((bucket) => String(bucket.props['arn']));
      const allowed = (resource: string) => bucketArns.some((arn) => resource === arn || resource === `${arn}/*`) || ECR_LAYER_OBJECTS.test(resource);
      for (const endpoint of ofType(resources, aws.ec2.VpcEndpoint)) {
        if (!/\.s3$/.test(String(endpoint.props['serviceName'])) || endpoint.props['vpcEndpointType'] !== 'Gateway') continue;
        const granted = statementsOf(endpoint.props['policy']).filter((statement) => statement.Effect === 'Allow');
        if (granted.length === 0) {
          reportViolation(`S3 endpoint ${endpoint.name} has no policy: it reaches every bucket of every account`, endpoint.urn);
          continue;
        }
        for (const resource of granted.flatMap((statement) => list(statement.Resource))) {
          if (!allowed(resource)) reportViolation(`S3 endpoint ${endpoint.name} reaches ${resource}, which is not one of the stack's buckets`, endpoint.urn);
        }
      }
    },
  },
  {
    name: 'kms-keys-outlive-retained-data',
    description: 'In production, every KMS key that encrypts data kept after `pulumi destroy` (PHI buckets, a database that leaves a final snapshot, backup vaults) is protected and kept too.',
    enforcementLevel: 'mandatory',
    // A destroyed key is scheduled for deletion; once deleted, what it encrypted cannot be decrypted:
    // https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html
    validateStack: ({ resources }, reportViolation) => {
      const keptData: { what: string; key: unknown }[] = [];
      for (const bucket of ofType(resources, aws.s3.Bucket)) {
        if (isProductionUrn(bucket.urn) && isPhi(bucket)) keptData.push({ what: `PHI bucket ${bucket.name}`, key: bucketKeyOf(resources, bucket) });
      }
      for (const db of ofType(resources, aws.rds.Instance)) {
        if (isProductionUrn(db.urn) && db.props['skipFinalSnapshot'] === false) keptData.push({ what: `the final snapshot of ${db.name}`, key: db.props['kmsKeyId'] });
      }
      // A locked vault outlives any `pulumi destroy` by its retention; its key must too.
      for (const vault of ofType(resources, aws.backup.Vault)) {
        if (isProductionUrn(vault.urn)) keptData.push({ what: `backup vault ${vault.name}`, key: vault.props['kmsKeyArn'] });
      }
      for (const key of ofType(resources, aws.kms.Key)) {
        const protects = keptData.filter((data) => keyValues(key).includes(data.key)).map((data) => data.what);
        if (protects.length > 0 && key.opts.protect !== true) {
          reportViolation(`key ${key.name} encrypts ${protects.join(', ')}, which outlive the stack: protect and retain the key`, key.urn);
        }
      }
    },
  },
  {
    name: 's3-phi-writes-use-the-bucket-key',
    description: "PHI bucket policies refuse any write that does not name SSE-KMS with the bucket's own customer-managed key (an explicit AES256, or aws:kms without the key id, would bypass it).",
    enforcementLevel: 'mandatory',
    // An `x-amz-server-side-encryption` header overrides the bucket default, and `aws:kms` without a
    // key id means the AWS-managed aws/s3 key; the condition keys are those of
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html (key id as the key ARN).
    validateStack: ({ resources }, reportViolation) => {
      for (const bucket of ofType(resources, aws.s3.Bucket)) {
        if (!isPhi(bucket)) continue;
        const key = bucketKeyOf(resources, bucket);
        const denies = bucketSettings(resources, bucket, aws.s3.BucketPolicy)
          .flatMap((policy) => statementsOf(policy.props['policy']) as (Statement & { Condition?: Record<string, Record<string, unknown>> })[])
          .filter((statement) => statement.Effect === 'Deny' && list(statement.Action).includes('s3:PutObject'));
        const deniesUnless = (conditionKey: string, value: unknown) =>
          denies.some((statement) => {
            const expected = statement.Condition?.['StringNotEquals']?.[conditionKey];
            return expected !== undefined && list(expected as string | string[]).length === 1 && list(expected as string | string[])[0] === value;
          });
        if (!deniesUnless('s3:x-amz-server-side-encryption', 'aws:kms')) reportViolation(`PHI bucket ${bucket.name} accepts writes not encrypted with SSE-KMS`, bucket.urn);
        if (key === undefined || !deniesUnless('s3:x-amz-server-side-encryption-aws-kms-key-id', key)) {
          reportViolation(`PHI bucket ${bucket.name} accepts writes encrypted with a key other than its own`, bucket.urn);
        }
      }
    },
  },
  {
    name: 's3-encrypted',
    description: 'Every bucket has default encryption; buckets tagged DataClassification=phi use SSE-KMS with a customer-managed key.',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation: ReportViolation) => {
      for (const bucket of ofType(resources, aws.s3.Bucket)) {
        const rules = bucketSettings(resources, bucket, aws.s3.BucketServerSideEncryptionConfiguration).flatMap(
          (setting) => (setting.props['rules'] ?? []) as { applyServerSideEncryptionByDefault?: { sseAlgorithm?: string; kmsMasterKeyId?: string } }[],
        );
        const defaults = rules.map((rule) => rule.applyServerSideEncryptionByDefault).filter((value) => value !== undefined);
        const tags = (bucket.props['tags'] ?? {}) as Record<string, string>;
        if (defaults.length === 0) {
          reportViolation(`bucket ${bucket.name} has no default encryption`, bucket.urn);
        } else if (tags['DataClassification'] === DATA_CLASSIFICATION.phi && !defaults.some((rule) => rule.sseAlgorithm === 'aws:kms' && rule.kmsMasterKeyId)) {
          reportViolation(`bucket ${bucket.name} holds PHI but is not encrypted with a customer-managed KMS key`, bucket.urn);
        }
        if (!tags['DataClassification']) reportViolation(`bucket ${bucket.name} has no DataClassification tag saying what it holds`, bucket.urn);
      }
    },
  },
  {
    name: 's3-no-public-access',
    description: 'Every bucket blocks public ACLs and policies on all four public-access-block settings.',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation) => {
      const settings = ['blockPublicAcls', 'blockPublicPolicy', 'ignorePublicAcls', 'restrictPublicBuckets'];
      for (const bucket of ofType(resources, aws.s3.Bucket)) {
        const blocks = bucketSettings(resources, bucket, aws.s3.BucketPublicAccessBlock);
        if (!blocks.some((block) => settings.every((setting) => block.props[setting] === true))) {
          reportViolation(`bucket ${bucket.name} does not block public access on all four settings`, bucket.urn);
        }
      }
    },
  },
  {
    name: 's3-tls-only',
    description: 'Every bucket policy denies requests made without TLS.',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation) => {
      for (const bucket of ofType(resources, aws.s3.Bucket)) {
        const denies = bucketSettings(resources, bucket, aws.s3.BucketPolicy)
          .flatMap((policy) => statementsOf(policy.props['policy']) as (Statement & { Condition?: { Bool?: Record<string, string> } })[])
          .some((statement) => statement.Effect === 'Deny' && statement.Condition?.Bool?.['aws:SecureTransport'] === 'false');
        if (!denies) reportViolation(`bucket ${bucket.name} accepts requests over plain HTTP`, bucket.urn);
      }
    },
  },
  {
    name: 's3-phi-versioned',
    description: 'PHI buckets keep object versions (recovery from overwrite or deletion).',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation) => {
      for (const bucket of ofType(resources, aws.s3.Bucket)) {
        if (((bucket.props['tags'] ?? {}) as Record<string, string>)['DataClassification'] !== DATA_CLASSIFICATION.phi) continue;
        const versioned = bucketSettings(resources, bucket, aws.s3.BucketVersioning).some(
          (setting) => (setting.props['versioningConfiguration'] as { status?: string } | undefined)?.status === 'Enabled',
        );
        if (!versioned) reportViolation(`PHI bucket ${bucket.name} is not versioned`, bucket.urn);
      }
    },
  },
  {
    name: 'backup-vaults-locked',
    description: 'Every AWS Backup vault has a Vault Lock with a minimum retention; in production the lock is COMPLIANCE (a cool-off in days after which nobody, root included, can delete a recovery point early or lift the lock).',
    enforcementLevel: 'mandatory',
    // Without ChangeableForDays the lock is governance mode and can be removed again
    // (https://docs.aws.amazon.com/aws-backup/latest/devguide/vault-lock.html).
    validateStack: ({ resources }, reportViolation) => {
      for (const vault of ofType(resources, aws.backup.Vault)) {
        const locks = ofType(resources, aws.backup.VaultLockConfiguration).filter((lock) => refersTo(lock, 'backupVaultName', vault, [vault.props['name'], vault.props['id']]));
        const lock = locks.find((candidate) => Number(candidate.props['minRetentionDays'] ?? 0) >= 1);
        if (!lock) {
          reportViolation(`backup vault ${vault.name} has no Vault Lock with a minimum retention: anyone allowed backup:DeleteRecoveryPoint can empty it`, vault.urn);
        } else if (isProductionUrn(vault.urn)) {
          if (lock.props['changeableForDays'] === undefined) reportViolation(`backup vault ${vault.name} is locked in governance mode in production: set changeableForDays (COMPLIANCE)`, vault.urn);
          if (Number(lock.props['minRetentionDays']) < PRODUCTION_BACKUP_DAYS) reportViolation(`backup vault ${vault.name} keeps recovery points ${String(lock.props['minRetentionDays'])} days; production keeps ${PRODUCTION_BACKUP_DAYS}`, vault.urn);
        }
      }
    },
  },
  {
    name: 'backups-copied-out-of-region',
    description: 'In production, the database is selected by an AWS Backup plan whose rule copies each recovery point to a vault in another region, kept as long as production keeps backups.',
    enforcementLevel: 'mandatory',
    // A resource without a `region` is in the provider's (the stack's) region: Pulumi AWS v7 takes one per resource.
    validateStack: ({ resources }, reportViolation) => {
      const regionOf = (resource: PolicyResource) => (typeof resource.props['region'] === 'string' ? resource.props['region'] : '(stack region)');
      const vaults = ofType(resources, aws.backup.Vault);
      const copiesAway = (plan: PolicyResource) =>
        ((plan.props['rules'] ?? []) as { copyActions?: { destinationVaultArn?: string; lifecycle?: { deleteAfter?: number } }[] }[]).some((rule) =>
          (rule.copyActions ?? []).some((copy) => {
            const destination = vaults.find((vault) => vault.props['arn'] === copy.destinationVaultArn);
            const keptDays = copy.lifecycle?.deleteAfter;
            return destination !== undefined && regionOf(destination) !== regionOf(plan) && (keptDays === undefined || keptDays >= PRODUCTION_BACKUP_DAYS);
          }),
        );
      const plansAway = ofType(resources, aws.backup.Plan).filter(copiesAway);
      const selected = ofType(resources, aws.backup.Selection)
        .filter((selection) => plansAway.some((plan) => refersTo(selection, 'planId', plan, [plan.props['id']])))
        .flatMap((selection) => (selection.props['resources'] ?? []) as string[]);
      for (const db of ofType(resources, aws.rds.Instance)) {
        if (!isProductionUrn(db.urn) || db.props['replicateSourceDb']) continue;
        if (!selected.includes(String(db.props['arn']))) {
          reportViolation(`database ${db.name} has no backup copied to another region: losing ${regionOf(db)} loses every copy of it`, db.urn);
        }
      }
    },
  },
  {
    name: 'tasks-in-private-subnets',
    description: 'ECS services and scheduled tasks run only in subnets with no route to an internet gateway.',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation) => {
      const gatewayIds = ofType(resources, aws.ec2.InternetGateway).map((gateway) => gateway.props['id']);
      const publicTables = ofType(resources, aws.ec2.RouteTable).filter((table) =>
        ((table.props['routes'] ?? []) as { gatewayId?: string }[]).some((route) => route.gatewayId !== undefined && (gatewayIds.includes(route.gatewayId) || route.gatewayId.startsWith('igw-'))),
      );
      const publicSubnetIds = new Set<unknown>();
      for (const association of ofType(resources, aws.ec2.RouteTableAssociation)) {
        if (publicTables.some((table) => table.props['id'] === association.props['routeTableId'])) publicSubnetIds.add(association.props['subnetId']);
      }
      for (const subnet of ofType(resources, aws.ec2.Subnet)) if (subnet.props['mapPublicIpOnLaunch'] === true) publicSubnetIds.add(subnet.props['id']);

      const check = (resource: PolicyResource, subnets: unknown) => {
        for (const subnet of (subnets ?? []) as unknown[]) {
          if (publicSubnetIds.has(subnet)) reportViolation(`${resource.name} runs tasks in public subnet ${String(subnet)}`, resource.urn);
        }
      };
      for (const service of ofType(resources, aws.ecs.Service)) check(service, (service.props['networkConfiguration'] as { subnets?: unknown } | undefined)?.subnets);
      for (const schedule of ofType(resources, aws.scheduler.Schedule)) {
        const target = schedule.props['target'] as { ecsParameters?: { networkConfiguration?: { subnets?: unknown } } } | undefined;
        check(schedule, target?.ecsParameters?.networkConfiguration?.subnets);
      }
    },
  },
  {
    name: 'alb-behind-waf',
    description: 'Every internet-facing load balancer is associated with a WAF web ACL.',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation) => {
      const associations = ofType(resources, aws.wafv2.WebAclAssociation);
      for (const alb of ofType(resources, aws.lb.LoadBalancer)) {
        if (alb.props['internal'] === true) continue;
        if (!associations.some((association) => refersTo(association, 'resourceArn', alb, [alb.props['arn']]))) {
          reportViolation(`load balancer ${alb.name} is not behind a WAF web ACL`, alb.urn);
        }
      }
    },
  },
  {
    name: 'vpc-flow-logs',
    description: 'Every VPC records flow logs.',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation) => {
      const flowLogs = ofType(resources, aws.ec2.FlowLog);
      for (const vpc of ofType(resources, aws.ec2.Vpc)) {
        if (!flowLogs.some((flowLog) => refersTo(flowLog, 'vpcId', vpc, [vpc.props['id']]))) reportViolation(`VPC ${vpc.name} has no flow logs`, vpc.urn);
      }
    },
  },
];

/** PostgreSQL's default port, which FSBP RDS.23 wants the instances off. */
export const POSTGRES_DEFAULT_PORT = 5432;
/** SecretsManager.4's default `maxDaysSinceRotation`. */
export const SECRET_ROTATION_MAX_DAYS = 90;

interface AclEntry {
  action?: string;
  protocol?: string;
  fromPort?: number;
  toPort?: number;
  cidrBlock?: string;
  ipv6CidrBlock?: string;
}

/** Whether an inbound ACL entry lets the internet reach SSH or RDP (what AWS Config's nacl-no-unrestricted-ssh-rdp flags). */
export function opensAdminPort(entry: AclEntry): boolean {
  if (entry.action !== 'allow') return false;
  if (entry.cidrBlock !== '0.0.0.0/0' && entry.ipv6CidrBlock !== '::/0') return false;
  const protocol = String(entry.protocol);
  if (protocol === '-1' || protocol === 'all') return true;
  if (!['tcp', 'udp', '6', '17'].includes(protocol)) return false;
  return ADMIN_PORTS.some((port) => (entry.fromPort ?? 0) <= port && port <= (entry.toPort ?? 65535));
}

/**
 * Security Hub's AWS Foundational Security Best Practices controls that this program's resources
 * decide (https://docs.aws.amazon.com/securityhub/latest/userguide/fsbp-standard.html); docs/infra.md
 * lists each with its status. Named `fsbp-<control>` so a finding maps to its policy.
 */
export const fsbpPolicies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  {
    name: 'fsbp-ec2-21-nacl-admin-ports',
    description: 'EC2.21: every VPC manages its default network ACL, and no ACL lets the internet (0.0.0.0/0, ::/0) reach port 22 or 3389.',
    enforcementLevel: 'mandatory',
    // https://docs.aws.amazon.com/config/latest/developerguide/nacl-no-unrestricted-ssh-rdp.html
    validateStack: ({ resources }, reportViolation) => {
      const acls = [...ofType(resources, aws.ec2.DefaultNetworkAcl), ...ofType(resources, aws.ec2.NetworkAcl)];
      for (const vpc of ofType(resources, aws.ec2.Vpc)) {
        if (!ofType(resources, aws.ec2.DefaultNetworkAcl).some((acl) => refersTo(acl, 'defaultNetworkAclId', vpc, [vpc.props['defaultNetworkAclId']]))) {
          reportViolation(`VPC ${vpc.name} leaves its default network ACL as AWS creates it: every port, SSH and RDP included, open to the internet`, vpc.urn);
        }
      }
      for (const acl of acls) {
        for (const entry of (acl.props['ingress'] ?? []) as AclEntry[]) {
          if (opensAdminPort(entry)) reportViolation(`network ACL ${acl.name} lets ${entry.cidrBlock ?? entry.ipv6CidrBlock} reach SSH or RDP (${entry.protocol} ${entry.fromPort}-${entry.toPort})`, acl.urn);
        }
      }
      for (const rule of ofType(resources, aws.ec2.NetworkAclRule)) {
        const entry: AclEntry = { ...(rule.props as AclEntry), action: String(rule.props['ruleAction']) };
        if (rule.props['egress'] !== true && opensAdminPort(entry)) reportViolation(`network ACL rule ${rule.name} lets the internet reach SSH or RDP`, rule.urn);
      }
    },
  },
  {
    name: 'fsbp-rds-20-22-event-subscriptions',
    description: 'RDS.20, RDS.21, RDS.22: enabled event subscriptions for database instance, parameter group and security group changes and failures.',
    enforcementLevel: 'mandatory',
    validateStack: ({ resources }, reportViolation) => {
      if (ofType(resources, aws.rds.Instance).length === 0) return;
      const subscriptions = ofType(resources, aws.rds.EventSubscription).filter((subscription) => subscription.props['enabled'] !== false);
      for (const [sourceType, { control, categories }] of Object.entries(FSBP_RDS_EVENT_SUBSCRIPTIONS)) {
        const covered = subscriptions.some(
          (subscription) => subscription.props['sourceType'] === sourceType && categories.every((category) => ((subscription.props['eventCategories'] ?? []) as string[]).includes(category)),
        );
        if (!covered) reportViolation(`${control}: no enabled RDS event subscription for ${sourceType} events (${categories.join(', ')})`);
      }
    },
  },
  {
    name: 'rds-replica-follows-the-primary',
    description: 'A stack has one primary database, and its read replicas replicate that primary: after a failover the new replica must follow the promoted instance, and nothing may replicate a retired one.',
    enforcementLevel: 'mandatory',
    // RDS refuses to make a standalone instance a replica of anything ("cannot elect new source
    // database for replication", https://github.com/hashicorp/terraform-provider-aws/issues/4419), so
    // a program that names the old primary as a source after a failover fails only at `pulumi up`.
    validateStack: ({ resources }, reportViolation) => {
      const instances = ofType(resources, aws.rds.Instance);
      const primaries = instances.filter((db) => !db.props['replicateSourceDb']);
      if (instances.length > 0 && primaries.length !== 1) {
        reportViolation(`${primaries.length} primary databases (${primaries.map((db) => db.name).join(', ') || 'none'}): a stack has exactly one`);
        return;
      }
      const primary = primaries[0];
      for (const replica of instances.filter((db) => db.props['replicateSourceDb'])) {
        const source = replica.props['replicateSourceDb'];
        if (primary && source !== primary.props['identifier'] && source !== primary.props['arn']) {
          reportViolation(`${replica.name} replicates ${String(source)}, not the primary ${primary.name}`, replica.urn);
        }
      }
    },
  },
  {
    name: 'fsbp-rds-23-non-default-port',
    description: `RDS.23: database instances listen on a port other than the engine default (${POSTGRES_DEFAULT_PORT}).`,
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.rds.Instance, (db, args, reportViolation) => {
      if (db.port === undefined || db.port === POSTGRES_DEFAULT_PORT) reportViolation(`${String(db.identifier ?? args.name)} listens on PostgreSQL's default port ${POSTGRES_DEFAULT_PORT}`);
    }),
  },
  {
    name: 'fsbp-cloudtrail-trail-hardened',
    description: 'CloudTrail.1, .2, .4: a trail the stack creates records every region, is encrypted with a customer-managed key and validates its log files.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.cloudtrail.Trail, (trail, _, reportViolation) => {
      if (trail.isMultiRegionTrail !== true) reportViolation(`${String(trail.name)} records one region only (CloudTrail.1)`);
      if (!trail.kmsKeyId) reportViolation(`${String(trail.name)} is not encrypted with a customer-managed key (CloudTrail.2)`);
      if (trail.enableLogFileValidation !== true) reportViolation(`${String(trail.name)} does not validate its log files (CloudTrail.4)`);
    }),
  },
  {
    name: 'fsbp-stepfunctions-1-logging',
    description: 'StepFunctions.1: every state machine logs its executions to CloudWatch Logs, and its definition and history are encrypted with a customer-managed key.',
    enforcementLevel: 'mandatory',
    // https://docs.aws.amazon.com/securityhub/latest/userguide/stepfunctions-controls.html
    validateResource: validateResourceOfType(aws.sfn.StateMachine, (machine, _, reportViolation) => {
      const logging = machine.loggingConfiguration;
      if (!logging?.logDestination || !logging.level || logging.level === 'OFF') reportViolation(`${String(machine.name)} does not log its executions (StepFunctions.1)`);
      const encryption = machine.encryptionConfiguration;
      if (encryption?.type !== 'CUSTOMER_MANAGED_KMS_KEY' || !encryption.kmsKeyId) reportViolation(`${String(machine.name)} is not encrypted with a customer-managed key`);
    }),
  },
  {
    name: 'fsbp-secretsmanager-1-4-app-secrets-rotated',
    description: 'SecretsManager.1, .4: in a production stack, every secret the program gives its tasks rotates automatically: a rotation function on a schedule of 90 days at most.',
    enforcementLevel: 'mandatory',
    // https://docs.aws.amazon.com/securityhub/latest/userguide/secretsmanager-controls.html
    validateStack: ({ resources }, reportViolation) => {
      const taskDefinitions = ofType(resources, aws.ecs.TaskDefinition);
      const rotations = ofType(resources, aws.secretsmanager.SecretRotation);
      for (const secret of ofType(resources, aws.secretsmanager.Secret)) {
        if (!isProductionUrn(secret.urn)) continue;
        const values = [secret.props['arn'], secret.props['id']].filter((value) => value !== undefined);
        const given = taskDefinitions.some(
          (task) => refersTo(task, 'containerDefinitions', secret, []) || values.some((value) => String(task.props['containerDefinitions'] ?? '').includes(String(value))),
        );
        if (!given) continue;
        const rotation = rotations.find((candidate) => refersTo(candidate, 'secretId', secret, values));
        if (!rotation?.props['rotationLambdaArn']) {
          reportViolation(`secret ${secret.name} is given to tasks but never rotates automatically (SecretsManager.1)`, secret.urn);
          continue;
        }
        const rules = (rotation.props['rotationRules'] ?? {}) as { automaticallyAfterDays?: number; scheduleExpression?: string };
        if (!rules.scheduleExpression && !(typeof rules.automaticallyAfterDays === 'number' && rules.automaticallyAfterDays <= SECRET_ROTATION_MAX_DAYS)) {
          reportViolation(`secret ${secret.name} has no rotation schedule within ${SECRET_ROTATION_MAX_DAYS} days (SecretsManager.4)`, secret.urn);
        }
      }
    },
  },
  {
    name: 'fsbp-elasticache-1-backups',
    description: 'ElastiCache.1: Valkey/Redis replication groups keep automatic backups.',
    enforcementLevel: 'mandatory',
    validateResource: validateResourceOfType(aws.elasticache.ReplicationGroup, (group, _, reportViolation) => {
      if (!((group.snapshotRetentionLimit ?? 0) >= 1)) reportViolation(`${String(group.replicationGroupId)} keeps no automatic backups (snapshotRetentionLimit)`);
    }),
  },
];

export const allPolicies = [...resourcePolicies, ...stackPolicies, ...fsbpPolicies];
