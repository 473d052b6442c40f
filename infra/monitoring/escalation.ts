/**
 * Who is woken, how, and when: the escalation engine on AWS Step Functions (Standard workflows),
 * open to every account (AWS Systems Manager Incident Manager is closed to new customers since
 * 7 November 2025: https://docs.aws.amazon.com/incident-manager/latest/userguide/incident-manager-availability-change.html).
 *
 * EventBridge starts one execution of `dms-<stack>-escalation` for each of the stack's alarms that
 * enters ALARM (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html).
 * The execution climbs the levels of `escalation/levels.ts` as far as the alarm's severity allows:
 * chat on the chat topic (Amazon Q Developer in chat applications), e-mail on the page-email topic,
 * SMS and a voice call through AWS End User Messaging SMS and Voice v2 (`SendTextMessage`,
 * `SendVoiceMessage`) from the origination identity of the stack config. Every message carries a
 * one-time, expiring acknowledge link (the `dms-<stack>-escalation-ack` function URL); an
 * acknowledgement, or the alarm back in OK (rule and function `dms-<stack>-escalation-ok`), ends
 * the climb. `dms-<stack>-escalation-failed` reports
 * a broken engine to the alarm topic, never through the engine itself.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { randomBytes } from 'node:crypto';
import { namePrefix, type AwsEnvironment, type OnCallContact } from '../config.js';
import { policyDocument, trustPolicy, type PolicyStatement } from '../iam.js';
import { ON_FIRST_FAILURE } from './alarms.js';
import { ACK_KEY_MIN_BYTES } from './escalation/ack-token.js';
import { bundledEscalationHandler } from './escalation/bundle.js';
import { escalationDefinition } from './escalation/definition.js';
import type { EscalationContacts } from './escalation/handler.js';
import type { LevelDelays } from './escalation/levels.js';

/**
 * What a state machine's role needs to deliver its logs: CloudWatch Logs offers these on `*` only
 * (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy).
 */
export const LOG_DELIVERY_ACTIONS = [
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
] as const;

/** Where the alarm description links the engine's own runbook section. */
export const ESCALATION_FAILED_RUNBOOK = 'paging.md#escalation-failed';

export interface EscalationArgs {
  /** Stack name: every resource is named `dms-<stack>-escalation…`. */
  stack: string;
  /** Account, partition and region. */
  env: AwsEnvironment;
  /** The monitoring key: encrypts the e-mail topic, the two secrets and the acknowledgement table. */
  key: aws.kms.Key;
  /** Level-1 topic (Amazon Q Developer in chat applications, or `alarmEmail` without Slack). */
  chatTopicArn: pulumi.Input<string>;
  /** Topic of the alarm e-mail address and chat: where a failure of the engine itself is reported. */
  alarmTopicArn: pulumi.Input<string>;
  /** Names of the alarms that start an escalation when they enter ALARM. */
  alarmNames: pulumi.Input<string>[];
  /** Base URL the engine's alarm links its runbook under. */
  runbookBaseUrl: string;
  /** The engineer on call: e-mail at level 2, SMS at level 3. */
  primaryOnCall: OnCallContact;
  /** The engineer called at level 4. */
  backupOnCall: OnCallContact;
  /** AWS End User Messaging SMS and Voice phone number or pool (id or ARN) SMS and calls come from. */
  originationIdentity: string;
  /** Optional PagerDuty Events API v2 webhook, sent at level 1. */
  webhook?: { url: string; routingKey: string };
  /** Minutes after the alarm for levels 2, 3 and 4. */
  delays: LevelDelays;
  /** Encrypts the functions' log groups. */
  logsKey: aws.kms.Key;
  logRetentionDays: number;
}

/** The ARN of an origination identity given as an id (`phone-…`, `pool-…`) or already as an ARN. */
export function originationIdentityArn(identity: string, env: AwsEnvironment): pulumi.Output<string> {
  if (identity.startsWith('arn:')) return pulumi.output(identity);
  const kind = identity.startsWith('pool-') ? 'pool' : 'phone-number';
  return pulumi.interpolate`arn:${env.partition}:sms-voice:${env.region}:${env.accountId}:${kind}/${identity}`;
}

export class Escalation extends pulumi.ComponentResource {
  public readonly stateMachineArn: pulumi.Output<string>;
  public readonly acknowledgeUrl: pulumi.Output<string>;

  constructor(name: string, args: EscalationArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:monitoring:Escalation', name, {}, opts);
    const child = { parent: this };
    const { env } = args;
    const prefix = `${namePrefix(args.stack)}-escalation`;
    const arn = (service: string, resource: string) => pulumi.interpolate`arn:${env.partition}:${service}:${env.region}:${env.accountId}:${resource}`;
    const stateMachineName = prefix;
    const stateMachineArn = arn('states', `stateMachine:${stateMachineName}`);

    const emailTopic = new aws.sns.Topic(`${namePrefix(args.stack)}-page-email`, { name: `${namePrefix(args.stack)}-page-email`, kmsMasterKeyId: args.key.arn }, child);
    // The on-call engineer confirms this subscription once (the link in AWS's e-mail); the address is a secret.
    new aws.sns.TopicSubscription(
      `${namePrefix(args.stack)}-page-email-primary`,
      { topic: emailTopic.arn, protocol: 'email', endpoint: pulumi.secret(args.primaryOnCall.email) },
      child,
    );

    const ackKeySecret = new aws.secretsmanager.Secret(
      `${prefix}-ack-key`,
      { name: `${namePrefix(args.stack)}/escalation-ack-key`, description: 'HMAC key of the escalation acknowledge links', kmsKeyId: args.key.arn, recoveryWindowInDays: 7 },
      child,
    );
    new aws.secretsmanager.SecretVersion(
      `${prefix}-ack-key`,
      // Generated once; rotating it (put a new value) only invalidates links already sent.
      { secretId: ackKeySecret.id, secretString: pulumi.secret(randomBytes(ACK_KEY_MIN_BYTES).toString('base64url')) },
      { ...child, ignoreChanges: ['secretString'] },
    );
    const contactsSecret = new aws.secretsmanager.Secret(
      `${prefix}-contacts`,
      { name: `${namePrefix(args.stack)}/escalation-contacts`, description: 'Phones of the on-call engineers and the paging webhook (from the stack config secrets)', kmsKeyId: args.key.arn, recoveryWindowInDays: 7 },
      child,
    );
    const contacts: EscalationContacts = {
      primaryOnCall: { name: args.primaryOnCall.name, phone: args.primaryOnCall.phone },
      backupOnCall: { name: args.backupOnCall.name, phone: args.backupOnCall.phone },
      ...(args.webhook ? { webhook: args.webhook } : {}),
    };
    new aws.secretsmanager.SecretVersion(`${prefix}-contacts`, { secretId: contactsSecret.id, secretString: pulumi.secret(JSON.stringify(contacts)) }, child);

    const ackTable = new aws.dynamodb.Table(
      `${prefix}-acks`,
      {
        name: `${prefix}-acks`,
        billingMode: 'PAY_PER_REQUEST',
        hashKey: 'execution',
        attributes: [{ name: 'execution', type: 'S' }],
        serverSideEncryption: { enabled: true, kmsKeyArn: args.key.arn },
        ttl: { attributeName: 'expiresAt', enabled: true },
      },
      child,
    );

    const bundle = new pulumi.asset.AssetArchive({ 'index.mjs': new pulumi.asset.StringAsset(bundledEscalationHandler()) });
    const commonEnv = {
      STACK: args.stack,
      CHAT_TOPIC_ARN: args.chatTopicArn,
      EMAIL_TOPIC_ARN: emailTopic.arn,
      ORIGINATION_IDENTITY: args.originationIdentity,
      ACK_TABLE_NAME: ackTable.name,
      ACK_KEY_SECRET_ARN: ackKeySecret.arn,
      CONTACTS_SECRET_ARN: contactsSecret.arn,
    };
    const lambdaFunction = (kind: 'step' | 'ack' | 'ok', statements: pulumi.Input<PolicyStatement>[], settings: { handler: string; description: string; timeout: number; environment: Record<string, pulumi.Input<string>> }) => {
      const functionName = `${prefix}-${kind}`;
      const logGroup = new aws.cloudwatch.LogGroup(functionName, { name: `/aws/lambda/${functionName}`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn }, child);
      const role = new aws.iam.Role(functionName, { name: functionName, assumeRolePolicy: trustPolicy('lambda.amazonaws.com', env.accountId) }, child);
      new aws.iam.RolePolicy(
        functionName,
        {
          role: role.id,
          policy: policyDocument([
            ...statements,
            { Sid: 'WriteOwnLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: pulumi.interpolate`${logGroup.arn}:*` },
          ]),
        },
        child,
      );
      return new aws.lambda.Function(
        functionName,
        {
          name: functionName,
          description: settings.description,
          runtime: aws.lambda.Runtime.NodeJS22dX,
          architectures: ['arm64'],
          handler: settings.handler,
          code: bundle,
          role: role.arn,
          timeout: settings.timeout,
          memorySize: 256,
          environment: { variables: { ...commonEnv, ...settings.environment } },
          // Text: the handlers write their own JSON lines, which metric filters read as `$.event`.
          loggingConfig: { logFormat: 'Text', logGroup: logGroup.name },
        },
        { ...child, dependsOn: [logGroup] },
      );
    };
    const readSecrets = (secrets: aws.secretsmanager.Secret[]): pulumi.Input<PolicyStatement>[] => [
      { Sid: 'ReadEscalationSecrets', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secrets.map((secret) => secret.arn) },
      { Sid: 'DecryptWithMonitoringKey', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: args.key.arn },
    ];

    const ack = lambdaFunction(
      'ack',
      [
        ...readSecrets([ackKeySecret]),
        { Sid: 'RecordAcknowledgementOnce', Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: ackTable.arn },
        { Sid: 'StopAcknowledgedEscalation', Effect: 'Allow', Action: 'states:StopExecution', Resource: arn('states', `execution:${stateMachineName}:*`) },
      ],
      { handler: 'index.acknowledge', description: 'Acknowledge links of the paging escalation (function URL)', timeout: 10, environment: { STATE_MACHINE_ARN: stateMachineArn } },
    );
    const url = new aws.lambda.FunctionUrl(`${prefix}-ack`, { functionName: ack.name, authorizationType: 'NONE' }, child);
    // A public URL needs both permissions since October 2025; the second is usable through the URL
    // only, so nobody can invoke the function through the Lambda API.
    // https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html
    new aws.lambda.Permission(`${prefix}-ack-url`, { function: ack.name, action: 'lambda:InvokeFunctionUrl', principal: '*', functionUrlAuthType: 'NONE' }, child);
    new aws.lambda.Permission(`${prefix}-ack-url-invoke`, { function: ack.name, action: 'lambda:InvokeFunction', principal: '*', invokedViaFunctionUrl: true }, child);

    const originationArn = originationIdentityArn(args.originationIdentity, env);
    const step = lambdaFunction(
      'step',
      [
        ...readSecrets([ackKeySecret, contactsSecret]),
        { Sid: 'PostChatAndEmail', Effect: 'Allow', Action: 'sns:Publish', Resource: [args.chatTopicArn, emailTopic.arn] },
        // The topics are encrypted with the monitoring key: publishing needs GenerateDataKey and Decrypt (granted above).
        {
          // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsendusermessagingsmsandvoicev2.html
          Sid: 'TextAndCallFromTheOriginationIdentity',
          Effect: 'Allow',
          Action: ['sms-voice:SendTextMessage', 'sms-voice:SendVoiceMessage'],
          Resource: [originationArn, arn('sms-voice', 'opt-out-list/*')],
        },
        { Sid: 'ReadAlarmStateAndSeverity', Effect: 'Allow', Action: ['cloudwatch:DescribeAlarms', 'cloudwatch:ListTagsForResource'], Resource: arn('cloudwatch', `alarm:${namePrefix(args.stack)}-*`) },
        { Sid: 'ReadAcknowledgement', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: ackTable.arn },
      ],
      { handler: 'index.step', description: 'Classifies alarms and sends each paging level', timeout: 30, environment: { ACK_URL: url.functionUrl } },
    );

    // The state machine's definition and execution history are encrypted with the monitoring key, and
    // every execution is logged (FSBP StepFunctions.1): who was paged at which level, and why a step
    // failed, outlive the 90 days Step Functions keeps a history. What a principal needs with a
    // customer managed key follows https://docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html:
    // KMS use bound to this state machine by its encryption context, and for the logs a data key bound
    // to this account's log groups.
    const stateMachineKeyUse = (actions: string[]): PolicyStatement => ({
      Sid: 'UseTheStateMachineKey',
      Effect: 'Allow',
      Action: actions,
      Resource: args.key.arn,
      Condition: { StringEquals: { 'kms:EncryptionContext:aws:states:stateMachineArn': stateMachineArn } },
    });
    const executionLog = new aws.cloudwatch.LogGroup(
      `${prefix}-executions`,
      // The vended-logs prefix keeps CloudWatch Logs' resource policy for Step Functions small
      // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-and-resource-policy.html).
      { name: `/aws/vendedlogs/states/${stateMachineName}`, retentionInDays: args.logRetentionDays, kmsKeyId: args.logsKey.arn },
      child,
    );
    const stateMachineRole = new aws.iam.Role(`${prefix}-states`, { name: `${prefix}-states`, assumeRolePolicy: trustPolicy('states.amazonaws.com', env.accountId) }, child);
    new aws.iam.RolePolicy(
      `${prefix}-states`,
      {
        role: stateMachineRole.id,
        policy: policyDocument([
          { Sid: 'RunTheSteps', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: step.arn },
          stateMachineKeyUse(['kms:Decrypt', 'kms:GenerateDataKey']),
          {
            Sid: 'EncryptExecutionLogs',
            Effect: 'Allow',
            Action: 'kms:GenerateDataKey',
            Resource: args.key.arn,
            Condition: { StringLike: { 'kms:EncryptionContext:SourceArn': arn('logs', '*') } },
          },
          // CloudWatch Logs grants log delivery on no resource narrower than `*`
          // (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy).
          {
            Sid: 'DeliverExecutionLogs',
            Effect: 'Allow',
            Action: [...LOG_DELIVERY_ACTIONS],
            Resource: '*',
          },
        ]),
      },
      child,
    );
    const stateMachine = new aws.sfn.StateMachine(
      prefix,
      {
        name: stateMachineName,
        type: 'STANDARD',
        roleArn: stateMachineRole.arn,
        definition: step.arn.apply((stepFunctionArn) => JSON.stringify(escalationDefinition({ stepFunctionArn, delays: args.delays }))),
        encryptionConfiguration: { type: 'CUSTOMER_MANAGED_KMS_KEY', kmsKeyId: args.key.arn, kmsDataKeyReusePeriodSeconds: 300 },
        // ALL: every transition with its time, the record of who was paged when; without execution
        // data, so no alarm text or step result is copied into another log.
        loggingConfiguration: { level: 'ALL', includeExecutionData: false, logDestination: pulumi.interpolate`${executionLog.arn}:*` },
      },
      { ...child, dependsOn: [executionLog] },
    );

    // An alarm back in OK stops its escalations at once (the next level would end them anyway,
    // having sent nothing; this ends them without waiting).
    const resolved = lambdaFunction(
      'ok',
      [
        { Sid: 'FindRunningEscalations', Effect: 'Allow', Action: 'states:ListExecutions', Resource: stateMachineArn },
        { Sid: 'StopEscalationsOfResolvedAlarms', Effect: 'Allow', Action: ['states:DescribeExecution', 'states:StopExecution'], Resource: arn('states', `execution:${stateMachineName}:*`) },
        stateMachineKeyUse(['kms:Decrypt', 'kms:GenerateDataKey']),
      ],
      { handler: 'index.resolved', description: 'Stops the escalations of an alarm that returned to OK', timeout: 30, environment: { STATE_MACHINE_ARN: stateMachineArn } },
    );
    const okRule = new aws.cloudwatch.EventRule(
      `${prefix}-ok`,
      {
        name: `${prefix}-ok`,
        description: 'Stops the escalations of each of the stack’s alarms that returns to OK',
        eventPattern: pulumi.jsonStringify({
          source: ['aws.cloudwatch'],
          'detail-type': ['CloudWatch Alarm State Change'],
          detail: { alarmName: args.alarmNames, state: { value: ['OK'] } },
        }),
      },
      child,
    );
    new aws.lambda.Permission(`${prefix}-ok`, { function: resolved.name, action: 'lambda:InvokeFunction', principal: 'events.amazonaws.com', sourceArn: okRule.arn }, child);
    new aws.cloudwatch.EventTarget(`${prefix}-ok`, { rule: okRule.name, arn: resolved.arn, retryPolicy: { maximumRetryAttempts: 20, maximumEventAgeInSeconds: 900 } }, child);

    const eventsRole = new aws.iam.Role(`${prefix}-events`, { name: `${prefix}-events`, assumeRolePolicy: trustPolicy('events.amazonaws.com', env.accountId) }, child);
    new aws.iam.RolePolicy(
      `${prefix}-events`,
      {
        role: eventsRole.id,
        policy: policyDocument([
          { Sid: 'StartEscalations', Effect: 'Allow', Action: 'states:StartExecution', Resource: stateMachine.arn },
          // Starting an execution of an encrypted state machine encrypts its input with the key.
          stateMachineKeyUse(['kms:GenerateDataKey']),
        ]),
      },
      child,
    );
    const rule = new aws.cloudwatch.EventRule(
      prefix,
      {
        name: prefix,
        description: 'Starts one escalation for each of the stack’s alarms that enters ALARM',
        eventPattern: pulumi.jsonStringify({
          source: ['aws.cloudwatch'],
          'detail-type': ['CloudWatch Alarm State Change'],
          detail: { alarmName: args.alarmNames, state: { value: ['ALARM'] } },
        }),
      },
      child,
    );
    new aws.cloudwatch.EventTarget(
      prefix,
      { rule: rule.name, arn: stateMachine.arn, roleArn: eventsRole.arn, retryPolicy: { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 3600 } },
      child,
    );

    // The engine cannot page about itself: a failed execution or step goes to the alarm topic
    // (alarm e-mail and chat), and is not in the rule's alarm names.
    const failedAlarm = `${namePrefix(args.stack)}-escalation-failed`;
    new aws.cloudwatch.MetricAlarm(
      failedAlarm,
      {
        name: failedAlarm,
        alarmDescription: `P1: Paging is broken: an escalation execution or step failed, so someone may not have been woken. Runbook: ${args.runbookBaseUrl.replace(/\/+$/, '')}/runbooks/${ESCALATION_FAILED_RUNBOOK}`,
        ...ON_FIRST_FAILURE,
        metricQueries: [
          { id: 'failures', expression: 'FILL(executions, 0) + FILL(steps, 0)', label: 'Failed escalation executions and steps', returnData: true },
          {
            id: 'executions',
            metric: { namespace: 'AWS/States', metricName: 'ExecutionsFailed', dimensions: { StateMachineArn: stateMachine.arn }, period: 300, stat: 'Sum' },
          },
          {
            id: 'steps',
            metric: { namespace: 'AWS/Lambda', metricName: 'Errors', dimensions: { FunctionName: step.name }, period: 300, stat: 'Sum' },
          },
        ],
        alarmActions: [args.alarmTopicArn],
        okActions: [args.alarmTopicArn],
        tags: { Severity: 'P1' },
      },
      child,
    );

    this.stateMachineArn = stateMachine.arn;
    this.acknowledgeUrl = url.functionUrl;
    this.registerOutputs({ stateMachineArn: this.stateMachineArn, acknowledgeUrl: this.acknowledgeUrl });
  }
}
