// Storage: the audit bucket (SSE-KMS, Object Lock, lifecycle, writers named), the X-ray bucket
// (PHI: customer-managed key, only the API touches objects, CORS for presigned uploads), the
// access-log bucket, and the keys behind them.
import { strict as assert } from 'node:assert';
import { createStorage, presignUpload } from '../../api/storage/s3.js';
import { parseConfig } from '../../infra/config.js';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { asList, one, ofType, planned, statement, statements, STACKS } from './fixture.js';

const setting = (run: StackRun, type: string, bucket: RecordedResource) => {
  const found = ofType(run, type).filter((candidate) => candidate.inputs['bucket'] === bucket.id);
  assert.equal(found.length, 1, `${bucket.name}: one ${type}`);
  return found[0] as RecordedResource;
};

for (const stack of STACKS) {
  describe(`storage: ${stack} buckets`, () => {
    let run: StackRun;
    const config = parseConfig(loadStackFile(stack).config, stack);
    const bucket = (kind: string) => one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-${kind}`);
    const role = (name: string) => `arn:aws:iam::123456789012:role/dms-${stack}-${name}`;
    before(async () => {
      run = await planned(stack);
    });

    it('names the buckets after the stack, account and region, and exports the PHI ones', () => {
      assert.equal(run.outputs['xrayBucketName'], `dms-${stack}-xray-123456789012-${config.region}`);
      assert.equal(run.outputs['auditBucketName'], `dms-${stack}-audit-123456789012-${config.region}`);
      assert.equal(bucket('xray').inputs['bucket'], run.outputs['xrayBucketName']);
    });

    it('blocks public access on all four settings, disables ACLs and versions every bucket', () => {
      for (const kind of ['xray', 'audit', 'access-logs']) {
        const block = setting(run, 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock', bucket(kind));
        for (const flag of ['blockPublicAcls', 'blockPublicPolicy', 'ignorePublicAcls', 'restrictPublicBuckets']) assert.equal(block.inputs[flag], true, `${kind} ${flag}`);
        assert.equal((setting(run, 'aws:s3/bucketOwnershipControls:BucketOwnershipControls', bucket(kind)).inputs['rule'] as { objectOwnership: string }).objectOwnership, 'BucketOwnerEnforced');
        assert.equal((setting(run, 'aws:s3/bucketVersioning:BucketVersioning', bucket(kind)).inputs['versioningConfiguration'] as { status: string }).status, 'Enabled');
      }
    });

    it('encrypts X-rays and audit exports with the customer-managed S3 key and a bucket key', () => {
      const key = one(run, 'aws:kms/key:Key', `dms-${stack}-s3`);
      for (const kind of ['xray', 'audit']) {
        const rules = setting(run, 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', bucket(kind)).inputs['rules'];
        assert.deepEqual(rules, [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: key.outputs['arn'] }, bucketKeyEnabled: true }]);
      }
      assert.equal(key.inputs['enableKeyRotation'], true);
    });

    it('refuses plain-HTTP requests on every bucket', () => {
      for (const kind of ['xray', 'audit', 'access-logs']) {
        const deny = statement(setting(run, 'aws:s3/bucketPolicy:BucketPolicy', bucket(kind)).inputs['policy'], 'DenyInsecureTransport');
        assert.equal(deny.Effect, 'Deny');
        assert.deepEqual(deny.Condition, { Bool: { 'aws:SecureTransport': 'false' } });
        assert.deepEqual(asList(deny.Resource), [bucket(kind).outputs['arn'], `${String(bucket(kind).outputs['arn'])}/*`]);
      }
    });

    it('audit bucket: Object Lock with the configured mode and retention, Glacier after the hot period, expiry after retention', () => {
      assert.equal(bucket('audit').inputs['objectLockEnabled'], true);
      const lock = setting(run, 'aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration', bucket('audit'));
      assert.deepEqual(lock.inputs['rule'], { defaultRetention: { mode: config.storage.auditObjectLockMode, days: config.storage.auditRetentionDays } });
      const [rule] = setting(run, 'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration', bucket('audit')).inputs['rules'] as Record<string, unknown>[];
      assert.deepEqual(rule?.['transitions'], [{ days: config.storage.auditHotDays, storageClass: 'GLACIER' }]);
      assert.ok(Number((rule?.['expiration'] as { days: number }).days) > config.storage.auditRetentionDays);
    });

    /** Writes must ask for SSE-KMS with the stack's S3 key: AES256, or aws:kms without the key id (aws/s3), are refused. */
    const assertWritesNeedTheBucketKey = (policy: unknown) => {
      const keyArn = one(run, 'aws:kms/key:Key', `dms-${stack}-s3`).outputs['arn'];
      assert.deepEqual(statement(policy, 'DenyWritesWithoutSseKms').Condition, { StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' } });
      assert.deepEqual(statement(policy, 'DenyWritesWithAnotherKey').Condition, { StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': keyArn } });
    };

    it('audit bucket: encryption required and only the API and export task roles may write', () => {
      const policy = setting(run, 'aws:s3/bucketPolicy:BucketPolicy', bucket('audit')).inputs['policy'];
      assertWritesNeedTheBucketKey(policy);
      const writers = statement(policy, 'OnlyExportersWriteAuditRecords');
      assert.equal(writers.Effect, 'Deny');
      assert.ok(asList(writers.Action).includes('s3:PutObject'));
      assert.deepEqual(writers.Condition, { ArnNotEquals: { 'aws:PrincipalArn': [role('api-task'), role('audit-export-task')] } });
    });

    it('X-ray bucket: only the API task role may write or delete objects, and only it and the AWS Backup role read them', () => {
      const policy = setting(run, 'aws:s3/bucketPolicy:BucketPolicy', bucket('xray')).inputs['policy'];
      const onlyApi = statement(policy, 'OnlyTheApiTouchesPhiObjects');
      assert.equal(onlyApi.Effect, 'Deny');
      assert.deepEqual(asList(onlyApi.Action).sort(), ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObject']);
      assert.deepEqual(onlyApi.Condition, { ArnNotEquals: { 'aws:PrincipalArn': role('api-task') } });
      const readers = statement(policy, 'OnlyTheApiAndBackupReadPhiObjects');
      assert.equal(readers.Effect, 'Deny');
      assert.deepEqual(asList(readers.Action).sort(), ['s3:GetObject', 's3:GetObjectVersion']);
      assert.deepEqual(readers.Condition, { ArnNotEquals: { 'aws:PrincipalArn': [role('api-task'), role('backup')] } });
      assert.equal(one(run, 'aws:iam/role:Role', `dms-${stack}-backup`).outputs['arn'], role('backup'), 'the policy names the role AWS Backup really gets');
      assertWritesNeedTheBucketKey(policy);
      const apiRole = one(run, 'aws:iam/role:Role', `dms-${stack}-api-task`);
      assert.equal(apiRole.outputs['arn'], role('api-task'), 'the policy names the role the service really gets');
    });

    it('X-ray bucket: X-ray uploads are create-only (a PUT without If-None-Match is refused), so a verified X-ray cannot be replaced', () => {
      const policy = setting(run, 'aws:s3/bucketPolicy:BucketPolicy', bucket('xray')).inputs['policy'];
      const createOnly = statement(policy, 'XrayUploadsAreCreateOnly');
      assert.equal(createOnly.Effect, 'Deny');
      assert.deepEqual(asList(createOnly.Action), ['s3:PutObject']);
      assert.equal(createOnly.Resource, `${String(bucket('xray').outputs['arn'])}/patients/*/xrays/*`);
      assert.deepEqual(createOnly.Condition, { Null: { 's3:if-none-match': 'true' } });
      const [rule] = setting(run, 'aws:s3/bucketCorsConfiguration:BucketCorsConfiguration', bucket('xray')).inputs['corsRules'] as Record<string, string[]>[];
      assert.ok(rule?.['allowedHeaders']?.includes('if-none-match'), 'a browser may send the header the upload is signed with');
    });

    it('X-ray bucket: CORS lets the configured origins send every header a presigned upload is signed with, and nothing wider', async () => {
      const [rule] = setting(run, 'aws:s3/bucketCorsConfiguration:BucketCorsConfiguration', bucket('xray')).inputs['corsRules'] as Record<string, string[]>[];
      assert.deepEqual(rule?.['allowedOrigins'], config.storage.xrayCorsOrigins);
      assert.ok(!rule?.['allowedOrigins']?.includes('*'));
      assert.deepEqual(rule?.['allowedMethods'], ['PUT', 'GET', 'HEAD'], 'uploads are presigned PUTs; downloads GETs');
      const storage = createStorage({
        s3: { region: 'eu-west-1', forcePathStyle: false, xrayBucket: 'b', kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } },
        presignTtlS: 90,
      });
      const upload = await presignUpload(storage, { key: 'patients/p/visits/v/xrays/x', contentType: 'image/png', sizeBytes: 10 });
      storage.client.destroy();
      // A browser's preflight names the headers a page sets; Content-Length it sets itself, from the body.
      const preflighted = Object.keys(upload.headers).filter((name) => name !== 'content-length');
      const allowed = (name: string) => rule!['allowedHeaders']!.some((pattern) => new RegExp(`^${pattern.replace('*', '.*')}$`, 'i').test(name));
      assert.deepEqual(preflighted.filter((name) => !allowed(name)), []);
      assert.ok(preflighted.includes('x-amz-server-side-encryption-aws-kms-key-id'));
    });

    it('access logs: SSE-S3 (the only encryption ALB log delivery supports), writable by ELB and S3 log delivery only', () => {
      const logs = bucket('access-logs');
      const rules = setting(run, 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', logs).inputs['rules'];
      assert.deepEqual(rules, [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }]);
      const allows = statements(setting(run, 'aws:s3/bucketPolicy:BucketPolicy', logs).inputs['policy']).filter((candidate) => candidate.Effect === 'Allow');
      assert.deepEqual(allows.map((candidate) => candidate.Action), ['s3:PutObject', 's3:PutObject', 's3:PutObject']);
      for (const phi of ['xray', 'audit']) {
        const logging = setting(run, 'aws:s3/bucketLogging:BucketLogging', bucket(phi));
        assert.equal(logging.inputs['targetBucket'], logs.id, `${phi} server access logs`);
      }
    });
  });
}

describe('storage: keys outlive the data they protect', () => {
  it('production keeps and protects the S3 and database keys (PHI buckets and the final snapshot stay after destroy)', async () => {
    const run = await planned('production');
    for (const name of ['dms-production-s3', 'dms-production-db']) {
      const key = one(run, 'aws:kms/key:Key', name);
      assert.equal(key.retainOnDelete, true, `${name} is kept on destroy`);
      assert.equal(key.protect, true, `${name} is protected`);
    }
    // Whatever is kept on destroy and names a key keeps that key too.
    const keyArns = new Map(ofType(run, 'aws:kms/key:Key').map((key) => [key.outputs['arn'], key]));
    for (const resource of run.resources.filter((candidate) => candidate.retainOnDelete)) {
      for (const value of Object.values(resource.inputs).flatMap((input) => JSON.stringify(input ?? null).match(/arn:aws:kms:[^"\\]+/g) ?? [])) {
        assert.equal(keyArns.get(value)?.retainOnDelete, true, `${resource.name} is kept but its key ${value} is not`);
      }
    }
  });

  it('staging keeps nothing after destroy, so its keys are neither kept nor protected', async () => {
    const run = await planned('staging');
    const kept = [...ofType(run, 'aws:kms/key:Key'), ...ofType(run, 'aws:s3/bucket:Bucket'), ...ofType(run, 'aws:rds/instance:Instance')].filter((resource) => resource.retainOnDelete || resource.protect);
    assert.deepEqual(kept.map((resource) => resource.name), []);
  });
});
