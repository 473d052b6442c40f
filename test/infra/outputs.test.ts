// Stack outputs: what a drill, a runbook or an ops command uses without the console. Each one
// exists for both stacks and points at the resource it names.
import { strict as assert } from 'node:assert';
import type { StackRun } from '../../infra/plan/run.js';
import { one, ofType, planned, STACKS } from './fixture.js';

/** The brief's list (issue 5 plus the ops commands' additions). */
const REQUIRED_OUTPUTS = [
  'apiUrl', 'albDnsName', 'albArnSuffix', 'clusterName', 'serviceName', 'taskDefinitionFamily', 'logGroupName',
  'dbInstanceIdentifier', 'dbReplicaIdentifier', 'dbSubnetGroupName', 'dbSecurityGroupId', 'dbParameterGroupName',
  'dbKmsKeyArn', 'dbInstanceClass', 'dbEngineVersion', 'xrayBucketName', 'auditBucketName', 'accessLogBucketName', 'wafWebAclArn',
  'wafIpSetIds', 'privateSubnetIds', 'region', 'jwtKeysSecretArn', 'migrationTaskDefinitionArn',
  'drillVerifyTaskDefinitionArn', 'serviceSecurityGroupId', 'minTaskCount', 'maxTaskCount', 'budgetName',
  'forensicsBucketName', 's3KmsKeyArn', 'wafLogGroupName', 'operatorRoleArn',
];

for (const stack of STACKS) {
  describe(`outputs: ${stack} exports what the runbooks and ops commands read`, () => {
    let run: StackRun;
    before(async () => {
      run = await planned(stack);
    });

    it('has every output of the brief, none empty', () => {
      for (const name of REQUIRED_OUTPUTS) {
        const value = run.outputs[name];
        assert.ok(value !== undefined && value !== '' && value !== null, `${name} missing`);
      }
    });

    it('points each output at the resource it names', () => {
      const service = one(run, 'aws:ecs/service:Service', `dms-${stack}-api`);
      const apiTask = one(run, 'aws:ecs/taskDefinition:TaskDefinition', `dms-${stack}-api`);
      assert.equal(run.outputs['taskDefinitionFamily'], apiTask.inputs['family']);
      assert.equal(run.outputs['serviceName'], service.outputs['name']);
      const logGroups = ofType(run, 'aws:cloudwatch/logGroup:LogGroup').map((group) => group.inputs['name']);
      assert.ok(logGroups.includes(run.outputs['logGroupName']));
      assert.equal(run.outputs['dbSubnetGroupName'], one(run, 'aws:rds/subnetGroup:SubnetGroup', `dms-${stack}-db`).outputs['name']);
      assert.equal(run.outputs['wafWebAclArn'], one(run, 'aws:wafv2/webAcl:WebAcl', `dms-${stack}-waf`).outputs['arn']);
      assert.equal(run.outputs['accessLogBucketName'], one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-access-logs`).outputs['bucket']);
      assert.equal(run.outputs['forensicsBucketName'], one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-forensics`).outputs['bucket']);
      assert.equal(run.outputs['s3KmsKeyArn'], one(run, 'aws:kms/key:Key', `dms-${stack}-s3`).outputs['arn']);
      assert.equal(run.outputs['wafLogGroupName'], one(run, 'aws:cloudwatch/logGroup:LogGroup', `aws-waf-logs-dms-${stack}`).inputs['name']);
      assert.equal(run.outputs['operatorRoleArn'], one(run, 'aws:iam/role:Role', `dms-${stack}-operator`).outputs['arn']);
      const privateSubnets = ofType(run, 'aws:ec2/subnet:Subnet').filter((subnet) => subnet.name.includes('-private-')).map((subnet) => subnet.id);
      assert.deepEqual(run.outputs['privateSubnetIds'], privateSubnets);
      assert.equal(run.outputs['region'], 'us-east-2');
    });

    it('holds no secret values', () => {
      assert.ok(!Object.values(run.outputs).includes('[secret]'));
      assert.doesNotMatch(JSON.stringify(run.outputs), /rediss:\/\/:|"secret"/);
    });
  });
}
