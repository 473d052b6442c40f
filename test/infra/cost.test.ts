import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { GetProductsCommand, PricingClient } from '@aws-sdk/client-pricing';
import { mockClient } from 'aws-sdk-client-mock';
import { estimateCost, loadPrices, runsPerMonth, type PriceFile } from '../../infra/cost/estimate.js';
import { refreshPrices } from '../../infra/cost/refresh-prices.js';
import { USAGE_DEFAULTS, usageWith, type Usage } from '../../infra/cost/usage.js';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { runPlan } from '../../infra/plan.js';
import { STACKS } from './fixture.js';

/** Round prices, so each line below can be checked by hand. */
const PRICES: PriceFile = {
  takenOn: '2026-01-01',
  currency: 'USD',
  source: 'test',
  regions: {
    'test-region-1': {
      location: 'Test',
      prices: Object.fromEntries(Object.entries({
        'natGateway.hour': 0.1, 'natGateway.gb': 0.05, 'publicIpv4.hour': 0.01,
        'rds.postgres.db.t4g.micro': 0.02, 'rds.gp3.gbMonth': 0.1, 'rds.backup.gbMonth': 0.1,
        'fargate.x86.vcpuHour': 0.04, 'fargate.x86.gbHour': 0.005,
        'waf.webAclMonth': 5, 'waf.ruleMonth': 1, 'waf.millionRequests': 0.5,
      }).map(([id, usd]) => [id, { usd, unit: 'test', query: { serviceCode: 'test', filters: {} } }])),
    },
  },
};

let ids = 0;
function resource(type: string, name: string, inputs: Record<string, unknown>, outputs: Record<string, unknown> = {}): RecordedResource {
  ids += 1;
  return {
    urn: `urn:${name}`, type, name, parent: 'test', inputs, id: `id-${ids}`, outputs: { ...inputs, ...outputs },
    propertyDependencies: {}, dependencies: [], ignoreChanges: [], protect: false, retainOnDelete: false,
  };
}

/** A stack small enough to price by hand. */
function smallStack(budget: string): StackRun {
  return {
    outputs: {},
    resources: [
      resource('aws:ec2/natGateway:NatGateway', 'nat', {}),
      resource('aws:ec2/eip:Eip', 'nat-ip', {}),
      resource('aws:rds/instance:Instance', 'db', { identifier: 'db', instanceClass: 'db.t4g.micro', multiAz: true, allocatedStorage: 20 }),
      resource('aws:rds/instance:Instance', 'db-replica', { instanceClass: 'db.t4g.micro', multiAz: false, replicateSourceDb: 'db' }),
      resource('aws:ecs/taskDefinition:TaskDefinition', 'api', { cpu: '512', memory: '1024', runtimePlatform: { cpuArchitecture: 'X86_64' } }, { arn: 'arn:td/api:1' }),
      resource('aws:ecs/service:Service', 'api', { desiredCount: 2, taskDefinition: 'arn:td/api:1' }),
      resource('aws:wafv2/webAcl:WebAcl', 'waf', { rules: [{}, {}, {}] }),
      resource('aws:budgets/budget:Budget', 'monthly', { limitAmount: budget }),
      resource('aws:iam/role:Role', 'free-role', {}),
      resource('aws:opensearch/domain:Domain', 'search', {}),
    ],
  };
}

const usage: Usage = { ...USAGE_DEFAULTS, natGb: 10, requestsPerMonth: 2_000_000, extraBackupGb: 5 };
const estimateOf = (run: StackRun) => estimateCost(run, { region: 'test-region-1', prices: PRICES, usage });
const near = (actual: number | undefined, expected: number, what: string) => assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);

describe('cost estimate (npm run plan -- --stack <name> --cost)', () => {
  describe('a hand-checked stack, line by line', () => {
    const estimate = estimateOf(smallStack('500'));
    const line = (name: string, type: string) => estimate.lines.find((l) => l.resource === name && l.type === type);

    it('a NAT gateway: 730 h × $0.10 fixed; 10 GB × $0.05 usage', () => {
      near(line('nat', 'aws:ec2/natGateway:NatGateway')?.fixedUsd, 73, 'fixed');
      near(line('nat', 'aws:ec2/natGateway:NatGateway')?.usageUsd, 0.5, 'usage');
      near(line('nat-ip', 'aws:ec2/eip:Eip')?.fixedUsd, 7.3, 'its public IPv4 address');
    });

    it('a Multi-AZ database bills two instances and two copies of its storage; backups beyond the allowance are usage', () => {
      const db = line('db', 'aws:rds/instance:Instance');
      near(db?.fixedUsd, 2 * 730 * 0.02 + 2 * 20 * 0.1, 'primary + standby, 2 × 20 GB');
      near(db?.usageUsd, 5 * 0.1, '5 GB of backups');
      near(line('db-replica', 'aws:rds/instance:Instance')?.fixedUsd, 730 * 0.02 + 20 * 0.1, 'the replica: its source storage, no backup line');
    });

    it('the service: desired tasks × 730 h × (vCPU and GB prices)', () => {
      near(line('api', 'aws:ecs/service:Service')?.fixedUsd, 2 * 730 * (0.5 * 0.04 + 1 * 0.005), 'two half-vCPU 1 GB tasks');
    });

    it('the web ACL: $5 + $1 a rule, and $0.50 a million requests', () => {
      near(line('waf', 'aws:wafv2/webAcl:WebAcl')?.fixedUsd, 8, 'fixed');
      near(line('waf', 'aws:wafv2/webAcl:WebAcl')?.usageUsd, 1, 'usage');
    });

    it('adds the lines up into totals and components, and leaves free types out', () => {
      const fixed = 73 + 7.3 + (2 * 730 * 0.02 + 4) + (730 * 0.02 + 2) + 2 * 730 * 0.025 + 8;
      near(estimate.totals.fixedUsd, fixed, 'fixed total');
      near(estimate.totals.usageUsd, 0.5 + 0.5 + 1, 'usage total');
      near(estimate.byComponent['test']?.fixedUsd, fixed, 'the component');
      assert.equal(estimate.lines.some((l) => l.resource === 'free-role'), false);
    });

    it('reports a type it has no price for as not priced, never as zero', () => {
      assert.deepEqual(estimate.notPriced, [{ resource: 'search', type: 'aws:opensearch/domain:Domain', component: 'test' }]);
      assert.equal(estimate.lines.some((l) => l.resource === 'search'), false);
    });

    it('reports a priced type whose price is missing from the file as not priced', () => {
      const noCache = estimateOf({ outputs: {}, resources: [resource('aws:elasticache/replicationGroup:ReplicationGroup', 'cache', { nodeType: 'cache.t4g.micro', numCacheClusters: 1 })] });
      assert.deepEqual(noCache.notPriced.map((item) => item.resource), ['cache']);
    });
  });

  describe('the budget', () => {
    it('warns when the budget is below the fixed monthly cost (its alarm would fire on day one)', () => {
      assert.deepEqual(estimateOf(smallStack('100')).budget, { limitUsd: 100, belowFixedCost: true });
      assert.deepEqual(estimateOf(smallStack('500')).budget, { limitUsd: 500, belowFixedCost: false });
    });
  });

  describe('assumptions', () => {
    it('reads schedules as runs a month', () => {
      assert.equal(runsPerMonth('rate(1 hour)'), 730);
      assert.equal(runsPerMonth('rate(15 minutes)'), 2920);
      assert.equal(runsPerMonth('cron(30 3 * * ? *)'), 730 / 24);
      assert.equal(runsPerMonth('cron(0 9 ? * MON-FRI *)'), undefined);
    });

    it('takes --assume name=value over the defaults, and refuses unknown names and non-numbers', () => {
      assert.equal(usageWith(['xrayGb=500']).xrayGb, 500);
      assert.throws(() => usageWith(['xrayGB=500']), /unknown assumption/);
      assert.throws(() => usageWith(['xrayGb=-1']), /not a number/);
    });
  });

  describe('the stacks in this repository', function () {
    this.timeout(120_000);
    for (const stack of STACKS) {
      it(`${stack}: every planned resource is priced or known to be free, and the budget covers the fixed cost`, async () => {
        const run = await runPlan(stack);
        const estimate = estimateCost(run, { region: 'us-east-2', prices: loadPrices(), usage: USAGE_DEFAULTS });
        assert.deepEqual(estimate.notPriced, []);
        assert.ok(estimate.totals.fixedUsd > 0);
        assert.equal(estimate.budget?.belowFixedCost, false, `budget ${estimate.budget?.limitUsd} vs fixed ${estimate.totals.fixedUsd}`);
      });
    }

    it('prints the estimate offline with the JSON form carrying the same figures, and passes the policy pack', () => {
      const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'infra/plan.ts', '--stack', 'staging', '--cost', ...args], { encoding: 'utf8', timeout: 100_000, env: { PATH: process.env.PATH } });
      const text = run(['--assume', 'xrayGb=1000']);
      assert.equal(text.status, 0, text.stderr);
      const json = run(['--assume', 'xrayGb=1000', '--json']);
      assert.equal(json.status, 0, json.stderr);
      const parsed = JSON.parse(json.stdout);
      assert.equal(parsed.usage.xrayGb, 1000);
      assert.deepEqual(parsed.policyViolations, []);
      assert.ok(text.stdout.includes(`fixed $${parsed.totals.fixedUsd.toFixed(2)} + usage $${parsed.totals.usageUsd.toFixed(2)}`), text.stdout.slice(0, 300));
      assert.match(text.stdout, /Not priced: none\./);
    });
  });
});

describe('refreshing the price file (npm run plan -- --refresh-prices --region <region>)', () => {
  const pricing = mockClient(PricingClient);
  afterEach(() => pricing.reset());
  const product = (usd: string) => JSON.stringify({ terms: { OnDemand: { t: { priceDimensions: { d: { pricePerUnit: { USD: usd } } } } } } });
  const file = (): PriceFile => ({
    ...PRICES,
    regions: { 'test-region-1': { location: 'Test', prices: {
      'natGateway.hour': { usd: 0.1, unit: 'hour', query: { serviceCode: 'AmazonEC2', filters: { usagetype: 'NatGateway-Hours' } } },
      'waf.ruleMonth': { usd: 1, unit: 'rule', query: { serviceCode: 'awswaf', filters: { usagetype: 'Rule' } } },
      'kms.keyMonth': { usd: 1, unit: 'key', query: { serviceCode: 'awskms', filters: { usagetype: 'Keys' } } },
    } } },
  });

  it('asks GetProducts with the entry query in the region location, takes the one on-demand price, dates the file', async () => {
    pricing.on(GetProductsCommand, { ServiceCode: 'AmazonEC2' }).resolves({ PriceList: [product('0.0480'), product('0.0000000000')] });
    pricing.on(GetProductsCommand, { ServiceCode: 'awswaf' }).resolves({ PriceList: [product('1.0000000000')] });
    pricing.on(GetProductsCommand, { ServiceCode: 'awskms' }).resolves({ PriceList: [product('1.0000000000'), product('3.0000000000')] });
    const prices = file();
    const report = await refreshPrices(prices, 'test-region-1', new PricingClient({ region: 'us-east-1' }), new Date('2027-02-03T10:00:00Z'));
    assert.deepEqual(report, { changed: [{ id: 'natGateway.hour', from: 0.1, to: 0.048 }], unchanged: ['waf.ruleMonth'], unresolved: [{ id: 'kms.keyMonth', found: [1, 3] }] });
    assert.equal(prices.regions['test-region-1']?.prices['natGateway.hour']?.usd, 0.048);
    assert.equal(prices.regions['test-region-1']?.prices['kms.keyMonth']?.usd, 1, 'an ambiguous price is kept, not guessed');
    assert.equal(prices.takenOn, '2027-02-03');
    const [first] = pricing.commandCalls(GetProductsCommand);
    assert.deepEqual(first?.args[0].input.Filters, [
      { Type: 'TERM_MATCH', Field: 'location', Value: 'Test' },
      { Type: 'TERM_MATCH', Field: 'usagetype', Value: 'NatGateway-Hours' },
    ]);
  });

  it('names an entry whose query matches nothing, and keeps its price', async () => {
    pricing.on(GetProductsCommand).resolves({ PriceList: [] });
    const report = await refreshPrices(file(), 'test-region-1', new PricingClient({ region: 'us-east-1' }));
    assert.deepEqual(report.unresolved.map((item) => item.id), ['natGateway.hour', 'waf.ruleMonth', 'kms.keyMonth']);
  });

  it('every price in the repository file names its Price List query and a positive price', () => {
    for (const [region, { location, prices }] of Object.entries(loadPrices().regions)) {
      assert.ok(location.length > 0, region);
      for (const [id, entry] of Object.entries(prices)) {
        assert.ok(entry.usd > 0, id);
        assert.ok(entry.query.serviceCode && Object.keys(entry.query.filters).length > 0, `${id} has a query`);
      }
    }
  });
});
