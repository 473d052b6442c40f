/**
 * Optional Incident Manager records (`dms:monitoring.incidentManager: true`), for accounts that
 * already use AWS Systems Manager Incident Manager. It is closed to new customers since 7 November
 * 2025 (https://docs.aws.amazon.com/incident-manager/latest/userguide/incident-manager-availability-change.html),
 * so a fresh account cannot create the replication set, and its contact channels page nobody until
 * each person types an activation code. Paging therefore never depends on it: the Step Functions
 * escalation pages for every alarm, and these response plans only open an incident record (timeline,
 * chat channel, post-incident analysis) with no engagements of their own.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { namePrefix } from '../config.js';
import type { Severity } from './alarms.js';

export interface IncidentRecordsArgs {
  /** Stack name: response plans are named `dms-<stack>-p0` … `dms-<stack>-p3`. */
  stack: string;
  /** The stack's region, where the replication set lives. */
  region: string;
  /** Chat topic the incidents post updates to. */
  chatTopicArn: pulumi.Input<string>;
  /**
   * Create the account's replication set (an account has exactly one): false in every stack but one
   * that share an account.
   */
  createReplicationSet: boolean;
}

/** Incident Manager impact: 1 critical, 2 high, 3 medium, 4 low. */
const IMPACT: Record<Severity, number> = { P0: 1, P1: 2, P2: 3, P3: 4 };

/** The severity model, as incident summaries state it. */
const SEVERITY_MEANING: Record<Severity, string> = {
  P0: 'outage, suspected breach or PHI exposure, or audit-log failure',
  P1: 'degraded performance, database connectivity, auth system failure, or backup failure',
  P2: 'minor degradation',
  P3: 'cosmetic issue',
};

export class IncidentRecords extends pulumi.ComponentResource {
  /** Response plan ARN per severity: a CloudWatch alarm action that opens an incident record. */
  public readonly responsePlanArns: Record<Severity, pulumi.Output<string>>;

  constructor(name: string, args: IncidentRecordsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:monitoring:IncidentRecords', name, {}, opts);
    const prefix = namePrefix(args.stack);
    const replicationSet = args.createReplicationSet
      ? new aws.ssmincidents.ReplicationSet(
          `${prefix}-incident-manager`,
          { regions: [{ name: args.region }] },
          // Deleting the replication set deletes every incident record of the account, the
          // timeline a breach investigation needs: destroying the stack leaves it in place.
          { parent: this, retainOnDelete: true },
        )
      : undefined;
    const responsePlan = (severity: Severity) =>
      new aws.ssmincidents.ResponsePlan(
        `${prefix}-${severity.toLowerCase()}`,
        {
          name: `${prefix}-${severity.toLowerCase()}`,
          displayName: `DMS ${args.stack} ${severity}`,
          incidentTemplate: {
            title: `DMS ${args.stack} ${severity} incident`,
            impact: IMPACT[severity],
            summary: `${severity} (${SEVERITY_MEANING[severity]}). The alarm in the related items links its runbook section; paging runs on the dms-${args.stack}-escalation state machine.`,
            incidentTags: { Severity: severity, Stack: args.stack },
          },
          chatChannels: [args.chatTopicArn],
          tags: { Severity: severity },
        },
        { parent: this, dependsOn: replicationSet ? [replicationSet] : [] },
      );
    this.responsePlanArns = {
      P0: responsePlan('P0').arn,
      P1: responsePlan('P1').arn,
      P2: responsePlan('P2').arn,
      P3: responsePlan('P3').arn,
    };
    this.registerOutputs({ responsePlanArns: this.responsePlanArns });
  }
}
