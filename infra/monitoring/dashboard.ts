// The stack's CloudWatch dashboard: the four golden signals of the API (latency, traffic, errors,
// saturation), then the database, then the state of every alarm.
import * as pulumi from '@pulumi/pulumi';
import { LOG_METRICS } from './alarms.js';

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
}

type MetricLine = pulumi.Input<string | Record<string, unknown>>[];

const WIDTH = 24;

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
