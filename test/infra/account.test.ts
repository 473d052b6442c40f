// dms:account: an optional CloudTrail trail for an account that has none, off by default. When on:
// every region, its own KMS key, log file validation, an Object Lock bucket kept on destroy, and
// CloudTrail admitted only for this trail.
import { strict as assert } from 'node:assert';
import { parseConfig } from '../../infra/config.js';
import type { StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { checkPolicies } from '../../infra/policy/harness.js';
import { one, ofType, planned, plannedWith, statement, STACKS } from './fixture.js';

describe('account trail: off unless dms:account asks for it', () => {
  for (const stack of STACKS) {
    it(`${stack} as committed creates no trail`, async () => {
      assert.equal(parseConfig(loadStackFile(stack).config, stack).account.cloudTrail, false);
      assert.deepEqual(ofType(await planned(stack), 'aws:cloudtrail/trail:Trail'), []);
    });
  }
});

describe('account trail: dms:account.cloudTrail true', () => {
  let run: StackRun;
  before(async () => {
    run = await plannedWith('staging', (config) => {
      config['dms:account'] = { cloudTrail: true, trailRetentionDays: 400 };
    });
  });

  it('records every region into its Object Lock bucket, encrypted with its own key, log files validated', () => {
    const trail = one(run, 'aws:cloudtrail/trail:Trail', 'dms-staging-account-trail');
    const key = one(run, 'aws:kms/key:Key', 'dms-staging-account-trail');
    const bucket = one(run, 'aws:s3/bucket:Bucket', 'dms-staging-account-trail');
    assert.equal(trail.inputs['isMultiRegionTrail'], true);
    assert.equal(trail.inputs['enableLogFileValidation'], true);
    assert.equal(trail.inputs['kmsKeyId'], key.outputs['arn']);
    assert.equal(trail.inputs['s3BucketName'], bucket.outputs['bucket']);
    assert.equal(bucket.inputs['objectLockEnabled'], true);
    const lock = one(run, 'aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration', 'dms-staging-account-trail');
    assert.deepEqual(lock.inputs['rule'], { defaultRetention: { mode: 'COMPLIANCE', days: 400 } });
    assert.equal(run.outputs['accountTrailArn'], trail.outputs['arn']);
  });

  it('keeps the bucket and its key on destroy, protected: the trail is evidence', () => {
    for (const [type, name] of [['aws:s3/bucket:Bucket', 'dms-staging-account-trail'], ['aws:kms/key:Key', 'dms-staging-account-trail']] as const) {
      const resource = one(run, type, name);
      assert.equal(resource.retainOnDelete && resource.protect, true, name);
    }
  });

  it('admits CloudTrail to the key and the bucket for this trail only (aws:SourceArn)', () => {
    const trailArn = 'arn:aws:cloudtrail:us-east-2:123456789012:trail/dms-staging-account-trail';
    const write = statement(one(run, 'aws:s3/bucketPolicy:BucketPolicy', 'dms-staging-account-trail').inputs['policy'], 'CloudTrailWritesLogs');
    assert.deepEqual(write.Condition, { StringEquals: { 's3:x-amz-acl': 'bucket-owner-full-control', 'aws:SourceArn': trailArn } });
    const encrypt = statement(one(run, 'aws:kms/key:Key', 'dms-staging-account-trail').inputs['policy'], 'CloudTrailEncryptsThisTrail');
    assert.equal((encrypt.Condition?.['StringEquals'] as Record<string, string>)['aws:SourceArn'], trailArn);
  });

  it('passes the policy pack, and the trail policy fires on a single-region, unvalidated trail', async () => {
    assert.deepEqual(await checkPolicies(run.resources), []);
    const broken = structuredClone(run);
    const trail = one(broken, 'aws:cloudtrail/trail:Trail', 'dms-staging-account-trail');
    trail.inputs['isMultiRegionTrail'] = false;
    trail.inputs['enableLogFileValidation'] = false;
    const fired = (await checkPolicies(broken.resources)).filter((violation) => violation.policy === 'fsbp-cloudtrail-trail-hardened').map((violation) => violation.message);
    assert.deepEqual(fired, ['dms-staging-account-trail records one region only (CloudTrail.1)', 'dms-staging-account-trail does not validate its log files (CloudTrail.4)']);
  });
});
