// Service-level objectives and their multi-window, multi-burn-rate alerts, in the manner of the
// Google SRE workbook ("Alerting on SLOs", recommendation 6: a 2% budget spend in 1 h and a 5%
// spend in 6 h page, each confirmed by a short window a twelfth of its length so the page stops soon
// after the burn does). docs/monitoring.md works an example through; test/infra/slo.test.ts holds
// the planned alarms to it.
//
// CloudWatch facts this relies on (each cited where it bites):
// - every metric of a metric-math alarm must use the same period, so the long and the short window
//   cannot be one alarm: each window is its own metric alarm and a composite alarm ANDs the two
//   (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-on-metric-math-expressions);
// - an alarm on metric math reads at most 10 metrics (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html);
// - Period × EvaluationPeriods is at most one day for periods under an hour, seven days otherwise
//   (PutMetricAlarm, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html);
//   the windows here are one period each: 5 min, 30 min, 1 h, 6 h;
// - the evaluation window slides (it advances each time the alarm is evaluated) unless a wall-clock
//   window is asked for (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation-window.html);
// - a minute with no 5xx has no HTTPCode_*_5XX_Count data point: FILL(m, 0) makes it 0;
// - PR(:t), percentile rank, is the percentage of data points at or below t (the lower bound
//   exclusive, the upper inclusive), available for custom metrics published as raw values, as EMF
//   does (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html).
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { SloSettings } from '../config.js';
import { alarmMetricArgs, type MetricMath, type Severity } from './alarms.js';

/** The objectives' rolling window. The burn-rate factors below are fractions of this. */
export const SLO_WINDOW_DAYS = 30;

/** One burn-rate alert: pages when both windows burn faster than `factor` × the sustainable rate. */
export interface BurnRateTier {
  name: 'fast' | 'slow';
  severity: Severity;
  /** Burn rate: 1 spends exactly the budget in 30 days; 14.4 spends 2% of it in an hour. */
  factor: number;
  longWindowMinutes: number;
  shortWindowMinutes: number;
}

export const BURN_RATE_TIERS: readonly BurnRateTier[] = [
  // 14.4 × 60 min / 43,200 min = 2% of the budget in the hour: wake someone.
  { name: 'fast', severity: 'P1', factor: 14.4, longWindowMinutes: 60, shortWindowMinutes: 5 },
  // 6 × 360 min / 43,200 min = 5% of the budget in six hours: chat and e-mail, fix in working hours.
  { name: 'slow', severity: 'P2', factor: 6, longWindowMinutes: 360, shortWindowMinutes: 30 },
];

/** One SLO: what a bad request is, and the metric math whose value is the burn rate over a window. */
export interface Objective {
  /** `availability`, `latency-reads`, …: alarms are `dms-<stack>-slo-<id>-<tier>-burn`. */
  id: string;
  /** What the objective promises, for alarm descriptions and the dashboard. */
  promise: string;
  /** Percent of requests that must be good over 30 days. */
  target: number;
  /** Runbook sections (`<file>.md#<anchor>`) the fast and the slow page (and their windows) link. */
  runbook: Record<BurnRateTier['name'], string>;
  /** Metric math: bad share of requests over the alarm's period, divided by the budget (100 − target)/100. */
  burnRate: MetricMath;
}

/** (100 − target)/100 written without float noise (99.9 → 0.001, not 0.0009999999999999432). */
export function errorBudget(target: number): number {
  return Number(((100 - target) / 100).toPrecision(6));
}

export interface ObjectiveTargets {
  /** `DMS/<stack>`: the API's EMF metrics. */
  namespace: string;
  albArnSuffix: pulumi.Input<string>;
  targetGroupArnSuffix: pulumi.Input<string>;
}

const ROUTE_CLASSES = ['reads', 'writes', 'auth'] as const;

export function objectives(slo: SloSettings, targets: ObjectiveTargets): Objective[] {
  const loadBalancer = { LoadBalancer: targets.albArnSuffix };
  const availabilityBudget = errorBudget(slo.availability.target);
  // RequestCount counts requests the load balancer routed to a target; a request it answers 503 for
  // want of a healthy target may not be in it, so its own 5xx are added to the total. A 502 or 504
  // is then counted twice in the total and once as bad: the share is at worst understated (never
  // more than halved), never overstated, and a total outage still reads 100% bad.
  const total = '(FILL(requests, 0) + FILL(elb5xx, 0))';
  const availability: Objective = {
    id: 'availability',
    promise: `${slo.availability.target}% of requests not answered 5xx (by the API or the load balancer)`,
    target: slo.availability.target,
    runbook: { fast: 'errors-and-rollback.md#availability-budget-fast-burn', slow: 'errors-and-rollback.md#availability-budget-slow-burn' },
    burnRate: {
      expression: `IF(${total} > 0, (FILL(target5xx, 0) + FILL(elb5xx, 0)) / ${total} / ${availabilityBudget}, 0)`,
      label: 'Availability burn rate (1 = spending the 30-day budget exactly)',
      metrics: {
        requests: { namespace: 'AWS/ApplicationELB', metricName: 'RequestCount', dimensions: loadBalancer, stat: 'Sum' },
        target5xx: {
          namespace: 'AWS/ApplicationELB',
          metricName: 'HTTPCode_Target_5XX_Count',
          dimensions: { LoadBalancer: targets.albArnSuffix, TargetGroup: targets.targetGroupArnSuffix },
          stat: 'Sum',
        },
        elb5xx: { namespace: 'AWS/ApplicationELB', metricName: 'HTTPCode_ELB_5XX_Count', dimensions: loadBalancer, stat: 'Sum' },
      },
    },
  };
  const latency = ROUTE_CLASSES.filter((routeClass) => slo.latency[routeClass]).map((routeClass): Objective => {
    const { target, thresholdMs } = slo.latency[routeClass]!;
    return {
      id: `latency-${routeClass}`,
      promise: `${target}% of ${routeClass} answered within ${thresholdMs} ms`,
      target,
      runbook: { fast: 'performance.md#latency-budget-fast-burn', slow: 'performance.md#latency-budget-slow-burn' },
      burnRate: {
        // PR is a percentage; no request in the window is no data point (treated as not breaching).
        expression: `(100 - fast) / 100 / ${errorBudget(target)}`,
        label: `Latency burn rate, ${routeClass} over ${thresholdMs} ms`,
        metrics: { fast: { namespace: targets.namespace, metricName: 'Latency', dimensions: { RouteClass: routeClass }, stat: `PR(:${thresholdMs})` } },
      },
    };
  });
  return [availability, ...latency];
}

const windowLabel = (minutes: number) => (minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`);

/** One window of one objective: a metric alarm that never pages by itself. */
export function windowAlarmSlug(objective: Objective, minutes: number): string {
  return `slo-${objective.id}-burn-${windowLabel(minutes)}`;
}

/** The page: the composite alarm of a tier's two windows. */
export function pageSlug(objective: Objective, tier: BurnRateTier): string {
  return `slo-${objective.id}-${tier.name}-burn`;
}

export interface SloAlarmsArgs {
  /** `dms-<stack>`: alarm names are `<prefix>-<slug>`. */
  prefix: string;
  objectives: Objective[];
  runbookBaseUrl: string;
  /** Where a page goes when it fires, by severity (the chat topic; Incident Manager's plan, if opted in). */
  alarmActions: (severity: Severity) => pulumi.Input<string>[];
  /** Where it goes when it clears. */
  okActions: pulumi.Input<string>[];
}

/**
 * Per objective and tier, two window alarms and the composite alarm that pages when both are in
 * ALARM. The window alarms have no actions and are not in the escalation's alarm list: a short
 * window alone is a blip, a long window alone is a burn that has already stopped.
 */
export class SloAlarms extends pulumi.ComponentResource {
  /** Physical names of the pages (the composite alarms), for the escalation and the outputs. */
  readonly pageNames: string[] = [];
  readonly pageArns: pulumi.Output<string>[] = [];

  constructor(name: string, args: SloAlarmsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:monitoring:SloAlarms', name, {}, opts);
    const child = { parent: this };
    const base = args.runbookBaseUrl.replace(/\/+$/, '');
    for (const objective of args.objectives) {
      const windowAlarm = (minutes: number, tier: BurnRateTier) => {
        const alarmName = `${args.prefix}-${windowAlarmSlug(objective, minutes)}`;
        return new aws.cloudwatch.MetricAlarm(
          alarmName,
          {
            name: alarmName,
            alarmDescription:
              `Window of the ${tier.name}-burn page ${args.prefix}-${pageSlug(objective, tier)} (pages only with its partner window): ` +
              `${objective.promise}; burn rate over ${windowLabel(minutes)} above ${tier.factor}. Runbook: ${base}/runbooks/${objective.runbook[tier.name]}`,
            comparisonOperator: 'GreaterThanThreshold',
            threshold: tier.factor,
            evaluationPeriods: 1,
            datapointsToAlarm: 1,
            // No requests, nothing to judge: the no-healthy-targets alarm covers a service that is down.
            treatMissingData: 'notBreaching',
            ...alarmMetricArgs({ source: objective.burnRate, periodSeconds: minutes * 60 }),
          },
          child,
        );
      };
      for (const tier of BURN_RATE_TIERS) {
        const long = windowAlarm(tier.longWindowMinutes, tier);
        const short = windowAlarm(tier.shortWindowMinutes, tier);
        const alarmName = `${args.prefix}-${pageSlug(objective, tier)}`;
        const budgetShare = Math.round(((tier.factor * tier.longWindowMinutes) / (SLO_WINDOW_DAYS * 24 * 60)) * 100);
        const page = new aws.cloudwatch.CompositeAlarm(
          alarmName,
          {
            alarmName,
            alarmDescription:
              `${tier.severity}: The error budget of "${objective.promise}" is burning ${tier.factor}× faster than 30 days allow, ` +
              `over the last ${windowLabel(tier.longWindowMinutes)} and the last ${windowLabel(tier.shortWindowMinutes)} (${budgetShare}% of the budget spent in ${windowLabel(tier.longWindowMinutes)}). ` +
              `Runbook: ${base}/runbooks/${objective.runbook[tier.name]}`,
            alarmRule: pulumi.interpolate`ALARM("${long.name}") AND ALARM("${short.name}")`,
            actionsEnabled: true,
            alarmActions: args.alarmActions(tier.severity),
            okActions: args.okActions,
            tags: { Severity: tier.severity },
          },
          child,
        );
        this.pageNames.push(alarmName);
        this.pageArns.push(page.arn);
      }
    }
    this.registerOutputs({ pageNames: this.pageNames });
  }
}
