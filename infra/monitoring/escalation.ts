// Who is woken, how, and when: Systems Manager Incident Manager contacts, engagement and
// escalation plans, and one response plan per severity. The policy (platform brief):
//   level 1  chat, at once                                  P0 P1 P2 P3
//   level 2  e-mail to the on-call engineer after 5 min     P0 P1 P2
//   level 3  SMS to the on-call engineer after 10 min       P0 P1
//   level 4  phone call to the backup engineer after 15 min P0 P1
// Acknowledging an engagement stops the later levels.
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { namePrefix, type OnCallContact } from '../config.js';
import type { Severity } from './alarms.js';

export interface EscalationArgs {
  /** Stack name: contacts, plans and response plans are named `dms-<stack>-…`. */
  stack: string;
  /** The stack's region, where the Incident Manager replication set lives. */
  region: string;
  /** The engineer on call: e-mail after 5 minutes, then SMS after 10. */
  primaryOnCall: OnCallContact;
  /** The engineer phoned after 15 minutes when the on-call engineer has not acknowledged. */
  backupOnCall: OnCallContact;
  /** SNS topic AWS Chatbot relays to the chat channel: level 1 and incident updates. */
  chatTopicArn: pulumi.Input<string>;
  /**
   * Create the account's Incident Manager replication set. An account has exactly one, and
   * contacts and response plans need it: leave true when each stack has its own account (the
   * recommended layout for PHI), set false in every stack but one when stacks share an account.
   */
  createReplicationSet: boolean;
}

/** Minutes from the start of an incident to each level. */
const EMAIL_AFTER_MINUTES = 5;
const SMS_AFTER_MINUTES = 10;
const CALL_BACKUP_AFTER_MINUTES = 15;

/** Incident Manager impact: 1 critical, 2 high, 3 medium, 4 low. */
const IMPACT: Record<Severity, number> = { P0: 1, P1: 2, P2: 3, P3: 4 };

/** The severity model, as incident summaries state it. */
const SEVERITY_MEANING: Record<Severity, string> = {
  P0: 'outage, suspected breach or PHI exposure, or audit-log failure',
  P1: 'degraded performance, database connectivity, auth system failure, or backup failure',
  P2: 'minor degradation',
  P3: 'cosmetic issue',
};

/** Incident Manager display names allow letters, digits, `_`, `-`, `.` and spaces only. */
function displayName(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9_. -]/g, '')
    .trim()
    .slice(0, 255);
}

export class Escalation extends pulumi.ComponentResource {
  /** Response plan ARN per severity: the CloudWatch alarm action that opens an incident. */
  public readonly responsePlanArns: Record<Severity, pulumi.Output<string>>;
  /** Escalation plan engaged for P0 and P1 (levels 2 to 4). */
  public readonly pagingPlanArn: pulumi.Output<string>;
  /** Escalation plan engaged for P2 (level 2 only). */
  public readonly emailPlanArn: pulumi.Output<string>;

  constructor(name: string, args: EscalationArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:monitoring:Escalation', name, {}, opts);
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
    const incidentManager: pulumi.CustomResourceOptions = {
      parent: this,
      dependsOn: replicationSet ? [replicationSet] : [],
    };

    /** A PERSONAL contact whose engagement plan tries `steps` in order, each `nextAfterMinutes` before the next. */
    const person = (
      key: string,
      engineer: OnCallContact,
      role: string,
      steps: { type: 'EMAIL' | 'SMS' | 'VOICE'; nextAfterMinutes: number }[],
    ) => {
      const contact = new aws.ssmcontacts.Contact(
        `${prefix}-${key}`,
        { alias: `${prefix}-${key}`, displayName: displayName(`${engineer.name} ${role}`), type: 'PERSONAL' },
        incidentManager,
      );
      const channels = steps.map(
        ({ type }) =>
          new aws.ssmcontacts.ContactChannel(
            `${prefix}-${key}-${type.toLowerCase()}`,
            {
              contactId: contact.arn,
              name: `${key}-${type.toLowerCase()}`,
              type,
              // Phone numbers are config secrets: keep them encrypted in the state too.
              deliveryAddress: { simpleAddress: type === 'EMAIL' ? engineer.email : pulumi.secret(engineer.phone) },
            },
            { parent: this },
          ),
      );
      new aws.ssmcontacts.Plan(
        `${prefix}-${key}-engagement`,
        {
          contactId: contact.arn,
          stages: steps.map(({ nextAfterMinutes }, index) => ({
            durationInMinutes: nextAfterMinutes,
            targets: [{ channelTargetInfo: { contactChannelId: channels[index]!.arn } }],
          })),
        },
        { parent: this },
      );
      return contact;
    };

    // Escalation plans engage contacts, never channels, and a contact's engagement plan runs to its
    // end unless acknowledged: P2's e-mail-only level needs a contact whose plan is e-mail alone.
    const primary = person('oncall-primary', args.primaryOnCall, 'on-call', [
      { type: 'EMAIL', nextAfterMinutes: SMS_AFTER_MINUTES - EMAIL_AFTER_MINUTES },
      { type: 'SMS', nextAfterMinutes: 0 },
    ]);
    const primaryEmailOnly = person('oncall-email-only', args.primaryOnCall, 'on-call e-mail', [
      { type: 'EMAIL', nextAfterMinutes: 0 },
    ]);
    const backup = person('oncall-backup', args.backupOnCall, 'backup', [{ type: 'VOICE', nextAfterMinutes: 0 }]);

    /**
     * An ESCALATION contact: level 1 (chat) has the first minutes to itself, then `ladder` is
     * engaged. Resolving the incident, or an essential contact acknowledging, ends the plan.
     */
    const escalationPlan = (key: string, ladder: { contact: aws.ssmcontacts.Contact; nextAfterMinutes: number }[]) => {
      const plan = new aws.ssmcontacts.Contact(
        `${prefix}-${key}`,
        { alias: `${prefix}-${key}`, displayName: displayName(`DMS ${args.stack} ${key}`), type: 'ESCALATION' },
        incidentManager,
      );
      new aws.ssmcontacts.Plan(
        `${prefix}-${key}-stages`,
        {
          contactId: plan.arn,
          stages: [
            { durationInMinutes: EMAIL_AFTER_MINUTES },
            ...ladder.map(({ contact, nextAfterMinutes }) => ({
              durationInMinutes: nextAfterMinutes,
              targets: [{ contactTargetInfo: { contactId: contact.arn, isEssential: true } }],
            })),
          ],
        },
        { parent: this },
      );
      return plan;
    };

    const paging = escalationPlan('escalation-page', [
      { contact: primary, nextAfterMinutes: CALL_BACKUP_AFTER_MINUTES - EMAIL_AFTER_MINUTES },
      { contact: backup, nextAfterMinutes: 0 },
    ]);
    const emailOnly = escalationPlan('escalation-email', [{ contact: primaryEmailOnly, nextAfterMinutes: 0 }]);

    const engagements: Record<Severity, pulumi.Input<string>[]> = {
      P0: [paging.arn],
      P1: [paging.arn],
      P2: [emailOnly.arn],
      P3: [],
    };
    const responsePlan = (severity: Severity) =>
      new aws.ssmincidents.ResponsePlan(
        `${prefix}-${severity.toLowerCase()}`,
        {
          name: `${prefix}-${severity.toLowerCase()}`,
          displayName: `DMS ${args.stack} ${severity}`,
          incidentTemplate: {
            title: `DMS ${args.stack} ${severity} incident`,
            impact: IMPACT[severity],
            summary: `${severity} (${SEVERITY_MEANING[severity]}). The alarm in the related items links its runbook section.`,
            incidentTags: { Severity: severity, Stack: args.stack },
          },
          chatChannels: [args.chatTopicArn],
          engagements: engagements[severity],
          tags: { Severity: severity },
        },
        incidentManager,
      );

    this.responsePlanArns = {
      P0: responsePlan('P0').arn,
      P1: responsePlan('P1').arn,
      P2: responsePlan('P2').arn,
      P3: responsePlan('P3').arn,
    };
    this.pagingPlanArn = paging.arn;
    this.emailPlanArn = emailOnly.arn;
    this.registerOutputs({
      responsePlanArns: this.responsePlanArns,
      pagingPlanArn: this.pagingPlanArn,
      emailPlanArn: this.emailPlanArn,
    });
  }
}
