import { strict as assert } from 'node:assert';
import { ConfigError, parseConfig } from '../../infra/config.js';
import { estimateCost, loadPrices } from '../../infra/cost/estimate.js';
import { USAGE_DEFAULTS } from '../../infra/cost/usage.js';
import { runPlan } from '../../infra/plan.js';
import type { StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { checkPolicies } from '../../infra/policy/harness.js';
import { ofType, one } from './fixture.js';

/**
 * The budget a single practice can carry: the fixed monthly cost of Pulumi.small.yaml stays under it.
 * $150 until the monthly secret rotation (FSBP SecretsManager.1) needed an ECS endpoint ($7.30) in a
 * stack without NAT, to restart the API with a rotated database password.
 */
const SMALL_FIXED_TARGET_USD = 150;

describe('the small stack (Pulumi.small.yaml): a single practice, production safety, the cheapest choices', function () {
  this.timeout(120_000);
  let run: StackRun;
  before(async () => {
    run = await runPlan('small');
  });

  it(`costs under $${SMALL_FIXED_TARGET_USD} a month fixed, with nothing left unpriced, and passes the policy pack`, async () => {
    const estimate = estimateCost(run, { region: 'us-east-2', prices: loadPrices(), usage: USAGE_DEFAULTS });
    assert.ok(estimate.totals.fixedUsd < SMALL_FIXED_TARGET_USD, `fixed ${estimate.totals.fixedUsd}`);
    assert.deepEqual(estimate.notPriced, []);
    assert.equal(estimate.budget?.belowFixedCost, false);
    assert.deepEqual(await checkPolicies(run.resources), []);
  });

  it('sets no sign-in or write latency objective (too few a day: a couple of slow ones would page), and keeps reads and availability', () => {
    const composites = ofType(run, 'aws:cloudwatch/compositeAlarm:CompositeAlarm').map((alarm) => String(alarm.inputs['alarmName']));
    assert.deepEqual(composites.filter((name) => name.includes('-slo-')).map((name) => name.replace(/^dms-small-slo-|-(fast|slow)-burn$/g, '')).sort(),
      ['availability', 'availability', 'latency-reads', 'latency-reads']);
  });

  it('runs no trace collector: with no route out it could neither pull its image nor reach X-Ray', () => {
    const api = one(run, 'aws:ecs/taskDefinition:TaskDefinition', 'dms-small-api');
    const containers = JSON.parse(String(api.inputs['containerDefinitions'])) as { name: string; environment: { name: string }[] }[];
    assert.deepEqual(containers.map((container) => container.name), ['api']);
    assert.ok(!containers[0]!.environment.some((variable) => variable.name.startsWith('OTEL_')));
  });

  it('has no NAT gateway and no route out of the task subnets: AWS only through the VPC endpoints', () => {
    assert.equal(ofType(run, 'aws:ec2/natGateway:NatGateway').length, 0);
    assert.equal(ofType(run, 'aws:ec2/eip:Eip').length, 0);
    const privateTables = ofType(run, 'aws:ec2/routeTable:RouteTable').filter((table) => table.name.includes('-private-'));
    assert.equal(privateTables.length, 1);
    assert.deepEqual(privateTables[0]?.inputs['routes'], []);
    const interfaces = ofType(run, 'aws:ec2/vpcEndpoint:VpcEndpoint').filter((endpoint) => endpoint.inputs['vpcEndpointType'] === 'Interface');
    assert.deepEqual(interfaces.map((endpoint) => String(endpoint.inputs['serviceName']).split('.').slice(3).join('.')).sort(), ['ecr.api', 'ecr.dkr', 'ecs', 'logs', 'secretsmanager']);
    for (const endpoint of interfaces) assert.equal((endpoint.inputs['subnetIds'] as unknown[]).length, 1, `${endpoint.name} in the one task AZ`);
    assert.deepEqual(run.outputs['privateSubnetIds'], [one(run, 'aws:ec2/subnet:Subnet', 'dms-small-private-0').id]);
  });

  it('keeps the load balancer and the database subnet group in two AZs, as AWS requires', () => {
    assert.equal(ofType(run, 'aws:ec2/subnet:Subnet').filter((subnet) => subnet.name.includes('-public-')).length, 2);
    assert.equal((one(run, 'aws:rds/subnetGroup:SubnetGroup', 'dms-small-db').inputs['subnetIds'] as unknown[]).length, 2);
  });

  it('keeps production safety: deletion protection, 35 days of backups, COMPLIANCE lock, HTTPS, a read replica; no Valkey', () => {
    const config = parseConfig(loadStackFile('small').config, 'small');
    assert.equal(config.isProduction, true, 'it holds real PHI');
    const primary = one(run, 'aws:rds/instance:Instance', 'dms-small-db');
    assert.equal(primary.inputs['deletionProtection'], true);
    assert.equal(primary.inputs['backupRetentionPeriod'], 35);
    assert.equal(primary.inputs['multiAz'], false, 'single-AZ: the availability production keeps is given up');
    assert.equal(ofType(run, 'aws:rds/instance:Instance').filter((db) => db.inputs['replicateSourceDb']).length, 1);
    assert.equal(config.storage.auditObjectLockMode, 'COMPLIANCE');
    assert.ok(config.api.hostedZoneId);
    assert.equal(ofType(run, 'aws:elasticache/replicationGroup:ReplicationGroup').length, 0);
  });

  it('is still refused what production is: a Multi-AZ database and two task AZs are production-only relaxations', () => {
    const production = structuredClone(loadStackFile('production').config);
    (production['dms:database'] as Record<string, unknown>)['multiAz'] = false;
    assert.throws(() => parseConfig(production, 'production'), (error: unknown) => error instanceof ConfigError && error.key === 'dms:database.multiAz');
    const oneAz = structuredClone(loadStackFile('production').config);
    (oneAz['dms:network'] as Record<string, unknown>)['taskAzCount'] = 1;
    assert.throws(() => parseConfig(oneAz, 'production'), (error: unknown) => error instanceof ConfigError && error.key === 'dms:network.taskAzCount');
    const unprotected = structuredClone(loadStackFile('small').config);
    (unprotected['dms:database'] as Record<string, unknown>)['deletionProtection'] = false;
    assert.throws(() => parseConfig(unprotected, 'small'), (error: unknown) => error instanceof ConfigError && error.key === 'dms:database.deletionProtection');
  });
});
