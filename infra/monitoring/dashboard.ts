// The stack's CloudWatch dashboard: the error budget left of each SLO and its burn, the golden
// signals per route (from the API's EMF records) and the slowest requests with their trace ids, the
// four golden signals of the API as the load balancer sees them (latency, traffic, errors,
// saturation), then the database, then the state of every alarm.
import * as pulumi from '@pulumi/pulumi';
import { LOG_METRICS, type MetricMath } from './alarms.js';
import { SLO_WINDOW_DAYS, type Objective } from './slo.js';

export interface DashboardTargets {
  region: string;
  /** Namespace of the log metrics, `DMS/<stack>`. */
  namespace: string;
  albArnSuffix: pulumi.Input<string>;
  targetGroupArnSuffix: pulumi.Input<string>;
  clusterName: pulumi.Input<string>;
  serviceName: pulumi.Input<string>;
  dbInstanceIdentifier: pulumi.Input<string>;
  dbReplicaIdentifier?: pulumi.Input<string>;
  alarmArns: pulumi.Input<string>[];
  /** The API's log group: the slowest-requests table reads its EMF records. */
  logGroupName: pulumi.Input<string>;
  /** The SLOs: a budget-remaining figure and a burn-rate graph each. */
  objectives: Objective[];
}

type MetricLine = pulumi.Input<string | Record<string, unknown>>[];

const WIDTH = 24;
const SLO_WINDOW_SECONDS = SLO_WINDOW_DAYS * 86_400;

/** A metric-math expression and its hidden inputs as dashboard metric lines, every input at `period`. */
function mathLines(id: string, expression: string, label: string, math: MetricMath, period: number): MetricLine[] {
  return [
    [{ expression, label, id }],
    ...Object.entries(math.metrics).map(([metricId, metric]): MetricLine => [
      metric.namespace,
      metric.metricName,
      ...Object.entries(metric.dimensions).flat(),
      { id: metricId, stat: metric.stat, period, visible: false },
    ]),
  ];
}

export function dashboardBody(targets: DashboardTargets): pulumi.Output<string> {
  const targetGroup = ['LoadBalancer', targets.albArnSuffix, 'TargetGroup', targets.targetGroupArnSuffix];
  const service = ['ClusterName', targets.clusterName, 'ServiceName', targets.serviceName];
  const instances = [
    { id: targets.dbInstanceIdentifier, label: 'primary' },
    ...(targets.dbReplicaIdentifier ? [{ id: targets.dbReplicaIdentifier, label: 'replica' }] : []),
  ];
  const rdsLines = (metricName: string): MetricLine[] =>
    instances.map(({ id, label }) => ['AWS/RDS', metricName, 'DBInstanceIdentifier', id, { label }]);

  const widgets: { y: number; height: number; [field: string]: unknown }[] = [];
  /** First free grid line below the widgets placed so far. */
  const bottom = () => widgets.reduce((lowest, widget) => Math.max(lowest, widget.y + widget.height), 0);
  /** Lays graphs out left to right, `perRow` to a row. */
  const row = (perRow: number, graphs: { title: string; metrics: MetricLine[]; stat?: string; unit?: string }[]) => {
    const y = bottom();
    graphs.forEach((graph, index) =>
      widgets.push({
        type: 'metric',
        x: index * (WIDTH / perRow),
        y,
        width: WIDTH / perRow,
        height: 6,
        properties: {
          title: graph.title,
          region: targets.region,
          view: 'timeSeries',
          stat: graph.stat ?? 'Sum',
          period: 60,
          metrics: graph.metrics,
          ...(graph.unit ? { yAxis: { left: { label: graph.unit, showUnits: false } } } : {}),
        },
      }),
    );
  };

  // Error budget left: the burn rate over the whole 30 days is the share of the budget spent.
  const sloWidth = WIDTH / Math.max(1, targets.objectives.length);
  targets.objectives.forEach((objective, index) =>
    widgets.push({
      type: 'metric',
      x: index * sloWidth,
      y: 0,
      width: sloWidth,
      height: 4,
      properties: {
        title: `Error budget left, ${SLO_WINDOW_DAYS} days: ${objective.promise}`,
        region: targets.region,
        view: 'singleValue',
        start: `-P${SLO_WINDOW_DAYS}D`,
        setPeriodToTimeRange: true,
        metrics: mathLines('budget', `100 * (1 - (${objective.burnRate.expression}))`, '% of the error budget left', objective.burnRate, SLO_WINDOW_SECONDS),
      },
    }),
  );
  row(2, [
    {
      title: 'SLO burn rate over the last hour (14.4 and both windows: P1; 6 over 6 h: P2)',
      stat: 'Sum',
      unit: '× the sustainable rate',
      metrics: targets.objectives.flatMap((objective, index) => {
        const prefixed = (text: string) => Object.keys(objective.burnRate.metrics).reduce((out, id) => out.replace(new RegExp(`\\b${id}\\b`, 'g'), `${id}${index}`), text);
        const renamed: MetricMath = {
          ...objective.burnRate,
          metrics: Object.fromEntries(Object.entries(objective.burnRate.metrics).map(([id, metric]) => [`${id}${index}`, metric])),
        };
        return mathLines(`burn${index}`, prefixed(objective.burnRate.expression), objective.id, renamed, 3600);
      }),
    },
    {
      title: 'Requests per route and status class (EMF)',
      metrics: [[{ expression: `SEARCH('{${targets.namespace},Method,Route,StatusClass} MetricName="Requests"', 'Sum', 60)`, id: 'requests', label: '' }]],
    },
  ]);
  row(2, [
    {
      title: 'Latency per route, p95 (EMF)',
      unit: 'ms',
      metrics: [[{ expression: `SEARCH('{${targets.namespace},Method,Route} MetricName="Latency"', 'p95', 300)`, id: 'p95', label: '' }]],
    },
    {
      title: 'Errors (5xx) per route (EMF)',
      metrics: [[{ expression: `SEARCH('{${targets.namespace},Method,Route} MetricName="Errors"', 'Sum', 60)`, id: 'errors', label: '' }]],
    },
  ]);
  const logTable = (x: number, title: string, query: string) => ({
    type: 'log',
    x,
    y: bottom(),
    width: WIDTH / 2,
    height: 6,
    properties: { title, region: targets.region, view: 'table', query: pulumi.interpolate`SOURCE '${targets.logGroupName}' | ${query}` },
  });
  const emfOnly = "filter ispresent(Latency) and RouteClass != 'probes'";
  widgets.push(
    logTable(0, 'Slowest routes: p95 and p99 latency (ms)', `${emfOnly} | stats pct(Latency, 95) as p95, pct(Latency, 99) as p99, count(*) as requests by Method, Route | sort p95 desc | limit 10`),
    logTable(WIDTH / 2, 'Slowest requests: request id and trace id', `${emfOnly} | fields @timestamp, Method, Route, StatusClass, Latency, requestId, traceId | sort Latency desc | limit 20`),
  );
  row(2, [
    {
      title: 'Latency: target response time',
      stat: 'p50',
      unit: 'seconds',
      metrics: ['p50', 'p95', 'p99'].map((stat) => ['AWS/ApplicationELB', 'TargetResponseTime', ...targetGroup, { stat, label: stat }]),
    },
    {
      title: 'Traffic by status class',
      metrics: [
        ...['2XX', '3XX', '4XX', '5XX'].map((status) => [
          'AWS/ApplicationELB',
          `HTTPCode_Target_${status}_Count`,
          ...targetGroup,
          { label: `target ${status.toLowerCase()}` },
        ]),
        ['AWS/ApplicationELB', 'HTTPCode_ELB_5XX_Count', 'LoadBalancer', targets.albArnSuffix, { label: 'load balancer 5xx' }],
      ],
    },
  ]);
  row(2, [
    {
      title: 'Errors: target 5xx rate',
      unit: '% of requests',
      metrics: [
        [{ expression: 'IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)', label: '5xx %', id: 'rate' }],
        ['AWS/ApplicationELB', 'HTTPCode_Target_5XX_Count', ...targetGroup, { id: 'errors', visible: false }],
        ['AWS/ApplicationELB', 'RequestCount', ...targetGroup, { id: 'requests', visible: false }],
      ],
    },
    {
      title: 'Errors and security events (API log)',
      metrics: Object.values(LOG_METRICS).map(({ metricName }) => [targets.namespace, metricName, { label: metricName }]),
    },
  ]);
  row(3, [
    {
      title: 'Saturation: API CPU and memory',
      stat: 'Average',
      unit: '%',
      metrics: ['CPUUtilization', 'MemoryUtilization'].map((metricName) => ['AWS/ECS', metricName, ...service]),
    },
    {
      title: 'Saturation: tasks running vs desired',
      stat: 'Average',
      metrics: ['RunningTaskCount', 'DesiredTaskCount', 'PendingTaskCount'].map((metricName) => [
        'ECS/ContainerInsights',
        metricName,
        ...service,
      ]),
    },
    {
      title: 'Healthy and unhealthy targets',
      stat: 'Minimum',
      metrics: ['HealthyHostCount', 'UnHealthyHostCount'].map((metricName) => ['AWS/ApplicationELB', metricName, ...targetGroup]),
    },
  ]);
  row(3, [
    { title: 'Database CPU', stat: 'Average', unit: '%', metrics: rdsLines('CPUUtilization') },
    { title: 'Database connections', stat: 'Maximum', metrics: rdsLines('DatabaseConnections') },
    { title: 'Database free storage', stat: 'Minimum', unit: 'bytes', metrics: rdsLines('FreeStorageSpace') },
  ]);
  row(2, [
    { title: 'Database freeable memory', stat: 'Average', unit: 'bytes', metrics: rdsLines('FreeableMemory') },
    ...(targets.dbReplicaIdentifier
      ? [
          {
            title: 'Replica lag',
            stat: 'Maximum',
            unit: 'seconds',
            metrics: [['AWS/RDS', 'ReplicaLag', 'DBInstanceIdentifier', targets.dbReplicaIdentifier]],
          },
        ]
      : []),
  ]);
  widgets.push({
    type: 'alarm',
    x: 0,
    y: bottom(),
    width: WIDTH,
    height: 4,
    properties: { title: 'Alarms', alarms: targets.alarmArns, sortBy: 'stateUpdatedTimestamp' },
  });

  return pulumi.jsonStringify({ start: '-PT3H', periodOverride: 'inherit', widgets });
}
