// The SLO burn-rate pages as planned for production, held to the worked example of
// docs/monitoring.md: each row of its table is replayed minute by minute against the planned window
// alarms (their expressions, metrics, periods, thresholds) and the composite alarms that join them.
// The table is read from the doc, so the doc and the alarms cannot drift apart.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { BURN_RATE_TIERS } from '../../infra/monitoring/slo.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';
import { ofType, planned } from './fixture.js';
import { evaluateMath } from '../support/metric-math.js';

const STACK = 'production';
const METRIC_ALARM = 'aws:cloudwatch/metricAlarm:MetricAlarm';
const COMPOSITE_ALARM = 'aws:cloudwatch/compositeAlarm:CompositeAlarm';
const OBJECTIVES = ['availability', 'latency-reads', 'latency-writes', 'latency-auth'];
/** Requests a minute in every scenario; steady, good traffic for the six hours before minute 0. */
const PER_MINUTE = 1000;
const HISTORY_MINUTES = 360;
const HORIZON_MINUTES = 480;

interface Query {
  id: string;
  expression?: string;
  returnData?: boolean;
  metric?: { namespace: string; metricName: string; stat: string; period: number; dimensions: Record<string, string> };
}

/** One minute of traffic: ALB counts, and the latencies of the requests the EMF records carry. */
interface Minute {
  RequestCount: number;
  HTTPCode_Target_5XX_Count: number;
  HTTPCode_ELB_5XX_Count: number;
  /** [latency ms, how many] */
  latencies: [number, number][];
}

interface Scenario {
  objective: string;
  target: number;
  badShare: number;
  from: 'API' | 'load balancer' | undefined;
  /** Bad minutes are 1..lasting (Infinity: throughout). */
  lasting: number;
  expected: Record<'fast' | 'slow', { firesAt?: number; clearsAt?: number }>;
}

function readWorkedExample(): Scenario[] {
  const doc = readFileSync(new URL('../../docs/monitoring.md', import.meta.url), 'utf8');
  const header = '| SLO | bad share | 5xx from | lasting | P1 fast burn | P2 slow burn |';
  const start = doc.indexOf(header);
  assert.ok(start >= 0, 'docs/monitoring.md has the worked example table');
  const rows = doc.slice(start).split('\n').slice(2).filter((line) => line.startsWith('|'));
  const rowsEnd = doc.slice(start).split('\n').slice(2).findIndex((line) => !line.startsWith('|'));
  const outcome = (cell: string) => {
    if (cell === 'never') return {};
    const match = /^at (\d+) min(?:, clears at (\d+) min)?$/.exec(cell);
    assert.ok(match, `unreadable outcome "${cell}"`);
    return { firesAt: Number(match[1]), ...(match[2] ? { clearsAt: Number(match[2]) } : {}) };
  };
  return rows.slice(0, rowsEnd).map((line) => {
    const [slo = '', share = '', from = '', lasting = '', fast = '', slow = ''] = line.split('|').slice(1, -1).map((cell) => cell.trim());
    const [, objective = '', target = ''] = /^([\w-]+) ([\d.]+)%$/.exec(slo) ?? [];
    const first = /^first (\d+) min$/.exec(lasting);
    assert.ok(first || lasting === 'throughout', `unreadable duration "${lasting}"`);
    return {
      objective,
      target: Number(target),
      badShare: Number(share.replace('%', '')) / 100,
      from: from === '—' ? undefined : (from as 'API' | 'load balancer'),
      lasting: first ? Number(first[1]) : Infinity,
      expected: { fast: outcome(fast), slow: outcome(slow) },
    };
  });
}

/** The minutes of a scenario, indexed from -HISTORY_MINUTES + 1 to HORIZON_MINUTES. */
function traffic(scenario: Scenario, thresholdMs: number): Map<number, Minute> {
  const minutes = new Map<number, Minute>();
  for (let t = -HISTORY_MINUTES + 1; t <= HORIZON_MINUTES; t++) {
    const bad = t >= 1 && t <= scenario.lasting ? Math.round(scenario.badShare * PER_MINUTE) : 0;
    const availability = scenario.objective === 'availability';
    const fromApi = availability && scenario.from === 'API' ? bad : 0;
    const fromLoadBalancer = availability && scenario.from === 'load balancer' ? bad : 0;
    minutes.set(t, {
      // A 5xx the load balancer answers for want of a target is not in RequestCount; the API's are.
      RequestCount: PER_MINUTE - fromLoadBalancer,
      HTTPCode_Target_5XX_Count: fromApi,
      HTTPCode_ELB_5XX_Count: fromLoadBalancer,
      latencies: availability ? [[thresholdMs / 10, PER_MINUTE]] : [[thresholdMs / 10, PER_MINUTE - bad], [thresholdMs * 1.5, bad]],
    });
  }
  return minutes;
}

/** A metric's statistic over the minutes (end - period, end], as CloudWatch computes it; undefined: no data point. */
function statistic(query: NonNullable<Query['metric']>, minutes: Map<number, Minute>, end: number): number | undefined {
  const window = Array.from({ length: query.period / 60 }, (_, index) => minutes.get(end - index)).filter((minute): minute is Minute => minute !== undefined);
  const rank = /^PR\(:(\d+(?:\.\d+)?)\)$/.exec(query.stat);
  if (rank) {
    const samples = window.flatMap((minute) => minute.latencies);
    const total = samples.reduce((sum, [, count]) => sum + count, 0);
    const atOrBelow = samples.filter(([latency]) => latency <= Number(rank[1])).reduce((sum, [, count]) => sum + count, 0);
    return total === 0 ? undefined : (100 * atOrBelow) / total;
  }
  assert.equal(query.stat, 'Sum', `${query.metricName}: a count is summed`);
  const name = query.metricName as 'RequestCount' | 'HTTPCode_Target_5XX_Count' | 'HTTPCode_ELB_5XX_Count';
  const sum = window.reduce((total, minute) => total + minute[name], 0);
  // A 5xx count publishes nothing in a minute without a 5xx.
  return sum === 0 && name !== 'RequestCount' ? undefined : sum;
}

function windowInAlarm(alarm: RecordedResource, minutes: Map<number, Minute>, end: number): boolean {
  const queries = alarm.inputs['metricQueries'] as Query[];
  const values: Record<string, number | undefined> = {};
  for (const query of queries.filter((candidate) => candidate.metric)) values[query.id] = statistic(query.metric!, minutes, end);
  const value = evaluateMath(queries.find((query) => query.returnData)!.expression!, values);
  // treatMissingData notBreaching (asserted below): no value is not a breach.
  return value !== undefined && value > (alarm.inputs['threshold'] as number);
}

describe('SLO burn-rate pages: the worked example of docs/monitoring.md, replayed against the planned alarms', function () {
  this.timeout(180_000);
  let run: StackRun;
  const windowAlarm = (name: string) => {
    const found = ofType(run, METRIC_ALARM).filter((resource) => resource.inputs['name'] === name);
    assert.equal(found.length, 1, `one window alarm ${name}`);
    return found[0]!;
  };
  const page = (objective: string, tier: string) => {
    const found = ofType(run, COMPOSITE_ALARM).filter((resource) => resource.inputs['alarmName'] === `dms-${STACK}-slo-${objective}-${tier}-burn`);
    assert.equal(found.length, 1, `one page dms-${STACK}-slo-${objective}-${tier}-burn`);
    return found[0]!;
  };
  /** The two window alarms a page ANDs, read from its rule. */
  const windowsOf = (composite: RecordedResource): RecordedResource[] => {
    const rule = composite.inputs['alarmRule'] as string;
    const match = /^ALARM\("([\w-]+)"\) AND ALARM\("([\w-]+)"\)$/.exec(rule);
    assert.ok(match, `rule "${rule}" is the AND of two alarms`);
    return [windowAlarm(match[1]!), windowAlarm(match[2]!)];
  };

  before(async () => {
    run = await planned(STACK);
  });

  const scenarios = readWorkedExample();
  it('the worked example has rows for both tiers firing, neither firing, a blip, an outage that clears, and a latency SLO', () => {
    assert.ok(scenarios.length >= 6);
    assert.ok(scenarios.some((row) => row.expected.fast.firesAt !== undefined && row.expected.slow.firesAt !== undefined));
    assert.ok(scenarios.some((row) => row.expected.fast.firesAt === undefined && row.expected.slow.firesAt !== undefined));
    assert.ok(scenarios.some((row) => row.expected.fast.clearsAt !== undefined));
    assert.ok(scenarios.some((row) => row.objective.startsWith('latency-')));
  });

  for (const scenario of scenarios) {
    const lasting = scenario.lasting === Infinity ? 'throughout' : `for ${scenario.lasting} min`;
    it(`${scenario.objective} ${scenario.target}%, ${scenario.badShare * 100}% bad ${lasting}: fast ${JSON.stringify(scenario.expected.fast)}, slow ${JSON.stringify(scenario.expected.slow)}`, () => {
      const slo = loadStackFile(STACK).config['dms:slo'] as { availability: { target: number }; latency: Record<string, { target: number; thresholdMs: number }> };
      const objective: { target: number; thresholdMs?: number } = scenario.objective === 'availability' ? slo.availability : slo.latency[scenario.objective.replace('latency-', '')]!;
      assert.equal(objective.target, scenario.target, `the doc's ${scenario.objective} target is production's`);
      const minutes = traffic(scenario, objective.thresholdMs ?? 300);
      for (const tier of ['fast', 'slow'] as const) {
        const windows = windowsOf(page(scenario.objective, tier));
        let firesAt: number | undefined;
        let clearsAt: number | undefined;
        for (let t = 1; t <= HORIZON_MINUTES; t++) {
          const inAlarm = windows.every((alarm) => windowInAlarm(alarm, minutes, t));
          if (inAlarm && firesAt === undefined) firesAt = t;
          if (!inAlarm && firesAt !== undefined && clearsAt === undefined) clearsAt = t;
        }
        assert.deepEqual({ ...(firesAt === undefined ? {} : { firesAt }), ...(clearsAt === undefined ? {} : { clearsAt }) }, scenario.expected[tier], `${tier} burn`);
      }
    });
  }

  it('a page needs both windows: the short window alone (a blip) and the long window alone (a burn that stopped) do not page', () => {
    const [long, short] = windowsOf(page('availability', 'fast')).sort((a, b) => period(b) - period(a)) as [RecordedResource, RecordedResource];
    const blip = traffic({ objective: 'availability', target: 99.9, badShare: 0.1, from: 'API', lasting: 3, expected: { fast: {}, slow: {} } }, 300);
    assert.ok(windowInAlarm(short, blip, 3) && !windowInAlarm(long, blip, 3), 'a 3-minute blip: the 5 min window alone');
    const stopped = traffic({ objective: 'availability', target: 99.9, badShare: 1, from: 'load balancer', lasting: 10, expected: { fast: {}, slow: {} } }, 300);
    assert.ok(windowInAlarm(long, stopped, 30) && !windowInAlarm(short, stopped, 30), 'twenty minutes after a 10-minute outage: the 1 h window alone');
  });
});

const period = (alarm: RecordedResource) => (alarm.inputs['metricQueries'] as Query[]).find((query) => query.metric)!.metric!.period;

describe('SLO burn-rate pages: windows, factors, severities and paging as the SRE workbook sets them', function () {
  this.timeout(180_000);
  let run: StackRun;
  before(async () => {
    run = await planned(STACK);
  });

  it('plans a fast (P1: 14.4 over 1 h and 5 min) and a slow (P2: 6 over 6 h and 30 min) page for each SLO', () => {
    const composites = ofType(run, COMPOSITE_ALARM);
    assert.deepEqual(composites.map((resource) => resource.inputs['alarmName']).sort(), OBJECTIVES.flatMap((id) => [`dms-${STACK}-slo-${id}-fast-burn`, `dms-${STACK}-slo-${id}-slow-burn`]).sort());
    const expected = { fast: { severity: 'P1', factor: 14.4, periods: [3600, 300] }, slow: { severity: 'P2', factor: 6, periods: [21600, 1800] } };
    assert.deepEqual(Object.fromEntries(BURN_RATE_TIERS.map((tier) => [tier.name, { severity: tier.severity, factor: tier.factor, periods: [tier.longWindowMinutes * 60, tier.shortWindowMinutes * 60] }])), expected);
    for (const id of OBJECTIVES) {
      for (const [tier, { severity, factor, periods }] of Object.entries(expected)) {
        const composite = composites.find((resource) => resource.inputs['alarmName'] === `dms-${STACK}-slo-${id}-${tier}-burn`)!;
        assert.deepEqual(composite.inputs['tags'], { Severity: severity });
        assert.match(composite.inputs['alarmDescription'] as string, new RegExp(`^${severity}: .+ Runbook: https://\\S+/runbooks/(errors-and-rollback|performance)\\.md#(availability|latency)-budget-${tier}-burn$`));
        const names = /^ALARM\("([\w-]+)"\) AND ALARM\("([\w-]+)"\)$/.exec(composite.inputs['alarmRule'] as string)!.slice(1);
        const windows = names.map((name) => ofType(run, METRIC_ALARM).find((resource) => resource.inputs['name'] === name)!);
        assert.deepEqual(windows.map(period).sort((a, b) => b - a), periods);
        for (const window of windows) {
          assert.deepEqual([window.inputs['threshold'], window.inputs['comparisonOperator'], window.inputs['evaluationPeriods'], window.inputs['datapointsToAlarm'], window.inputs['treatMissingData']], [factor, 'GreaterThanThreshold', 1, 1, 'notBreaching']);
          assert.equal(window.inputs['alarmActions'], undefined, `${String(window.inputs['name'])} pages only through ${String(composite.inputs['alarmName'])}`);
        }
      }
    }
  });

  it('the escalation starts on the pages, never on a window alarm alone', () => {
    const rule = ofType(run, 'aws:cloudwatch/eventRule:EventRule').find((resource) => resource.inputs['name'] === `dms-${STACK}-escalation`)!;
    const names = (JSON.parse(rule.inputs['eventPattern'] as string) as { detail: { alarmName: string[] } }).detail.alarmName;
    for (const composite of ofType(run, COMPOSITE_ALARM)) assert.ok(names.includes(composite.inputs['alarmName'] as string));
    assert.ok(!names.some((name) => /-slo-[\w-]+-burn-\d+[mh]$/.test(name)), 'no window alarm is paged');
  });

  it('keeps to CloudWatch’s rules for metric-math alarms: one period for every metric, at most 10 metrics, and the evaluation range', () => {
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-on-metric-math-expressions
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html (Period × EvaluationPeriods)
    for (const alarm of ofType(run, METRIC_ALARM).filter((resource) => resource.inputs['metricQueries'])) {
      const metrics = (alarm.inputs['metricQueries'] as Query[]).filter((query) => query.metric);
      assert.ok(metrics.length <= 10, `${String(alarm.inputs['name'])}: ${metrics.length} metrics`);
      assert.equal(new Set(metrics.map((query) => query.metric!.period)).size, 1, `${String(alarm.inputs['name'])}: one period`);
      const range = metrics[0]!.metric!.period * (alarm.inputs['evaluationPeriods'] as number);
      assert.ok(range <= (metrics[0]!.metric!.period < 3600 ? 86_400 : 604_800), `${String(alarm.inputs['name'])}: evaluation range ${range} s`);
    }
  });

  it('reads the latency of each route class at its configured threshold, from the EMF metrics of the stack', () => {
    const slo = loadStackFile(STACK).config['dms:slo'] as { latency: Record<string, { thresholdMs: number }> };
    for (const routeClass of ['reads', 'writes', 'auth']) {
      const window = ofType(run, METRIC_ALARM).find((resource) => resource.inputs['name'] === `dms-${STACK}-slo-latency-${routeClass}-burn-1h`)!;
      const [metric] = (window.inputs['metricQueries'] as Query[]).filter((query) => query.metric).map((query) => query.metric!);
      assert.deepEqual([metric?.namespace, metric?.metricName, metric?.dimensions, metric?.stat], [`DMS/${STACK}`, 'Latency', { RouteClass: routeClass }, `PR(:${slo.latency[routeClass]!.thresholdMs})`]);
    }
  });

  it('the dashboard shows the error budget left of every SLO over 30 days, and the golden signals per route', () => {
    const [dashboard] = ofType(run, 'aws:cloudwatch/dashboard:Dashboard');
    const body = JSON.parse(dashboard!.inputs['dashboardBody'] as string) as { widgets: { type: string; properties: Record<string, unknown> }[] };
    const budgets = body.widgets.filter((widget) => String(widget.properties['title']).startsWith('Error budget left'));
    assert.equal(budgets.length, OBJECTIVES.length);
    for (const widget of budgets) {
      assert.deepEqual([widget.properties['view'], widget.properties['start'], widget.properties['setPeriodToTimeRange']], ['singleValue', '-P30D', true]);
      const lines = widget.properties['metrics'] as unknown[][];
      assert.match((lines[0]![0] as { expression: string }).expression, /^100 \* \(1 - \(.+\)\)$/);
      assert.ok(lines.slice(1).every((line) => (line.at(-1) as { period: number }).period === 30 * 86_400));
    }
    const expressions = body.widgets.flatMap((widget) => (widget.properties['metrics'] as unknown[][] | undefined) ?? []).map((line) => (line[0] as { expression?: string }).expression ?? '');
    assert.ok(expressions.some((expression) => expression.includes(`{DMS/${STACK},Method,Route,StatusClass} MetricName="Requests"`)), 'traffic per route and status class');
    for (const metric of ['Latency', 'Errors']) {
      assert.ok(expressions.some((expression) => expression.includes(`{DMS/${STACK},Method,Route} MetricName="${metric}"`)), metric);
    }
    const queries = body.widgets.filter((widget) => widget.type === 'log').map((widget) => String(widget.properties['query']));
    assert.ok(queries.some((query) => query.includes('traceId') && query.includes('sort Latency desc')), 'the slowest requests with their trace ids');
  });
});
