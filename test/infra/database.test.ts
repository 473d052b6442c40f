// Database: encrypted PostgreSQL primary (Multi-AZ in production) and a read replica in another AZ,
// TLS forced by the parameter group, RDS-managed master secret, IAM auth, logs, Performance Insights,
// enhanced monitoring, backups, deletion protection and a final snapshot in production, and the
// `dms-<stack>/db-app-password` secret of the role the API connects as.
import { strict as assert } from 'node:assert';
import { parseConfig } from '../../infra/config.js';
import { maxConnectionsFor } from '../../infra/database.js';
import type { StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { one, ofType, planned, plannedWith, section, STACKS } from './fixture.js';

for (const stack of STACKS) {
  describe(`database: ${stack}`, () => {
    let run: StackRun;
    const config = parseConfig(loadStackFile(stack).config, stack);
    const production = stack === 'production';
    const primary = () => one(run, 'aws:rds/instance:Instance', `dms-${stack}-db`);
    const replica = () => one(run, 'aws:rds/instance:Instance', `dms-${stack}-db-replica`);
    before(async () => {
      run = await planned(stack);
    });

    it('encrypts storage and Performance Insights with the database key, which the drill restores with', () => {
      const key = one(run, 'aws:kms/key:Key', `dms-${stack}-db`);
      assert.equal(primary().inputs['storageEncrypted'], true);
      assert.equal(primary().inputs['kmsKeyId'], key.outputs['arn']);
      assert.equal(primary().inputs['performanceInsightsKmsKeyId'], key.outputs['arn']);
      assert.equal(run.outputs['dbKmsKeyArn'], key.outputs['arn']);
      assert.equal(key.inputs['enableKeyRotation'], true);
    });

    it('is never publicly reachable: isolated subnets, the database security group only', () => {
      for (const instance of [primary(), replica()]) {
        assert.equal(instance.inputs['publiclyAccessible'], false);
        assert.deepEqual(instance.inputs['vpcSecurityGroupIds'], [run.outputs['dbSecurityGroupId']]);
      }
      const subnetGroup = one(run, 'aws:rds/subnetGroup:SubnetGroup', `dms-${stack}-db`);
      const isolated = ofType(run, 'aws:ec2/subnet:Subnet').filter((subnet) => (subnet.inputs['tags'] as Record<string, string>)['Tier'] === 'isolated').map((subnet) => subnet.id);
      assert.deepEqual(subnetGroup.inputs['subnetIds'], isolated);
      assert.equal(primary().inputs['dbSubnetGroupName'], run.outputs['dbSubnetGroupName']);
    });

    it('lets RDS manage the dms_admin password in Secrets Manager, encrypted with the secrets key', () => {
      assert.equal(primary().inputs['username'], 'dms_admin');
      assert.equal(primary().inputs['manageMasterUserPassword'], true);
      assert.equal(primary().inputs['password'], undefined);
      assert.equal(primary().inputs['masterUserSecretKmsKeyId'], one(run, 'aws:kms/key:Key', `dms-${stack}-secrets`).outputs['arn']);
      assert.equal(primary().inputs['iamDatabaseAuthenticationEnabled'], true);
    });

    const parametersOf = (): Record<string, string> => Object.fromEntries(
      (one(run, 'aws:rds/parameterGroup:ParameterGroup', String(run.outputs['dbParameterGroupName'])).inputs['parameters'] as { name: string; value: string }[]).map((p) => [p.name, p.value]),
    );

    it('forces TLS 1.2+ and writes no statement text to the log (the ORM writes PHI values into it)', () => {
      const parameters = parametersOf();
      assert.equal(parameters['rds.force_ssl'], '1');
      assert.equal(parameters['ssl_min_protocol_version'], 'TLSv1.2');
      assert.equal(parameters['log_min_duration_statement'], '-1');
      assert.equal(parameters['log_min_error_statement'], 'panic');
      assert.equal(parameters['log_error_verbosity'], 'terse');
      assert.ok(!['all', 'mod'].includes(parameters['log_statement'] ?? 'none'), `log_statement ${parameters['log_statement']}`);
      assert.equal(parameters['log_parameter_max_length'], '0');
      assert.equal(parameters['max_connections'], String(Math.max(maxConnectionsFor(config.database.instanceClass), maxConnectionsFor(config.database.replicaInstanceClass))));
      assert.equal(primary().inputs['parameterGroupName'], run.outputs['dbParameterGroupName']);
      assert.equal(replica().inputs['parameterGroupName'], run.outputs['dbParameterGroupName']);
    });

    it('lets the migration create pg_trgm and unaccent (patient search, migration 0014): no rds.allowed_extensions list leaves them out', () => {
      // RDS for PostgreSQL creates only the extensions rds.allowed_extensions lists, when it is set:
      // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.FeatureSupport.Extensions.html
      const allowed = parametersOf()['rds.allowed_extensions'];
      if (allowed === undefined || allowed === '*') return;
      const listed = allowed.split(',').map((name) => name.trim());
      assert.ok(listed.includes('pg_trgm') && listed.includes('unaccent'), `rds.allowed_extensions = ${allowed}`);
    });

    it('exports PostgreSQL logs to encrypted log groups with retention, with Performance Insights and enhanced monitoring on', () => {
      for (const instance of [primary(), replica()]) {
        assert.deepEqual(instance.inputs['enabledCloudwatchLogsExports'], ['postgresql', 'upgrade']);
        assert.equal(instance.inputs['performanceInsightsEnabled'], true);
        assert.equal(instance.inputs['monitoringInterval'], config.database.monitoringIntervalSeconds);
        const group = one(run, 'aws:cloudwatch/logGroup:LogGroup', `${String(instance.inputs['identifier'])}-postgresql-logs`);
        assert.equal(group.inputs['name'], `/aws/rds/instance/${String(instance.inputs['identifier'])}/postgresql`);
        assert.ok(group.inputs['kmsKeyId']);
      }
      const monitoringRole = one(run, 'aws:iam/role:Role', `dms-${stack}-rds-monitoring`);
      assert.equal(primary().inputs['monitoringRoleArn'], monitoringRole.outputs['arn']);
    });

    it(`keeps ${production ? 35 : 7} days of backups with tags copied to snapshots`, () => {
      assert.equal(primary().inputs['backupRetentionPeriod'], production ? 35 : 7);
      assert.equal(primary().inputs['copyTagsToSnapshot'], true);
    });

    it(production ? 'is Multi-AZ, refuses deletion and takes a final snapshot' : 'is single-AZ and deletable without a final snapshot', () => {
      assert.equal(primary().inputs['multiAz'], production);
      assert.equal(primary().inputs['deletionProtection'], production);
      assert.equal(primary().inputs['skipFinalSnapshot'], !production);
      assert.equal(primary().inputs['finalSnapshotIdentifier'], production ? `dms-${stack}-db-final` : undefined);
      assert.equal(replica().inputs['deletionProtection'], production);
      // Dropped from the program (the old primary after a failover), a protected instance is forgotten: a delete would fail the update.
      assert.equal(primary().retainOnDelete, production);
      assert.equal(replica().retainOnDelete, production);
    });

    it('runs a read replica of the primary in another AZ', () => {
      assert.equal(replica().inputs['replicateSourceDb'], primary().outputs['identifier']);
      const zones = ofType(run, 'aws:ec2/subnet:Subnet').filter((subnet) => subnet.name.includes('-isolated-')).map((subnet) => subnet.inputs['availabilityZone']);
      assert.equal(replica().inputs['availabilityZone'], zones[zones.length - 1]);
      if (!production) assert.equal(primary().inputs['availabilityZone'], zones[0], 'the single-AZ primary is pinned away from the replica');
      assert.notEqual(replica().inputs['availabilityZone'], primary().inputs['availabilityZone']);
      assert.equal(run.outputs['dbReplicaIdentifier'], `dms-${stack}-db-replica`);
    });

    it('exports the identifiers, class and engine version the DR drill restores with', () => {
      assert.equal(run.outputs['dbInstanceIdentifier'], `dms-${stack}-db`);
      assert.equal(run.outputs['dbInstanceClass'], config.database.instanceClass);
      // The running version (engineVersionActual): config names the major only, RDS picks and upgrades the minor.
      assert.match(String(run.outputs['dbEngineVersion']), new RegExp(`^${config.database.engineVersion}\\.\\d+$`));
    });

    it('keeps the app role password in dms-<stack>/db-app-password, KMS-encrypted, generated once', () => {
      const secret = one(run, 'aws:secretsmanager/secret:Secret', `dms-${stack}-db-app-password`);
      assert.equal(secret.inputs['name'], `dms-${stack}/db-app-password`);
      assert.equal(secret.inputs['kmsKeyId'], one(run, 'aws:kms/key:Key', `dms-${stack}-secrets`).outputs['arn']);
      const version = one(run, 'aws:secretsmanager/secretVersion:SecretVersion', `dms-${stack}-db-app-password`);
      assert.equal(version.inputs['secretString'], '[secret]');
      assert.deepEqual(version.ignoreChanges, ['secretString']);
    });
  });
}

describe('database: max_connections follows the instance memory', () => {
  it('grows with the class and stays within PostgreSQL defaults', () => {
    assert.ok(maxConnectionsFor('db.t4g.micro') < maxConnectionsFor('db.m7g.large'));
    assert.ok(maxConnectionsFor('db.r7g.2xlarge') <= 5000);
    assert.throws(() => maxConnectionsFor('db.unknown.size'));
  });
});

describe('database: after failovers, each promoted instance stays where it is and gets a replica in the other zone', () => {
  it('staging after one and after two failovers: single-AZ primaries keep their zone, replicas alternate, nothing is retained', async () => {
    const instances = (run: StackRun) => ofType(run, 'aws:rds/instance:Instance');
    const none = await planned('staging');
    const zoneOfName = (run: StackRun, name: string) => one(run, 'aws:rds/instance:Instance', name).inputs['availabilityZone'];
    const [first, last] = [zoneOfName(none, 'dms-staging-db'), zoneOfName(none, 'dms-staging-db-replica')];
    for (const [failovers, primary, replica] of [[1, 'dms-staging-db-replica', 'dms-staging-db-2'], [2, 'dms-staging-db-2', 'dms-staging-db-3']] as const) {
      const run = await plannedWith('staging', (config) => {
        section(config, 'database')['failovers'] = failovers;
      });
      assert.deepEqual(instances(run).map((instance) => instance.name).sort(), [primary, replica].sort(), `after ${failovers}`);
      assert.equal(run.outputs['dbInstanceIdentifier'], primary);
      assert.equal(one(run, 'aws:rds/instance:Instance', replica).inputs['replicateSourceDb'], one(run, 'aws:rds/instance:Instance', primary).outputs['identifier']);
      assert.equal(zoneOfName(run, primary), failovers === 1 ? last : first, 'the zone it was created in: a new zone would replace it');
      assert.equal(zoneOfName(run, replica), failovers === 1 ? first : last);
      assert.ok(instances(run).every((instance) => !instance.retainOnDelete), 'staging instances are deletable');
    }
  });
});
