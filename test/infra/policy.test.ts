// The policy pack: both stacks pass it, and each rule fires on the broken setting it exists for
// (fed by editing a real plan, the shapes the engine would show it).
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { REPO_ROOT } from '../../infra/plan/stack-file.js';
import { checkPolicies, type Violation } from '../../infra/policy/harness.js';
import { allPolicies, iamStatementProblems, opensAdminPort } from '../../infra/policy/policies.js';
import { one, ofType, planned, STACKS, type StackName } from './fixture.js';

/** A copy of the stack's plan, broken by `change`, and the policies' verdict on it. */
async function violationsAfter(stack: StackName, change: (run: StackRun) => void): Promise<Violation[]> {
  const run = structuredClone(await planned(stack));
  change(run);
  return checkPolicies(run.resources);
}

function firing(violations: Violation[], policy: string): Violation[] {
  return violations.filter((violation) => violation.policy === policy);
}

/** Sets an input and the matching output (resource policies read inputs, stack policies outputs). */
function set(resource: RecordedResource, key: string, value: unknown): void {
  resource.inputs[key] = value;
  resource.outputs[key] = value;
}

function remove(run: StackRun, resource: RecordedResource): void {
  run.resources = run.resources.filter((candidate) => candidate !== resource);
}

for (const stack of STACKS) {
  describe(`policy: ${stack} as planned passes every policy`, () => {
    it('has no violations', async () => {
      assert.deepEqual(await checkPolicies((await planned(stack)).resources), []);
    });
  });
}

describe('policy: each rule fires on the setting it guards', () => {
  it('a bucket without default encryption', async () => {
    const violations = await violationsAfter('staging', (run) => {
      const bucket = one(run, 'aws:s3/bucket:Bucket', 'dms-staging-xray');
      const encryption = ofType(run, 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration').find((setting) =>
        setting.propertyDependencies['bucket']?.includes(bucket.urn),
      );
      assert.ok(encryption);
      remove(run, encryption);
    });
    assert.deepEqual(firing(violations, 's3-encrypted').map((violation) => [violation.resource, violation.message]), [
      ['aws:s3/bucket:Bucket dms-staging-xray', 'bucket dms-staging-xray has no default encryption'],
    ]);
  });

  it('a PHI bucket encrypted with S3-managed keys instead of a customer-managed key', async () => {
    const violations = await violationsAfter('production', (run) => {
      const setting = one(run, 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', 'dms-production-audit');
      set(setting, 'rules', [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }]);
    });
    assert.match(firing(violations, 's3-encrypted')[0]?.message ?? '', /dms-production-audit holds PHI but is not encrypted with a customer-managed KMS key/);
  });

  it('a bucket with one public-access block off', async () => {
    const violations = await violationsAfter('staging', (run) => set(one(run, 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock', 'dms-staging-audit'), 'restrictPublicBuckets', false));
    assert.deepEqual(firing(violations, 's3-no-public-access').map((violation) => violation.resource), ['aws:s3/bucket:Bucket dms-staging-audit']);
  });

  it('a bucket policy without the TLS-only statement', async () => {
    const violations = await violationsAfter('staging', (run) => {
      const policy = one(run, 'aws:s3/bucketPolicy:BucketPolicy', 'dms-staging-xray');
      const document = JSON.parse(String(policy.outputs['policy'])) as { Statement: { Sid: string }[] };
      document.Statement = document.Statement.filter((statement) => statement.Sid !== 'DenyInsecureTransport');
      set(policy, 'policy', JSON.stringify(document));
    });
    assert.deepEqual(firing(violations, 's3-tls-only').map((violation) => violation.resource), ['aws:s3/bucket:Bucket dms-staging-xray']);
  });

  it('tasks that would get a public IP', async () => {
    const violations = await violationsAfter('production', (run) => {
      const service = one(run, 'aws:ecs/service:Service', 'dms-production-api');
      set(service, 'networkConfiguration', { ...(service.inputs['networkConfiguration'] as object), assignPublicIp: true });
    });
    assert.deepEqual(firing(violations, 'no-public-tasks').map((violation) => violation.resource), ['aws:ecs/service:Service dms-production-api']);
  });

  it('tasks placed in a public subnet', async () => {
    const violations = await violationsAfter('production', (run) => {
      const publicSubnet = one(run, 'aws:ec2/subnet:Subnet', 'dms-production-public-1');
      const schedule = one(run, 'aws:scheduler/schedule:Schedule', 'dms-production-audit-purge');
      const target = structuredClone(schedule.inputs['target']) as { ecsParameters: { networkConfiguration: { subnets: string[] } } };
      target.ecsParameters.networkConfiguration.subnets = [publicSubnet.id];
      set(schedule, 'target', target);
    });
    const fired = firing(violations, 'tasks-in-private-subnets');
    assert.equal(fired.length, 1);
    assert.equal(fired[0]?.resource, 'aws:scheduler/schedule:Schedule dms-production-audit-purge');
  });

  it('a `*` action, or a data action on every resource, in an IAM policy', async () => {
    const violations = await violationsAfter('staging', (run) => {
      const policy = one(run, 'aws:iam/rolePolicy:RolePolicy', 'dms-staging-api-task');
      const document = JSON.parse(String(policy.inputs['policy'])) as { Statement: object[] };
      document.Statement.push({ Sid: 'Everything', Effect: 'Allow', Action: 's3:*', Resource: 'arn:aws:s3:::dms-staging-xray-123456789012-us-east-2/*' });
      document.Statement.push({ Sid: 'AllSecrets', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: '*' });
      set(policy, 'policy', JSON.stringify(document));
    });
    assert.deepEqual(firing(violations, 'iam-least-privilege').map((violation) => violation.message), [
      'statement Everything allows every action (s3:*)',
      'statement AllSecrets allows secretsmanager:GetSecretValue on every resource (*)',
    ]);
  });

  it('lets through what IAM only grants on `*` (ECR login) and non-data services', () => {
    assert.deepEqual(iamStatementProblems({ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' }), []);
    assert.deepEqual(iamStatementProblems({ Effect: 'Allow', Action: ['cloudwatch:GetMetricData'], Resource: '*' }), []);
    assert.equal(iamStatementProblems({ Effect: 'Allow', Action: '*', Resource: '*' }).length, 1);
    assert.deepEqual(iamStatementProblems({ Effect: 'Deny', Action: '*', Resource: '*' }), []);
  });

  it('a production database without deletion protection, but not a staging one', async () => {
    const production = await violationsAfter('production', (run) => set(one(run, 'aws:rds/instance:Instance', 'dms-production-db'), 'deletionProtection', false));
    assert.deepEqual(firing(production, 'rds-encrypted-private-protected').map((violation) => violation.message), ['dms-production-db has no deletion protection in production']);
    const staging = await violationsAfter('staging', (run) => set(one(run, 'aws:rds/instance:Instance', 'dms-staging-db'), 'deletionProtection', false));
    assert.deepEqual(firing(staging, 'rds-encrypted-private-protected'), []);
  });

  it('a production database with short backups, or a public one anywhere', async () => {
    const violations = await violationsAfter('production', (run) => {
      set(one(run, 'aws:rds/instance:Instance', 'dms-production-db'), 'backupRetentionPeriod', 7);
      set(one(run, 'aws:rds/instance:Instance', 'dms-production-db-replica'), 'publiclyAccessible', true);
    });
    assert.deepEqual(firing(violations, 'rds-encrypted-private-protected').map((violation) => violation.message).sort(), [
      'dms-production-db keeps 7 days of backups; production keeps 35',
      'dms-production-db-replica is publicly accessible',
    ]);
  });

  it('a log group without retention', async () => {
    const violations = await violationsAfter('staging', (run) => set(one(run, 'aws:cloudwatch/logGroup:LogGroup', 'dms-staging-api-logs'), 'retentionInDays', undefined));
    assert.deepEqual(firing(violations, 'log-retention-and-encryption').map((violation) => violation.message), ['log group /dms/staging/api keeps logs forever: set retentionInDays']);
  });

  it('an alarm judged over more than a day, which PutMetricAlarm refuses', async () => {
    const violations = await violationsAfter('production', (run) => {
      set(one(run, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'dms-production-acm-certificate-expiring'), 'evaluationPeriods', 2);
      const math = one(run, 'aws:cloudwatch/metricAlarm:MetricAlarm', 'dms-production-rds-storage-ceiling-near');
      set(math, 'evaluationPeriods', 25);
    });
    assert.deepEqual(firing(violations, 'alarm-window-within-a-day').map((violation) => violation.message), [
      'alarm dms-production-acm-certificate-expiring evaluates 172800 s; CloudWatch allows 86400',
      'alarm dms-production-rds-storage-ceiling-near evaluates 90000 s; CloudWatch allows 86400',
    ]);
  });

  it('a KMS key without rotation', async () => {
    const violations = await violationsAfter('production', (run) => set(one(run, 'aws:kms/key:Key', 'dms-production-db'), 'enableKeyRotation', false));
    assert.deepEqual(firing(violations, 'kms-key-rotation').map((violation) => violation.resource), ['aws:kms/key:Key dms-production-db']);
  });

  it('a container running as root on a writable root file system', async () => {
    const violations = await violationsAfter('staging', (run) => {
      const task = one(run, 'aws:ecs/taskDefinition:TaskDefinition', 'dms-staging-api');
      const [container] = JSON.parse(String(task.inputs['containerDefinitions'])) as Record<string, unknown>[];
      set(task, 'containerDefinitions', JSON.stringify([{ ...container, user: 'root', readonlyRootFilesystem: false }]));
    });
    assert.deepEqual(firing(violations, 'hardened-containers').map((violation) => violation.message), [
      'dms-staging-api/api runs as root',
      'dms-staging-api/api has a writable root file system',
    ]);
  });

  it('an HTTPS listener allowing TLS 1.0, and plain HTTP served in production', async () => {
    const violations = await violationsAfter('production', (run) => {
      set(one(run, 'aws:lb/listener:Listener', 'dms-production-https'), 'sslPolicy', 'ELBSecurityPolicy-2016-08');
      set(one(run, 'aws:lb/listener:Listener', 'dms-production-http'), 'defaultActions', [{ type: 'forward', targetGroupArn: 'arn:aws:elasticloadbalancing:tg' }]);
    });
    assert.equal(firing(violations, 'alb-hardened').length, 2);
  });

  it('a database pinned to a minor engine version while RDS applies minor upgrades', async () => {
    const violations = await violationsAfter('production', (run) => set(one(run, 'aws:rds/instance:Instance', 'dms-production-db'), 'engineVersion', '17.6'));
    assert.deepEqual(firing(violations, 'rds-engine-tracks-major').map((violation) => violation.message), [
      'dms-production-db pins engine version 17.6 while RDS upgrades minors itself: give the major (17) only',
    ]);
  });

  it("a web ACL whose Core rule set blocks bodies over 8 KB, without the API's own limit", async () => {
    const violations = await violationsAfter('staging', (run) => {
      const acl = one(run, 'aws:wafv2/webAcl:WebAcl', 'dms-staging-waf');
      const rules = (structuredClone(acl.inputs['rules']) as { name: string; statement: { managedRuleGroupStatement?: Record<string, unknown> } }[])
        .filter((rule) => rule.name !== 'body-over-api-limit')
        .map((rule) => {
          delete rule.statement.managedRuleGroupStatement?.['ruleActionOverrides'];
          return rule;
        });
      set(acl, 'rules', rules);
    });
    assert.deepEqual(firing(violations, 'waf-body-limit-matches-api').map((violation) => violation.message), [
      'dms-staging-waf: SizeRestrictions_BODY blocks bodies over 8 KB, the API accepts 102400 bytes: override it to count',
      "dms-staging-waf has no rule blocking a Content-Length above the API's 102400 bytes",
    ]);
  });

  it('a task definition whose replaced revisions are deregistered (rollback impossible)', async () => {
    const violations = await violationsAfter('production', (run) => set(one(run, 'aws:ecs/taskDefinition:TaskDefinition', 'dms-production-api'), 'skipDestroy', false));
    assert.deepEqual(firing(violations, 'ecs-task-revisions-kept').map((violation) => violation.resource), ['aws:ecs/taskDefinition:TaskDefinition dms-production-api']);
  });

  it('a production key encrypting kept PHI or a final snapshot, left unprotected; staging keeps nothing', async () => {
    const production = await violationsAfter('production', (run) => {
      one(run, 'aws:kms/key:Key', 'dms-production-s3').protect = false;
      one(run, 'aws:kms/key:Key', 'dms-production-db').protect = false;
    });
    assert.deepEqual(firing(production, 'kms-keys-outlive-retained-data').map((violation) => violation.message), [
      'key dms-production-s3 encrypts PHI bucket dms-production-forensics, PHI bucket dms-production-xray, PHI bucket dms-production-audit, which outlive the stack: protect and retain the key',
      'key dms-production-db encrypts the final snapshot of dms-production-db, which outlive the stack: protect and retain the key',
    ]);
    assert.deepEqual(firing(await checkPolicies((await planned('staging')).resources), 'kms-keys-outlive-retained-data'), []);
  });

  it('a PHI bucket policy that lets a write choose AES256 or the AWS-managed key', async () => {
    const violations = await violationsAfter('production', (run) => {
      const policy = one(run, 'aws:s3/bucketPolicy:BucketPolicy', 'dms-production-xray');
      const document = JSON.parse(String(policy.outputs['policy'])) as { Statement: { Sid: string }[] };
      document.Statement = document.Statement.filter((statement) => !statement.Sid.startsWith('DenyWrites'));
      document.Statement.push({
        Sid: 'DenyUploadsWithOtherEncryption',
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:PutObject',
        Resource: 'arn:aws:s3:::dms-production-xray-123456789012-us-east-2/*',
        Condition: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': ['AES256', 'aws:kms'] } },
      } as { Sid: string });
      set(policy, 'policy', JSON.stringify(document));
    });
    assert.deepEqual(firing(violations, 's3-phi-writes-use-the-bucket-key').map((violation) => violation.message), [
      'PHI bucket dms-production-xray accepts writes not encrypted with SSE-KMS',
      'PHI bucket dms-production-xray accepts writes encrypted with a key other than its own',
    ]);
  });

  it('an S3 gateway endpoint without a policy, or reaching a bucket outside the stack', async () => {
    const endpoint = (run: StackRun) => ofType(run, 'aws:ec2/vpcEndpoint:VpcEndpoint').find((candidate) => String(candidate.inputs['serviceName']).endsWith('.s3')) as RecordedResource;
    const open = await violationsAfter('staging', (run) => set(endpoint(run), 'policy', undefined));
    assert.deepEqual(firing(open, 's3-endpoint-stack-buckets-only').map((violation) => violation.message), ['S3 endpoint dms-staging-s3 has no policy: it reaches every bucket of every account']);
    const exfiltration = await violationsAfter('staging', (run) => {
      const document = JSON.parse(String(endpoint(run).outputs['policy'])) as { Statement: object[] };
      document.Statement.push({ Sid: 'Anywhere', Effect: 'Allow', Principal: '*', Action: 's3:PutObject', Resource: 'arn:aws:s3:::attacker-bucket/*' });
      set(endpoint(run), 'policy', JSON.stringify(document));
    });
    assert.deepEqual(firing(exfiltration, 's3-endpoint-stack-buckets-only').map((violation) => violation.message), [
      "S3 endpoint dms-staging-s3 reaches arn:aws:s3:::attacker-bucket/*, which is not one of the stack's buckets",
    ]);
  });

  it('a key or topic policy admitting an AWS service without tying it to this account', async () => {
    const violations = await violationsAfter('production', (run) => {
      for (const [type, name] of [['aws:kms/key:Key', 'dms-production-monitoring'], ['aws:sns/topicPolicy:TopicPolicy', 'dms-production-alarms']] as const) {
        const resource = one(run, type, name);
        const document = JSON.parse(String(resource.inputs['policy'])) as { Statement: { Principal?: unknown; Condition?: unknown }[] };
        for (const granted of document.Statement) if (typeof granted.Principal === 'object' && granted.Principal !== null && 'Service' in granted.Principal) delete granted.Condition;
        set(resource, 'policy', JSON.stringify(document));
      }
    });
    assert.deepEqual(firing(violations, 'service-principals-confined').map((violation) => violation.message), [
      'key dms-production-monitoring: statement AlarmSourcesPublishToEncryptedTopics admits a service without aws:SourceAccount or aws:SourceArn',
      'key dms-production-monitoring: statement LogDeliveryReadsEscalationHistory admits a service without aws:SourceAccount or aws:SourceArn',
      'topic policy dms-production-alarms: statement CloudWatchAlarmsPublish admits a service without aws:SourceAccount or aws:SourceArn',
      'topic policy dms-production-alarms: statement BudgetsPublish admits a service without aws:SourceAccount or aws:SourceArn',
      'topic policy dms-production-alarms: statement RdsEventsPublish admits a service without aws:SourceAccount or aws:SourceArn',
    ]);
  });

  it('FSBP EC2.21: a VPC whose default network ACL is left open, or an ACL entry opening SSH to the internet', async () => {
    const unmanaged = await violationsAfter('staging', (run) => remove(run, one(run, 'aws:ec2/defaultNetworkAcl:DefaultNetworkAcl', 'dms-staging-default-acl')));
    assert.deepEqual(firing(unmanaged, 'fsbp-ec2-21-nacl-admin-ports').map((violation) => violation.resource), ['aws:ec2/vpc:Vpc dms-staging-vpc']);
    const ssh = await violationsAfter('staging', (run) => {
      const acl = one(run, 'aws:ec2/defaultNetworkAcl:DefaultNetworkAcl', 'dms-staging-default-acl');
      set(acl, 'ingress', [...(acl.outputs['ingress'] as object[]), { ruleNo: 50, action: 'allow', protocol: 'tcp', fromPort: 0, toPort: 1023, cidrBlock: '0.0.0.0/0' }]);
    });
    assert.deepEqual(firing(ssh, 'fsbp-ec2-21-nacl-admin-ports').map((violation) => violation.message), [
      'network ACL dms-staging-default-acl lets 0.0.0.0/0 reach SSH or RDP (tcp 0-1023)',
    ]);
    assert.equal(opensAdminPort({ action: 'allow', protocol: '-1', cidrBlock: '0.0.0.0/0' }), true, 'all protocols include SSH');
    assert.equal(opensAdminPort({ action: 'allow', protocol: 'tcp', fromPort: 3389, toPort: 3389, cidrBlock: '10.0.0.0/16' }), false, 'from inside the VPC is fine');
  });

  it('FSBP RDS.20-22: a stack without the change-event subscriptions', async () => {
    const violations = await violationsAfter('production', (run) => {
      for (const subscription of ofType(run, 'aws:rds/eventSubscription:EventSubscription').filter((candidate) => candidate.name.endsWith('-changes'))) remove(run, subscription);
    });
    assert.deepEqual(firing(violations, 'fsbp-rds-20-22-event-subscriptions').map((violation) => violation.message), [
      'RDS.20: no enabled RDS event subscription for db-instance events (maintenance, configuration change, failure)',
      'RDS.21: no enabled RDS event subscription for db-parameter-group events (configuration change)',
      'RDS.22: no enabled RDS event subscription for db-security-group events (configuration change, failure)',
    ]);
  });

  it('FSBP RDS.23 and ElastiCache.1: a database on port 5432, a cache without backups', async () => {
    const violations = await violationsAfter('staging', (run) => {
      set(one(run, 'aws:rds/instance:Instance', 'dms-staging-db'), 'port', 5432);
      set(one(run, 'aws:elasticache/replicationGroup:ReplicationGroup', 'dms-staging-cache'), 'snapshotRetentionLimit', 0);
    });
    assert.deepEqual(firing(violations, 'fsbp-rds-23-non-default-port').map((violation) => violation.message), ["dms-staging-db listens on PostgreSQL's default port 5432"]);
    assert.deepEqual(firing(violations, 'fsbp-elasticache-1-backups').map((violation) => violation.message), ['dms-staging-cache keeps no automatic backups (snapshotRetentionLimit)']);
  });

  it('a replica of anything but the primary, or a second primary (a failover declared half-way)', async () => {
    const violations = await violationsAfter('staging', (run) => {
      set(one(run, 'aws:rds/instance:Instance', 'dms-staging-db-replica'), 'replicateSourceDb', 'dms-staging-db-0');
    });
    assert.deepEqual(firing(violations, 'rds-replica-follows-the-primary').map((violation) => violation.message), [
      'dms-staging-db-replica replicates dms-staging-db-0, not the primary dms-staging-db',
    ]);
    const twoPrimaries = await violationsAfter('staging', (run) => {
      set(one(run, 'aws:rds/instance:Instance', 'dms-staging-db-replica'), 'replicateSourceDb', undefined);
    });
    assert.deepEqual(firing(twoPrimaries, 'rds-replica-follows-the-primary').map((violation) => violation.message), [
      '2 primary databases (dms-staging-db, dms-staging-db-replica): a stack has exactly one',
    ]);
  });

  it('FSBP StepFunctions.1: a state machine that logs nothing, or keeps its history under an AWS-owned key', async () => {
    const violations = await violationsAfter('staging', (run) => {
      const machine = one(run, 'aws:sfn/stateMachine:StateMachine', 'dms-staging-escalation');
      set(machine, 'loggingConfiguration', { level: 'OFF' });
      set(machine, 'encryptionConfiguration', { type: 'AWS_OWNED_KEY' });
    });
    assert.deepEqual(firing(violations, 'fsbp-stepfunctions-1-logging').map((violation) => violation.message), [
      'dms-staging-escalation does not log its executions (StepFunctions.1)',
      'dms-staging-escalation is not encrypted with a customer-managed key',
    ]);
  });

  it('FSBP SecretsManager.1, .4: a production secret given to tasks without rotation, or with no schedule; staging is not held to it', async () => {
    const unrotated = await violationsAfter('production', (run) => remove(run, one(run, 'aws:secretsmanager/secretRotation:SecretRotation', 'dms-production-rotate-db-app-password')));
    assert.deepEqual(firing(unrotated, 'fsbp-secretsmanager-1-4-app-secrets-rotated').map((violation) => violation.message), [
      'secret dms-production-db-app-password is given to tasks but never rotates automatically (SecretsManager.1)',
    ]);
    const unscheduled = await violationsAfter('production', (run) => set(one(run, 'aws:secretsmanager/secretRotation:SecretRotation', 'dms-production-rotate-jwt-keys'), 'rotationRules', { automaticallyAfterDays: 365 }));
    assert.deepEqual(firing(unscheduled, 'fsbp-secretsmanager-1-4-app-secrets-rotated').map((violation) => violation.message), [
      'secret dms-production-jwt-keys has no rotation schedule within 90 days (SecretsManager.4)',
    ]);
    const staging = await violationsAfter('staging', (run) => remove(run, one(run, 'aws:secretsmanager/secretRotation:SecretRotation', 'dms-staging-rotate-db-app-password')));
    assert.deepEqual(firing(staging, 'fsbp-secretsmanager-1-4-app-secrets-rotated'), []);
  });

  it('a load balancer left outside the WAF', async () => {
    const violations = await violationsAfter('staging', (run) => remove(run, ofType(run, 'aws:wafv2/webAclAssociation:WebAclAssociation')[0] as RecordedResource));
    assert.deepEqual(firing(violations, 'alb-behind-waf').map((violation) => violation.resource), ['aws:lb/loadBalancer:LoadBalancer dms-staging-alb']);
  });
});

describe('policy: the same policies form the pack `pulumi preview --policy-pack infra/policy` loads', () => {
  it('has a PulumiPolicy.yaml and an index that builds the PolicyPack from the shared list', () => {
    const directory = join(REPO_ROOT, 'infra', 'policy');
    assert.ok(existsSync(join(directory, 'PulumiPolicy.yaml')));
    const index = readFileSync(join(directory, 'index.ts'), 'utf8');
    assert.match(index, /new PolicyPack\('dms-security', \{ policies: allPolicies/);
    assert.ok(allPolicies.length >= 15);
    assert.equal(new Set(allPolicies.map((policy) => policy.name)).size, allPolicies.length, 'policy names are unique');
  });
});
