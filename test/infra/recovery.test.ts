// Issue 19, surviving the loss of a region: the backup plan and its copy rule, both vaults' locks
// and keys, the replication rules and their keys, the DR footprint's region, and the config rules.
import { strict as assert } from 'node:assert';
import { ConfigError, parseConfig } from '../../infra/config.js';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { checkPolicies } from '../../infra/policy/harness.js';
import { asList, one, ofType, planned, plannedWith, section, statement, STACKS, type StackName } from './fixture.js';

const config = (stack: StackName) => parseConfig(loadStackFile(stack).config, stack);

for (const stack of STACKS) {
  describe(`recovery: ${stack} backs up into a locked vault and copies to the DR region`, () => {
    let run: StackRun;
    const settings = config(stack).recovery;
    const prefix = `dms-${stack}`;
    const key = (name: string) => one(run, 'aws:kms/key:Key', name);
    const vault = (name: string) => one(run, 'aws:backup/vault:Vault', name);
    const lockOf = (name: string) => one(run, 'aws:backup/vaultLockConfiguration:VaultLockConfiguration', name);
    before(async () => {
      run = await planned(stack);
    });

    it('the DR region is another region, and every resource of the DR footprint is created there', () => {
      assert.notEqual(settings.drRegion, config(stack).region);
      const footprint = run.resources.filter((resource) => resource.parent === 'recovery-region' && !resource.type.startsWith('aws:iam/') && resource.type !== 'aws:ecr/replicationConfiguration:ReplicationConfiguration');
      assert.ok(footprint.length >= 20, `${footprint.length} resources`);
      for (const resource of footprint) assert.equal(resource.inputs['region'], settings.drRegion, `${resource.type} ${resource.name}`);
      assert.equal(run.outputs['drRegion'], settings.drRegion);
      assert.match(String(run.outputs['drKmsKeyArn']), new RegExp(`^arn:aws:kms:${settings.drRegion}:`));
    });

    it('one daily rule keeps recovery points the configured days and copies each to the DR vault for as long', () => {
      const plan = one(run, 'aws:backup/plan:Plan', `${prefix}-backup`);
      const rules = plan.inputs['rules'] as { ruleName: string; schedule: string; targetVaultName: string; lifecycle: { deleteAfter: number }; copyActions: { destinationVaultArn: string; lifecycle: { deleteAfter: number } }[] }[];
      assert.equal(rules.length, 1);
      const [rule] = rules;
      assert.equal(rule?.schedule, settings.backupSchedule);
      assert.match(String(rule?.schedule), /^cron\(\d+ \d+ \* \* \? \*\)$/, 'daily');
      assert.equal(rule?.targetVaultName, vault(`${prefix}-backup`).outputs['name']);
      assert.equal(rule?.lifecycle.deleteAfter, settings.backupRetentionDays);
      assert.deepEqual(rule?.copyActions, [{ destinationVaultArn: vault(`${prefix}-backup-dr`).outputs['arn'], lifecycle: { deleteAfter: settings.backupRetentionDays } }]);
      assert.match(String(vault(`${prefix}-backup-dr`).outputs['arn']), new RegExp(`^arn:aws:backup:${settings.drRegion}:`));
      if (stack === 'production') assert.ok(settings.backupRetentionDays >= 35);
    });

    it('the plan selects the primary database and the X-ray bucket, with a role that may read them', () => {
      const selection = one(run, 'aws:backup/selection:Selection', `${prefix}-backup`);
      assert.equal(selection.inputs['planId'], one(run, 'aws:backup/plan:Plan', `${prefix}-backup`).id);
      assert.deepEqual(selection.inputs['resources'], [one(run, 'aws:rds/instance:Instance', `${prefix}-db`).outputs['arn'], one(run, 'aws:s3/bucket:Bucket', `${prefix}-xray`).outputs['arn']]);
      const role = one(run, 'aws:iam/role:Role', `${prefix}-backup`);
      assert.equal(selection.inputs['iamRoleArn'], role.outputs['arn']);
      const attached = ofType(run, 'aws:iam/rolePolicyAttachment:RolePolicyAttachment').filter((attachment) => attachment.inputs['role'] === role.outputs['name']).map((attachment) => String(attachment.inputs['policyArn']).split('/').at(-1)).sort();
      assert.deepEqual(attached, ['AWSBackupServiceRolePolicyForBackup', 'AWSBackupServiceRolePolicyForRestores', 'AWSBackupServiceRolePolicyForS3Backup', 'AWSBackupServiceRolePolicyForS3Restore']);
      const keys = statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `${prefix}-backup`).inputs['policy'], 'UseTheSourceAndVaultKeys');
      for (const name of [`${prefix}-db`, `${prefix}-s3`, `${prefix}-backup`, `${prefix}-dr`]) assert.ok(asList(keys.Resource).includes(String(key(name).outputs['arn'])), name);
    });

    it(`both vaults are locked ${settings.vaultLockMode === 'COMPLIANCE' ? 'in COMPLIANCE mode after the cool-off' : 'in GOVERNANCE mode'}, with the plan's retention as their minimum`, () => {
      for (const name of [`${prefix}-backup`, `${prefix}-backup-dr`]) {
        const lock = lockOf(name);
        assert.equal(lock.inputs['backupVaultName'], vault(name).outputs['name']);
        assert.equal(lock.inputs['minRetentionDays'], settings.backupRetentionDays);
        if (settings.vaultLockMode === 'COMPLIANCE') assert.ok(Number(lock.inputs['changeableForDays']) >= 3, 'AWS Backup enforces a 72-hour cool-off');
        else assert.equal(lock.inputs['changeableForDays'], undefined);
      }
      assert.equal(lockOf(`${prefix}-backup-dr`).inputs['region'], settings.drRegion);
    });

    it('each vault has its own customer-managed key in its own region, kept with the data in production', () => {
      assert.equal(vault(`${prefix}-backup`).inputs['kmsKeyArn'], key(`${prefix}-backup`).outputs['arn']);
      assert.equal(vault(`${prefix}-backup-dr`).inputs['kmsKeyArn'], key(`${prefix}-dr`).outputs['arn']);
      assert.equal(key(`${prefix}-dr`).inputs['region'], settings.drRegion);
      assert.equal(key(`${prefix}-backup`).inputs['region'], undefined, "the stack's region");
      for (const name of [`${prefix}-backup`, `${prefix}-dr`]) {
        assert.equal(key(name).inputs['enableKeyRotation'], true);
        assert.equal(key(name).protect, stack === 'production', `${name} protected`);
        assert.equal(key(name).retainOnDelete, stack === 'production', `${name} retained`);
      }
    });

    describe('replication to the DR region', () => {
      const rule = (kind: string) => {
        const config$ = one(run, 'aws:s3/bucketReplicationConfig:BucketReplicationConfig', `${prefix}-${kind}-to-dr`);
        assert.equal(config$.inputs['bucket'], one(run, 'aws:s3/bucket:Bucket', `${prefix}-${kind}`).id);
        const rules = config$.inputs['rules'] as Record<string, Record<string, unknown>>[];
        assert.equal(rules.length, 1);
        return { config: config$, rule: rules[0]! };
      };

      for (const kind of ['xray', 'audit']) {
        it(`${kind}: every version to the replica, re-encrypted with the DR key, delete markers left behind${settings.replicationTimeControl ? ', within 15 minutes (RTC)' : ''}`, () => {
          const { config: replication, rule: replicated } = rule(kind);
          const replica = one(run, 'aws:s3/bucket:Bucket', `${prefix}-${kind}-replica`);
          assert.equal(replicated['status'], 'Enabled');
          assert.deepEqual(replicated['filter'], {});
          assert.deepEqual(replicated['deleteMarkerReplication'], { status: 'Disabled' });
          assert.deepEqual(replicated['sourceSelectionCriteria'], { sseKmsEncryptedObjects: { status: 'Enabled' } });
          const destination = replicated['destination'] as Record<string, unknown>;
          assert.equal(destination['bucket'], replica.outputs['arn']);
          assert.deepEqual(destination['encryptionConfiguration'], { replicaKmsKeyId: key(`${prefix}-dr`).outputs['arn'] });
          if (settings.replicationTimeControl) {
            assert.deepEqual(destination['replicationTime'], { status: 'Enabled', time: { minutes: 15 } });
            assert.deepEqual(destination['metrics'], { status: 'Enabled', eventThreshold: { minutes: 15 } });
          } else {
            assert.equal(destination['replicationTime'], undefined);
          }
          assert.equal(replication.inputs['role'], one(run, 'aws:iam/role:Role', `${prefix}-replication`).outputs['arn']);
          const versioning = ofType(run, 'aws:s3/bucketVersioning:BucketVersioning').filter((setting) => [`${prefix}-${kind}`, `${prefix}-${kind}-replica`].includes(setting.name));
          for (const setting of versioning) assert.ok(replication.dependencies.includes(setting.urn), `waits for versioning of ${setting.name}`);
          assert.equal(replica.inputs['region'], settings.drRegion);
          const encryption = one(run, 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration', `${prefix}-${kind}-replica`);
          assert.deepEqual(encryption.inputs['rules'], [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: key(`${prefix}-dr`).outputs['arn'] }, bucketKeyEnabled: true }]);
        });
      }

      it('audit: the replica has Object Lock, and the role reads each version\'s retention so the replica keeps it', () => {
        const replica = one(run, 'aws:s3/bucket:Bucket', `${prefix}-audit-replica`);
        assert.equal(replica.inputs['objectLockEnabled'], true);
        const lock = one(run, 'aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration', `${prefix}-audit-replica`);
        const storage = config(stack).storage;
        assert.deepEqual(lock.inputs['rule'], { defaultRetention: { mode: storage.auditObjectLockMode, days: storage.auditRetentionDays } });
        const reads = statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `${prefix}-replication`).inputs['policy'], 'ReadSourceVersions');
        for (const action of ['s3:GetObjectVersionForReplication', 's3:GetObjectRetention', 's3:GetObjectLegalHold']) assert.ok(asList(reads.Action).includes(action), action);
      });

      it('the replication role decrypts only with the source key through S3 here, and encrypts only with the DR key through S3 there', () => {
        const policy = one(run, 'aws:iam/rolePolicy:RolePolicy', `${prefix}-replication`).inputs['policy'];
        const decrypt = statement(policy, 'DecryptSourceObjects');
        assert.equal(decrypt.Resource, key(`${prefix}-s3`).outputs['arn']);
        assert.deepEqual(decrypt.Condition?.['StringEquals'], { 'kms:ViaService': `s3.${config(stack).region}.amazonaws.com` });
        const encrypt = statement(policy, 'EncryptReplicas');
        assert.equal(encrypt.Resource, key(`${prefix}-dr`).outputs['arn']);
        assert.deepEqual(encrypt.Condition?.['StringEquals'], { 'kms:ViaService': `s3.${settings.drRegion}.amazonaws.com` });
        const writes = statement(policy, 'WriteReplicas');
        assert.ok(!asList(writes.Action).includes('s3:ReplicateDelete'), 'deletions are never replicated');
      });
    });

    it('the API image is replicated to the DR region, where the drill\'s verify task may pull it', () => {
      const replication = one(run, 'aws:ecr/replicationConfiguration:ReplicationConfiguration', `${prefix}-images-to-dr`);
      const rules = (replication.inputs['replicationConfiguration'] as { rules: { destinations: { region: string }[]; repositoryFilters: { filter: string }[] }[] }).rules;
      assert.deepEqual(rules.map((candidate) => candidate.destinations.map((destination) => destination.region)), [[settings.drRegion]]);
      assert.equal(rules[0]?.repositoryFilters[0]?.filter, `${prefix}-api`);
      const pull = statement(one(run, 'aws:iam/rolePolicy:RolePolicy', `${prefix}-dr-verify-execution`).inputs['policy'], 'PullTheReplicatedImage');
      assert.equal(pull.Resource, `arn:aws:ecr:${settings.drRegion}:123456789012:repository/${prefix}-api`);
    });
  });
}

describe('recovery: the policy pack refuses a production stack without a vault lock or a DR copy', () => {
  const violations = async (change: (run: StackRun) => void) => {
    const run = structuredClone(await planned('production'));
    change(run);
    return checkPolicies(run.resources);
  };
  const remove = (run: StackRun, resource: RecordedResource) => {
    run.resources = run.resources.filter((candidate) => candidate !== resource);
  };
  const set = (resource: RecordedResource, key: string, value: unknown) => {
    resource.inputs[key] = value;
    resource.outputs[key] = value;
  };

  it('a vault without its lock', async () => {
    const found = await violations((run) => remove(run, one(run, 'aws:backup/vaultLockConfiguration:VaultLockConfiguration', 'dms-production-backup-dr')));
    assert.deepEqual(found.filter((violation) => violation.policy === 'backup-vaults-locked').map((violation) => violation.resource), ['aws:backup/vault:Vault dms-production-backup-dr']);
  });

  it('a production vault locked in governance mode, or for less than 35 days', async () => {
    const found = await violations((run) => {
      const lock = one(run, 'aws:backup/vaultLockConfiguration:VaultLockConfiguration', 'dms-production-backup');
      delete lock.outputs['changeableForDays'];
      set(lock, 'minRetentionDays', 7);
    });
    assert.deepEqual(found.filter((violation) => violation.policy === 'backup-vaults-locked').map((violation) => violation.message), [
      'backup vault dms-production-backup is locked in governance mode in production: set changeableForDays (COMPLIANCE)',
      'backup vault dms-production-backup keeps recovery points 7 days; production keeps 35',
    ]);
  });

  it('a plan without the copy rule, or copying to a vault in the same region', async () => {
    const withoutCopy = await violations((run) => {
      const plan = one(run, 'aws:backup/plan:Plan', 'dms-production-backup');
      set(plan, 'rules', (plan.outputs['rules'] as Record<string, unknown>[]).map((rule) => ({ ...rule, copyActions: [] })));
    });
    const sameRegion = await violations((run) => delete one(run, 'aws:backup/vault:Vault', 'dms-production-backup-dr').outputs['region']);
    for (const found of [withoutCopy, sameRegion]) {
      assert.deepEqual(found.filter((violation) => violation.policy === 'backups-copied-out-of-region').map((violation) => violation.resource), ['aws:rds/instance:Instance dms-production-db']);
    }
  });

  it('a DR vault whose key is not kept with it', async () => {
    const found = await violations((run) => {
      one(run, 'aws:kms/key:Key', 'dms-production-backup').protect = false;
    });
    assert.ok(found.some((violation) => violation.policy === 'kms-keys-outlive-retained-data' && /backup vault dms-production-backup\b/.test(violation.message)));
  });

  it('staging (GOVERNANCE, 7 days) passes: the production rules are production\'s', async () => {
    const found = await checkPolicies((await planned('staging')).resources);
    assert.deepEqual(found, []);
  });
});

describe('recovery: config refuses a DR region that would not survive, and weak production settings', () => {
  const rejects = (stack: StackName, key: string, change: (recovery: Record<string, unknown>) => void) => {
    const raw = structuredClone(loadStackFile(stack).config);
    change(section(raw, 'recovery'));
    assert.throws(() => parseConfig(raw, stack), (error: unknown) => error instanceof ConfigError && error.key === `dms:recovery.${key}`);
  };

  it('the DR region is never the stack region', () => rejects('staging', 'drRegion', (recovery) => (recovery['drRegion'] = 'us-east-2')));
  it('production keeps 35 days', () => rejects('production', 'backupRetentionDays', (recovery) => (recovery['backupRetentionDays'] = 34)));
  it('production locks in COMPLIANCE mode', () =>
    rejects('production', 'vaultLockMode', (recovery) => {
      recovery['vaultLockMode'] = 'GOVERNANCE';
      delete recovery['vaultLockChangeableForDays'];
    }));
  it('a COMPLIANCE cool-off is 3 days at least (AWS Backup\'s 72 hours)', () => rejects('production', 'vaultLockChangeableForDays', (recovery) => (recovery['vaultLockChangeableForDays'] = 2)));
  it('production replicates with Replication Time Control', () => rejects('production', 'replicationTimeControl', (recovery) => (recovery['replicationTimeControl'] = false)));
  it('the schedule is a cron expression', () => rejects('staging', 'backupSchedule', (recovery) => (recovery['backupSchedule'] = 'rate(1 day)')));

  it('a plan follows the config: 90 days of retention reach the rule, the copy and both locks', async () => {
    const run = await plannedWith('staging', (raw) => (section(raw, 'recovery')['backupRetentionDays'] = 90));
    const rule = (one(run, 'aws:backup/plan:Plan', 'dms-staging-backup').inputs['rules'] as { lifecycle: { deleteAfter: number }; copyActions: { lifecycle: { deleteAfter: number } }[] }[])[0];
    assert.equal(rule?.lifecycle.deleteAfter, 90);
    assert.equal(rule?.copyActions[0]?.lifecycle.deleteAfter, 90);
    for (const lock of ofType(run, 'aws:backup/vaultLockConfiguration:VaultLockConfiguration')) assert.equal(lock.inputs['minRetentionDays'], 90);
  });
});
