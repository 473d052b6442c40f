/**
 * Monitoring: log metrics, the platform's alarms (platform brief, "Alarm names, severities and
 * runbook sections"), the snapshot-age check, the RDS event subscription, the golden-signals
 * dashboard, and the paging path (chat at once, then the Step Functions escalation by severity).
 *
 * Two SNS topics, both encrypted with the monitoring key:
 * - `dms-<stack>-chat` is level 1: every alarm transition and the escalation's level-1 message
 *   with its acknowledge link, relayed to Slack by Amazon Q Developer in chat applications (AWS
 *   Chatbot), or to `alarmEmail` while no Slack channel is configured.
 * - `dms-<stack>-alarms` carries what does not page (RDS events, budget alerts, a broken paging
 *   engine) to `alarmEmail` and to the chat channel.
 * Severity routing is not done with topics: every alarm entering ALARM starts one execution of the
 * escalation state machine, which reads the alarm's severity and climbs as far as it allows.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { metricsNamespace, namePrefix, type AwsEnvironment, type SloSettings, type StackConfig } from './config.js';
import { policyDocument } from './iam.js';
import { customerManagedKey } from './kms.js';
import {
  LOG_METRICS,
  alarmDefinitions,
  alarmDescription,
  alarmMetricArgs,
  eventFilterPattern,
  type Severity,
} from './monitoring/alarms.js';
import { dashboardBody } from './monitoring/dashboard.js';
import { Escalation } from './monitoring/escalation.js';
import { IncidentRecords } from './monitoring/incident-manager.js';
import { rdsChangeEvents } from './monitoring/rds-change-events.js';
import { objectives, SloAlarms } from './monitoring/slo.js';
import { SnapshotAgeCheck } from './monitoring/snapshot-age.js';

export type { Severity } from './monitoring/alarms.js';

/** Event categories of the RDS event subscription: failed backups and database availability. */
export const RDS_EVENT_CATEGORIES = ['backup', 'failure', 'failover', 'low storage'] as const;

export interface MonitoringArgs {
  /** Stack name: resources are named `dms-<stack>-…`, custom metrics live in `DMS/<stack>`. */
  stack: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /**
   * The `monitoring` config section: runbook base URL, Slack ids, on-call engineers, origination
   * identity, level delays, webhook, alarm e-mail, and the Incident Manager opt-in.
   */
  config: StackConfig['monitoring'];
  /** Key and retention of the log groups the component creates (the snapshot check's). */
  logs: { key: aws.kms.Key; retentionDays: number };
  /** The API as the service component deployed it. */
  api: {
    /** Log group the API containers ship their JSON lines to. */
    logGroupName: pulumi.Input<string>;
    /** `app/<name>/<id>` of the ALB (CloudWatch's LoadBalancer dimension). */
    albArnSuffix: pulumi.Input<string>;
    /** `targetgroup/<name>/<id>` of the API target group. */
    targetGroupArnSuffix: pulumi.Input<string>;
    clusterName: pulumi.Input<string>;
    serviceName: pulumi.Input<string>;
    /** The HTTPS listener's ACM certificate, when the stack serves HTTPS (acm-certificate-expiring). */
    certificateArn?: pulumi.Input<string> | undefined;
  };
  /** The database as the database component deployed it. */
  database: {
    instanceIdentifier: pulumi.Input<string>;
    instanceArn: pulumi.Input<string>;
    /** Parameter group of both instances (its change events go to the alarm topic). */
    parameterGroupName: pulumi.Input<string>;
    /** Read replica, when the stack has one (replica-lag alarm). */
    replicaIdentifier?: pulumi.Input<string>;
    /** Nominal memory of the primary's class (bytes); the freeable-memory threshold is 10% of it. */
    memoryBytes: number;
    /** `max_connections` the primary runs with; the connections threshold is 80% of it. */
    maxConnections: number;
    /**
     * Allocated storage of the primary at creation (bytes); the free-storage threshold is 5% of
     * it, under the 10% of the current allocation at which storage autoscaling grows the volume.
     */
    allocatedStorageBytes: number;
    /** The storage autoscaling ceiling, `maxAllocatedStorageGb` (bytes): rds-storage-ceiling-near. */
    maxAllocatedStorageBytes: number;
  };
  /** Service-level objectives: each gets a fast-burn (P1) and a slow-burn (P2) page and a budget on the dashboard. */
  slo: SloSettings;
  /** The AWS Backup vault in the stack's region: its backup and copy jobs alarm. */
  backupVaultName: pulumi.Input<string>;
  /** The regional WAF web ACL in front of the ALB. */
  waf: {
    /** The web ACL's `visibilityConfig.metricName` (CloudWatch's WebACL dimension). */
    metricName: pulumi.Input<string>;
  };
}

export class Monitoring extends pulumi.ComponentResource {
  /** Topic of RDS events and budget alerts (e-mail and chat). */
  readonly alarmTopicArn: pulumi.Output<string>;
  /** Level-1 topic: alarm transitions and incident updates for the chat channel. */
  readonly chatTopicArn: pulumi.Output<string>;
  /** Physical names of every alarm that pages, `dms-<stack>-<slug>`: the metric alarms and the SLO pages (composite). */
  readonly alarmNames: string[];
  readonly dashboardName: pulumi.Output<string>;
  /** The escalation state machine (`npm run ops -- page-test` starts it). */
  readonly escalationStateMachineArn: pulumi.Output<string>;
  /** The acknowledge function URL every page links to. */
  readonly acknowledgeUrl: pulumi.Output<string>;
  /** Incident Manager response plan per severity, with `incidentManager: true` only. */
  readonly responsePlanArns?: Record<Severity, pulumi.Output<string>>;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:monitoring:Monitoring', name, {}, opts);
    const child = { parent: this };
    const { stack, env, config } = args;
    const prefix = namePrefix(stack);
    const namespace = metricsNamespace(stack);

    const topicArn = (kind: string) => pulumi.interpolate`arn:${env.partition}:sns:${env.region}:${env.accountId}:${prefix}-${kind}`;
    const topicArns = [topicArn('chat'), topicArn('alarms')];
    // Each publisher is admitted to a topic with the condition keys its own documentation says it
    // sends when it publishes (the confused-deputy guard):
    // - CloudWatch alarms: aws:SourceAccount and aws:SourceArn, the alarm's ARN
    //   (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html);
    // - AWS Budgets: aws:SourceAccount and aws:SourceArn, `arn:aws:budgets::<account>:*`
    //   (https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html);
    // - RDS events: aws:SourceAccount and aws:SourceArn, the RDS resource's ARN
    //   (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.GrantingPermissions.html);
    // - Incident Manager: aws:SourceAccount.
    const incidentManager = config.incidentManager ? ['ssm-incidents.amazonaws.com'] : [];
    const account = { 'aws:SourceAccount': env.accountId };
    const publisherStatements: Record<string, { Sid: string; Condition: Record<string, Record<string, pulumi.Input<string>>> }> = {
      'cloudwatch.amazonaws.com': {
        Sid: 'CloudWatchAlarmsPublish',
        Condition: { StringEquals: account, ArnLike: { 'aws:SourceArn': pulumi.interpolate`arn:${env.partition}:cloudwatch:${env.region}:${env.accountId}:alarm:*` } },
      },
      'budgets.amazonaws.com': {
        Sid: 'BudgetsPublish',
        Condition: { StringEquals: account, ArnLike: { 'aws:SourceArn': pulumi.interpolate`arn:${env.partition}:budgets::${env.accountId}:*` } },
      },
      'events.rds.amazonaws.com': {
        Sid: 'RdsEventsPublish',
        Condition: { StringEquals: account, ArnLike: { 'aws:SourceArn': pulumi.interpolate`arn:${env.partition}:rds:${env.region}:${env.accountId}:*` } },
      },
      'ssm-incidents.amazonaws.com': { Sid: 'IncidentManagerPublishes', Condition: { StringEquals: account } },
    };
    const publishers = ['cloudwatch.amazonaws.com', 'budgets.amazonaws.com', 'events.rds.amazonaws.com', ...incidentManager];
    // The key is used by SNS on the publisher's behalf. The SNS guide's key statement for AWS event
    // sources carries no condition and none of these services documents sending aws:SourceAccount or
    // aws:SourceArn to KMS through SNS: a condition on them here could drop every RDS event and budget
    // alert without a trace. What SNS always sends is the encryption context naming the topic
    // (`aws:sns:topicArn`, as AWS's own SSE examples condition on, e.g.
    // https://docs.aws.amazon.com/gamelift/latest/flexmatchguide/queue-notification-sns-sse.html), so the
    // key serves exactly this stack's two topics and no topic of another account
    // (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
    const key = customerManagedKey(
      `${prefix}-monitoring`,
      {
        description: `${prefix} alarm and chat notifications (SNS)`,
        alias: `${prefix}-monitoring`,
        env,
        serviceStatements: [
          {
            Sid: 'AlarmSourcesPublishToEncryptedTopics',
            Effect: 'Allow',
            Principal: { Service: publishers },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Resource: '*',
            Condition: { StringEquals: { 'kms:EncryptionContext:aws:sns:topicArn': topicArns } },
          },
          {
            // The escalation state machine is encrypted with this key; CloudWatch Logs' delivery service
            // decrypts its execution events to write them to the log group, for this account's log
            // deliveries only (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-and-resource-policy.html).
            Sid: 'LogDeliveryReadsEscalationHistory',
            Effect: 'Allow',
            Principal: { Service: 'delivery.logs.amazonaws.com' },
            Action: 'kms:Decrypt',
            Resource: '*',
            Condition: { StringEquals: account, ArnLike: { 'aws:SourceArn': pulumi.interpolate`arn:${env.partition}:logs:${env.region}:${env.accountId}:*` } },
          },
        ],
      },
      child,
    );

    const topic = (kind: string, allowedPublishers: string[]) => {
      const created = new aws.sns.Topic(`${prefix}-${kind}`, { name: `${prefix}-${kind}`, kmsMasterKeyId: key.arn }, child);
      new aws.sns.TopicPolicy(
        `${prefix}-${kind}`,
        {
          arn: created.arn,
          policy: policyDocument(
            allowedPublishers.map((service) => {
              const { Sid, Condition } = publisherStatements[service]!;
              return { Sid, Effect: 'Allow', Principal: { Service: service }, Action: 'sns:Publish', Resource: created.arn, Condition };
            }),
          ),
        },
        child,
      );
      return created;
    };
    const chatTopic = topic('chat', ['cloudwatch.amazonaws.com', ...incidentManager]);
    const alarmTopic = topic('alarms', ['cloudwatch.amazonaws.com', 'budgets.amazonaws.com', 'events.rds.amazonaws.com']);
    const email = (topicName: string, topicArn: pulumi.Output<string>) =>
      new aws.sns.TopicSubscription(
        `${prefix}-${topicName}-email`,
        { topic: topicArn, protocol: 'email', endpoint: config.alarmEmail },
        child,
      );
    email('alarms', alarmTopic.arn);

    if (config.chatSlackTeamId && config.chatSlackChannelId) {
      const chatbotRole = new aws.iam.Role(
        `${prefix}-chatbot`,
        {
          name: `${prefix}-chatbot`,
          assumeRolePolicy: policyDocument([
            { Sid: 'ChatbotAssumesRole', Effect: 'Allow', Principal: { Service: 'chatbot.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ]),
        },
        child,
      );
      // Enough to render alarm graphs in the notification; the channel cannot change anything.
      new aws.iam.RolePolicy(
        `${prefix}-chatbot`,
        {
          role: chatbotRole.id,
          policy: policyDocument([
            {
              Sid: 'RenderAlarmGraphs',
              Effect: 'Allow',
              Action: ['cloudwatch:Describe*', 'cloudwatch:Get*', 'cloudwatch:List*'],
              Resource: '*',
            },
          ]),
        },
        child,
      );
      new aws.chatbot.SlackChannelConfiguration(
        `${prefix}-oncall`,
        {
          configurationName: `${prefix}-oncall`,
          iamRoleArn: chatbotRole.arn,
          slackTeamId: config.chatSlackTeamId,
          slackChannelId: config.chatSlackChannelId,
          snsTopicArns: [chatTopic.arn, alarmTopic.arn],
          guardrailPolicyArns: [pulumi.interpolate`arn:${env.partition}:iam::aws:policy/CloudWatchReadOnlyAccess`],
          loggingLevel: 'ERROR',
        },
        child,
      );
    } else {
      // Without Slack, level 1 still reaches a person.
      email('chat', chatTopic.arn);
    }

    const incidentRecords = config.incidentManager
      ? new IncidentRecords(
          `${prefix}-incident-records`,
          { stack, region: env.region, chatTopicArn: chatTopic.arn, createReplicationSet: config.createIncidentManagerReplicationSet ?? true },
          child,
        )
      : undefined;

    for (const metric of Object.values(LOG_METRICS)) {
      const filterName = `${prefix}-${metric.metricName.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}`;
      new aws.cloudwatch.LogMetricFilter(
        filterName,
        {
          name: filterName,
          logGroupName: args.api.logGroupName,
          pattern: eventFilterPattern(metric.events),
          metricTransformation: { namespace, name: metric.metricName, value: '1', unit: 'Count' },
        },
        child,
      );
    }

    // "Identify the source": the client IPs behind login failures, ranked.
    new aws.cloudwatch.ContributorInsightRule(
      `${prefix}-login-failures-by-ip`,
      {
        ruleName: `${prefix}-login-failures-by-ip`,
        ruleState: 'ENABLED',
        ruleDefinition: pulumi.jsonStringify({
          Schema: { Name: 'CloudWatchLogRule', Version: 1 },
          LogGroupNames: [args.api.logGroupName],
          LogFormat: 'JSON',
          Contribution: {
            Keys: ['$.ip'],
            Filters: [{ Match: '$.event', In: [...LOG_METRICS.loginFailures.events] }],
          },
          AggregateOn: 'Count',
        }),
      },
      child,
    );

    new SnapshotAgeCheck(
      `${prefix}-snapshot-age`,
      {
        stack,
        namespace,
        dbInstanceIdentifier: args.database.instanceIdentifier,
        dbInstanceArn: args.database.instanceArn,
        accountId: env.accountId,
        logsKey: args.logs.key,
        logRetentionDays: args.logs.retentionDays,
      },
      child,
    );

    const definitions = alarmDefinitions({
      namespace,
      region: env.region,
      albArnSuffix: args.api.albArnSuffix,
      targetGroupArnSuffix: args.api.targetGroupArnSuffix,
      clusterName: args.api.clusterName,
      serviceName: args.api.serviceName,
      wafWebAclMetricName: args.waf.metricName,
      dbInstanceIdentifier: args.database.instanceIdentifier,
      dbReplicaIdentifier: args.database.replicaIdentifier,
      dbMemoryBytes: args.database.memoryBytes,
      dbMaxConnections: args.database.maxConnections,
      dbAllocatedStorageBytes: args.database.allocatedStorageBytes,
      dbMaxAllocatedStorageBytes: args.database.maxAllocatedStorageBytes,
      certificateArn: args.api.certificateArn,
      backupVaultName: args.backupVaultName,
    });
    const alarmActions = (severity: Severity) => [chatTopic.arn, ...(incidentRecords ? [incidentRecords.responsePlanArns[severity]] : [])];
    const sloObjectives = objectives(args.slo, { namespace, albArnSuffix: args.api.albArnSuffix, targetGroupArnSuffix: args.api.targetGroupArnSuffix });
    const sloAlarms = new SloAlarms(
      `${prefix}-slo`,
      { prefix, objectives: sloObjectives, runbookBaseUrl: config.runbookBaseUrl, alarmActions, okActions: [chatTopic.arn] },
      child,
    );
    // The SLO pages are composite alarms; their window alarms page through them only.
    const alarmNames = [...definitions.map((definition) => `${prefix}-${definition.slug}`), ...sloAlarms.pageNames];
    // Not `${prefix}-escalation`: the state machine and its rule have that name.
    const escalation = new Escalation(
      `${prefix}-escalation-engine`,
      {
        stack,
        env,
        key,
        chatTopicArn: chatTopic.arn,
        alarmTopicArn: alarmTopic.arn,
        alarmNames,
        runbookBaseUrl: config.runbookBaseUrl,
        primaryOnCall: config.primaryOnCall,
        backupOnCall: config.backupOnCall,
        originationIdentity: config.originationIdentity,
        ...(config.webhook ? { webhook: config.webhook } : {}),
        delays: config.levelDelays,
        logsKey: args.logs.key,
        logRetentionDays: args.logs.retentionDays,
      },
      child,
    );

    const alarms = definitions.map((definition) => {
      const alarmName = `${prefix}-${definition.slug}`;
      return new aws.cloudwatch.MetricAlarm(
        alarmName,
        {
          name: alarmName,
          alarmDescription: alarmDescription(definition, config.runbookBaseUrl),
          comparisonOperator: definition.comparison,
          threshold: definition.threshold,
          evaluationPeriods: definition.evaluationPeriods,
          datapointsToAlarm: definition.evaluationPeriods,
          treatMissingData: definition.treatMissingData,
          ...alarmMetricArgs(definition),
          // The transition itself goes to chat; the escalation (started by EventBridge on the state
          // change, not by an action) decides who else is woken, and when.
          alarmActions: alarmActions(definition.severity),
          okActions: [chatTopic.arn],
          tags: { Severity: definition.severity },
        },
        child,
      );
    });

    new aws.rds.EventSubscription(
      `${prefix}-rds-events`,
      {
        name: `${prefix}-rds-events`,
        snsTopic: alarmTopic.arn,
        sourceType: 'db-instance',
        sourceIds: [args.database.instanceIdentifier, ...(args.database.replicaIdentifier !== undefined ? [args.database.replicaIdentifier] : [])],
        eventCategories: [...RDS_EVENT_CATEGORIES],
      },
      child,
    );

    rdsChangeEvents(
      {
        prefix,
        topicArn: alarmTopic.arn,
        instanceIdentifiers: [args.database.instanceIdentifier, ...(args.database.replicaIdentifier !== undefined ? [args.database.replicaIdentifier] : [])],
        parameterGroupName: args.database.parameterGroupName,
      },
      this,
    );

    const dashboard = new aws.cloudwatch.Dashboard(
      `${prefix}-dashboard`,
      {
        dashboardName: prefix,
        dashboardBody: dashboardBody({
          region: env.region,
          namespace,
          albArnSuffix: args.api.albArnSuffix,
          targetGroupArnSuffix: args.api.targetGroupArnSuffix,
          clusterName: args.api.clusterName,
          serviceName: args.api.serviceName,
          dbInstanceIdentifier: args.database.instanceIdentifier,
          dbReplicaIdentifier: args.database.replicaIdentifier,
          alarmArns: [...alarms.map((alarm) => alarm.arn), ...sloAlarms.pageArns],
          logGroupName: args.api.logGroupName,
          objectives: sloObjectives,
        }),
      },
      child,
    );

    this.alarmTopicArn = alarmTopic.arn;
    this.chatTopicArn = chatTopic.arn;
    this.alarmNames = alarmNames;
    this.dashboardName = dashboard.dashboardName;
    this.escalationStateMachineArn = escalation.stateMachineArn;
    this.acknowledgeUrl = escalation.acknowledgeUrl;
    if (incidentRecords) this.responsePlanArns = incidentRecords.responsePlanArns;
    this.registerOutputs({
      alarmTopicArn: this.alarmTopicArn,
      chatTopicArn: this.chatTopicArn,
      alarmNames: this.alarmNames,
      dashboardName: this.dashboardName,
      escalationStateMachineArn: this.escalationStateMachineArn,
      acknowledgeUrl: this.acknowledgeUrl,
    });
  }
}
