// The operator role and the forensics bucket: `npm run ops -- preserve-evidence` may place legal
// holds exactly where it writes, no one can delete or release evidence by a request, and
// `failover` may promote the replica and deploy a revision, and nothing more.
import { strict as assert } from 'node:assert';
import { FORENSICS_PREFIX } from '../../infra/storage-layout.js';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { asList, one, ofType, planned, statement, statements, STACKS, type Statement } from './fixture.js';

/** IAM's wildcard match of a resource pattern (`*` any run of characters, `?` one). */
function matches(pattern: string, resource: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return regex.test(resource);
}

/** Every Allow statement of every identity policy (role policies) in the plan, with the role it belongs to. */
function allowStatements(run: StackRun): { role: string; statement: Statement }[] {
  return ofType(run, 'aws:iam/rolePolicy:RolePolicy').flatMap((policy) =>
    statements(policy.inputs['policy']).filter((candidate) => candidate.Effect === 'Allow').map((candidate) => ({ role: String(policy.inputs['role']), statement: candidate })),
  );
}

for (const stack of STACKS) {
  describe(`operator: ${stack} may place a legal hold where preserve-evidence writes, and nowhere else`, () => {
    let run: StackRun;
    let forensics: RecordedResource;
    let operator: RecordedResource;
    const bucketPolicy = (name: string) => ofType(run, 'aws:s3/bucketPolicy:BucketPolicy').find((policy) => policy.name === name)!.inputs['policy'];
    before(async () => {
      run = await planned(stack);
      forensics = one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-forensics`);
      operator = one(run, 'aws:iam/role:Role', `dms-${stack}-operator`);
    });

    it("allows s3:PutObjectLegalHold (and the write that carries it) on the forensics bucket's incident folders only", () => {
      const holders = allowStatements(run).filter(({ statement: candidate }) => asList(candidate.Action).includes('s3:PutObjectLegalHold'));
      assert.deepEqual(holders.map(({ role }) => role), [operator.id], 'no other role may place a legal hold');
      const grant = holders[0]!.statement;
      assert.deepEqual(asList(grant.Resource), [`${String(forensics.outputs['arn'])}/${FORENSICS_PREFIX}*`]);
      assert.ok(asList(grant.Action).includes('s3:PutObject'));
      const written = `${String(forensics.outputs['arn'])}/${FORENSICS_PREFIX}INC-2025-0042/logs/api/part-00001.ndjson`;
      assert.ok(asList(grant.Resource).some((pattern) => matches(pattern, written)), 'the keys the command writes are covered');
      const audit = one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-audit`);
      assert.ok(!asList(grant.Resource).some((pattern) => matches(pattern, `${String(audit.outputs['arn'])}/audit-logs/x.ndjson`)), 'not the audit bucket');
    });

    it('is the one writer the forensics bucket admits, and the audit bucket still refuses it', () => {
      const writers = statement(bucketPolicy(`dms-${stack}-forensics`), 'OnlyTheOperatorWritesEvidence');
      assert.equal(writers.Effect, 'Deny');
      assert.deepEqual(asList(writers.Action).sort(), ['s3:PutObject', 's3:PutObjectLegalHold', 's3:PutObjectRetention']);
      assert.deepEqual(writers.Condition, { ArnNotEquals: { 'aws:PrincipalArn': operator.outputs['arn'] } });
      const auditWriters = statement(bucketPolicy(`dms-${stack}-audit`), 'OnlyExportersWriteAuditRecords');
      assert.ok(!JSON.stringify(auditWriters.Condition).includes(String(operator.outputs['arn'])));
    });

    it('reads only what preserve-evidence copies: audit exports, ALB logs, the API and WAF log groups', () => {
      const grants = allowStatements(run).filter(({ role }) => role === operator.id).map(({ statement: candidate }) => candidate);
      const reads = grants.filter((candidate) => asList(candidate.Action).includes('s3:GetObject')).flatMap((candidate) => asList(candidate.Resource));
      const arnOf = (kind: string) => String(one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-${kind}`).outputs['arn']);
      assert.deepEqual(reads.sort(), [`${arnOf('access-logs')}/alb/*`, `${arnOf('audit')}/audit-logs/*`, `${arnOf('forensics')}/${FORENSICS_PREFIX}*`].sort());
      assert.ok(!reads.some((resource) => resource.startsWith(arnOf('xray'))), 'never the X-ray bucket');
      const logGroups = grants.filter((candidate) => asList(candidate.Action).includes('logs:FilterLogEvents')).flatMap((candidate) => asList(candidate.Resource));
      const groupArns = [`dms-${stack}-api-logs`, `aws-waf-logs-dms-${stack}`].map((name) => String(one(run, 'aws:cloudwatch/logGroup:LogGroup', name).outputs['arn']));
      assert.deepEqual(logGroups.sort(), groupArns.flatMap((arn) => [arn, `${arn}:*`]).sort());
    });

    it('failover: promotes only the replica, deploys only the API service, passes only its roles to ECS', () => {
      const grants = allowStatements(run).filter(({ role }) => role === operator.id).map(({ statement: candidate }) => candidate);
      const replica = one(run, 'aws:rds/instance:Instance', `dms-${stack}-db-replica`);
      const promote = grants.filter((candidate) => asList(candidate.Action).includes('rds:PromoteReadReplica'));
      assert.deepEqual(promote.flatMap((candidate) => asList(candidate.Resource)), [replica.outputs['arn']]);
      const update = grants.filter((candidate) => asList(candidate.Action).includes('ecs:UpdateService'));
      assert.deepEqual(update.flatMap((candidate) => asList(candidate.Resource)), [one(run, 'aws:ecs/service:Service', `dms-${stack}-api`).id]);
      const pass = grants.filter((candidate) => asList(candidate.Action).includes('iam:PassRole'));
      assert.deepEqual(pass.map((candidate) => candidate.Condition), [{ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } }]);
      assert.deepEqual(pass.flatMap((candidate) => asList(candidate.Resource)).sort(), [
        one(run, 'aws:iam/role:Role', `dms-${stack}-api-task`).outputs['arn'],
        one(run, 'aws:iam/role:Role', `dms-${stack}-task-execution`).outputs['arn'],
      ].sort());
    });
  });

  describe(`forensics bucket: ${stack} evidence is held from its first byte and never deleted`, () => {
    let run: StackRun;
    before(async () => {
      run = await planned(stack);
    });

    it('has Object Lock, the S3 key, versioning, and no lifecycle rule', () => {
      const bucket = one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-forensics`);
      assert.equal(bucket.inputs['objectLockEnabled'], true);
      const of = (type: string) => ofType(run, type).filter((candidate) => candidate.inputs['bucket'] === bucket.id);
      const [encryption] = of('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration');
      assert.equal((encryption!.inputs['rules'] as { applyServerSideEncryptionByDefault: { kmsMasterKeyId: string } }[])[0]?.applyServerSideEncryptionByDefault.kmsMasterKeyId, one(run, 'aws:kms/key:Key', `dms-${stack}-s3`).outputs['arn']);
      assert.equal(of('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration').length, 0, 'nothing expires');
      assert.equal(of('aws:s3/bucketVersioning:BucketVersioning').length, 1);
      assert.equal(of('aws:s3/bucketLogging:BucketLogging').length, 1, 'reads of the evidence are logged');
    });

    it('refuses a write without a legal hold, any request that lifts one, and every delete, whoever asks', () => {
      const policy = ofType(run, 'aws:s3/bucketPolicy:BucketPolicy').find((candidate) => candidate.name === `dms-${stack}-forensics`)!.inputs['policy'];
      const held = statement(policy, 'EveryObjectIsHeld');
      assert.deepEqual([held.Effect, held.Principal, held.Action, held.Condition], ['Deny', '*', 's3:PutObject', { StringNotEquals: { 's3:object-lock-legal-hold': 'ON' } }]);
      const lifted = statement(policy, 'HoldsAreNeverLiftedByARequest');
      assert.deepEqual([lifted.Effect, lifted.Principal, lifted.Action, lifted.Condition], ['Deny', '*', 's3:PutObjectLegalHold', { StringNotEquals: { 's3:object-lock-legal-hold': 'ON' } }]);
      const deletes = statement(policy, 'EvidenceIsNeverDeleted');
      assert.deepEqual([deletes.Effect, deletes.Principal, deletes.Condition], ['Deny', '*', undefined]);
      assert.deepEqual(asList(deletes.Action).sort(), ['s3:BypassGovernanceRetention', 's3:DeleteObject', 's3:DeleteObjectVersion']);
    });
  });
}
