/**
 * RDS event subscriptions for changes to the database, its parameter group and (legacy) DB
 * security groups, to the alarm topic (e-mail and chat): who changed the database's configuration
 * or maintenance state is something on-call hears about. They are what Security Hub's FSBP controls
 * RDS.20, RDS.21 and RDS.22 look for, with exactly these source types and categories
 * (https://docs.aws.amazon.com/securityhub/latest/userguide/rds-controls.html). The availability
 * events the runbooks act on stay in `dms-<stack>-rds-events`.
 */
import * as aws from '@pulumi/aws';
import type * as pulumi from '@pulumi/pulumi';

/** Source type → the event categories FSBP requires a subscription to carry. */
export const FSBP_RDS_EVENT_SUBSCRIPTIONS = {
  'db-instance': { slug: 'rds-instance-changes', control: 'RDS.20', categories: ['maintenance', 'configuration change', 'failure'] },
  'db-parameter-group': { slug: 'rds-parameter-group-changes', control: 'RDS.21', categories: ['configuration change'] },
  'db-security-group': { slug: 'rds-security-group-changes', control: 'RDS.22', categories: ['configuration change', 'failure'] },
} as const;

export interface RdsChangeEventsArgs {
  /** `dms-<stack>`. */
  prefix: string;
  /** The alarm topic (e-mail and chat). */
  topicArn: pulumi.Input<string>;
  /** The primary and the replica. */
  instanceIdentifiers: pulumi.Input<string>[];
  /** The stack's parameter group. */
  parameterGroupName: pulumi.Input<string>;
}

/** Creates the three subscriptions as children of `parent`. */
export function rdsChangeEvents(args: RdsChangeEventsArgs, parent: pulumi.Resource): void {
  // DB security groups exist only outside a VPC: no source ids, so any the account ever has is covered.
  const sourceIds: Record<keyof typeof FSBP_RDS_EVENT_SUBSCRIPTIONS, pulumi.Input<string>[] | undefined> = {
    'db-instance': args.instanceIdentifiers,
    'db-parameter-group': [args.parameterGroupName],
    'db-security-group': undefined,
  };
  for (const [sourceType, { slug, categories }] of Object.entries(FSBP_RDS_EVENT_SUBSCRIPTIONS) as [keyof typeof FSBP_RDS_EVENT_SUBSCRIPTIONS, (typeof FSBP_RDS_EVENT_SUBSCRIPTIONS)[keyof typeof FSBP_RDS_EVENT_SUBSCRIPTIONS]][]) {
    const ids = sourceIds[sourceType];
    new aws.rds.EventSubscription(
      `${args.prefix}-${slug}`,
      { name: `${args.prefix}-${slug}`, snsTopic: args.topicArn, sourceType, eventCategories: [...categories], enabled: true, ...(ids ? { sourceIds: ids } : {}) },
      { parent },
    );
  }
}
