// `npm run plan`: the program run offline under mocks, repeatable in one process, printed for a
// reviewer, and as JSON with secrets masked; fast enough to run on every change.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { planStack, type Plan } from '../../infra/plan.js';
import { REPO_ROOT } from '../../infra/plan/stack-file.js';
import { STACKS } from './fixture.js';

/** Every resource the issue names, per stack: the plan must list them all. */
const NAMED_IN_ISSUE = [
  'aws:ec2/vpc:Vpc', 'aws:ec2/subnet:Subnet', 'aws:ec2/natGateway:NatGateway', 'aws:ec2/flowLog:FlowLog', 'aws:ec2/vpcEndpoint:VpcEndpoint',
  'aws:ecr/repository:Repository', 'awsx:ecr:Image', 'aws:ecs/cluster:Cluster', 'aws:ecs/service:Service', 'aws:ecs/taskDefinition:TaskDefinition',
  'aws:iam/role:Role', 'aws:cloudwatch/logGroup:LogGroup', 'aws:appautoscaling/policy:Policy', 'aws:lambda/invocation:Invocation',
  'aws:scheduler/schedule:Schedule', 'aws:elasticache/replicationGroup:ReplicationGroup', 'aws:lb/loadBalancer:LoadBalancer',
  'aws:lb/listener:Listener', 'aws:lb/targetGroup:TargetGroup', 'aws:rds/instance:Instance', 'aws:rds/parameterGroup:ParameterGroup',
  'aws:rds/subnetGroup:SubnetGroup', 'aws:kms/key:Key', 'aws:secretsmanager/secret:Secret', 'aws:s3/bucket:Bucket',
  'aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration', 'aws:s3/bucketCorsConfiguration:BucketCorsConfiguration',
  'aws:wafv2/webAcl:WebAcl', 'aws:wafv2/ipSet:IpSet', 'aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration',
];

/** The environment of a machine with no AWS access at all. */
function withoutAws(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(AWS_|PULUMI_)/.test(name)));
}

describe('plan: runs the program in-process, as often as needed', () => {
  it('plans both stacks twice in one process with the same resources', async () => {
    const shape = (plan: Plan) => plan.resources.map((resource) => `${resource.type} ${resource.name}`);
    const first = await Promise.all(STACKS.map((stack) => planStack(stack)));
    const second = await Promise.all(STACKS.map((stack) => planStack(stack)));
    for (const [index, stack] of STACKS.entries()) {
      assert.deepEqual(shape(second[index] as Plan), shape(first[index] as Plan), stack);
      assert.deepEqual((second[index] as Plan).outputs, (first[index] as Plan).outputs, stack);
    }
    assert.notDeepEqual(shape(first[0] as Plan), shape(first[1] as Plan), 'the stacks differ');
  });

  for (const stack of STACKS) {
    it(`lists every resource the issue names for ${stack}, grouped under its component`, async () => {
      const plan = await planStack(stack);
      const types = new Set(plan.resources.map((resource) => resource.type));
      for (const type of NAMED_IN_ISSUE) assert.ok(types.has(type), `${stack}: no ${type}`);
      const components = new Set(plan.resources.filter((resource) => !resource.parent).map((resource) => resource.name));
      for (const component of ['network', 'database', 'storage', 'service', 'load-balancer', 'firewall']) assert.ok(components.has(component), component);
      for (const resource of plan.resources.filter((candidate) => candidate.type.startsWith('aws:'))) assert.ok(resource.parent, `${resource.name} belongs to a component`);
    });
  }

  it('masks every secret: the generated keys and passwords never appear', async () => {
    const plan = await planStack('production');
    const masked = plan.resources.filter((resource) => Object.values(resource.inputs).includes('[secret]')).map((resource) => resource.name);
    for (const name of ['dms-production-jwt-keys', 'dms-production-db-app-password', 'dms-production-redis-url', 'dms-production-cache']) assert.ok(masked.includes(name), name);
    const text = JSON.stringify(plan);
    assert.doesNotMatch(text, /"alg":"HS256"|rediss:\/\/:[0-9a-f]/);
  });
});

describe('plan: the program `pulumi up` runs is the one planned', () => {
  it('Pulumi.yaml runs infra/index.ts as an ES module through tsx', () => {
    const project = load(readFileSync(join(REPO_ROOT, 'Pulumi.yaml'), 'utf8')) as { name: string; main: string; runtime: { name: string; options: Record<string, unknown> } };
    assert.equal(project.name, 'dms');
    assert.equal(project.main, 'infra/index.ts');
    assert.equal(project.runtime.name, 'nodejs');
    assert.equal(project.runtime.options['typescript'], false);
    assert.equal(project.runtime.options['nodeargs'], '--import=tsx');
  });

  it('infra/index.ts exports only the program function (Pulumi refuses a default export next to named ones)', async () => {
    const module = (await import('../../infra/index.js')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(module), ['default']);
    assert.equal(typeof module['default'], 'function');
  });
});

describe('plan: the npm script, with no AWS variables', () => {
  for (const stack of STACKS) {
    it(`prints ${stack} for a reviewer in well under 20 s, with no policy violations`, () => {
      const started = Date.now();
      const result = spawnSync('npx', ['tsx', 'infra/plan.ts', '--stack', stack], { cwd: REPO_ROOT, env: withoutAws(), encoding: 'utf8', timeout: 20_000 });
      const elapsed = Date.now() - started;
      assert.equal(result.status, 0, result.stderr);
      assert.ok(elapsed < 20_000, `took ${elapsed} ms`);
      assert.match(result.stdout, new RegExp(`^dms ${stack}: \\d+ resources`));
      assert.match(result.stdout, /policies: no violations/);
      assert.match(result.stdout, /rotation on/);
      assert.match(result.stdout, /public access blocked \(4\/4\)/);
      assert.match(result.stdout, /outputs:\n {2}apiUrl: https:\/\//);
    });
  }

  it('prints JSON in the plan format with --json', () => {
    const result = spawnSync('npx', ['tsx', 'infra/plan.ts', '--stack', 'staging', '--json'], { cwd: REPO_ROOT, env: withoutAws(), encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as Plan;
    assert.ok(plan.resources.length > 100);
    for (const resource of plan.resources) assert.deepEqual(Object.keys(resource).filter((key) => !['type', 'name', 'parent', 'inputs'].includes(key)), []);
    assert.equal(plan.outputs['clusterName'], 'dms-staging');
  });

  it('refuses an unknown stack with a clear message', () => {
    const result = spawnSync('npx', ['tsx', 'infra/plan.ts', '--stack', 'nosuch'], { cwd: REPO_ROOT, env: withoutAws(), encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /no stack file Pulumi\.nosuch\.yaml/);
  });
});
