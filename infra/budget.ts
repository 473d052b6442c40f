/**
 * The stack's monthly AWS cost budget: e-mail and the alarm topic hear about it at 80% and 100% of
 * actual spend and when the month's forecast passes 100% (runbooks/cost-review.md#budget-alert).
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { namePrefix } from './config.js';

export interface BudgetArgs {
  /** Stack name: the budget is `dms-<stack>-monthly`. */
  stack: string;
  /** Monthly limit in USD (config `budget.monthlyUsd`). */
  monthlyUsd: number;
  /** Addresses notified (config `budget.notifyEmails`). */
  notifyEmails: string[];
  /** The monitoring alarm topic, which relays budget alerts to the chat channel and the alarm e-mail. */
  alarmTopicArn: pulumi.Input<string>;
  /**
   * Cost allocation tag that tells this stack's spend from other stacks' in the account, e.g.
   * `{ key: 'Environment', value: 'production' }` (activate it in Billing first). Without it the
   * budget covers the whole account.
   */
  costAllocationTag?: { key: string; value: string };
}

/** When the budget notifies: share of the limit, on actual or forecast spend. */
export const BUDGET_NOTIFICATIONS = [
  { thresholdPercent: 80, spend: 'ACTUAL' },
  { thresholdPercent: 100, spend: 'ACTUAL' },
  { thresholdPercent: 100, spend: 'FORECASTED' },
] as const;

export class Budget extends pulumi.ComponentResource {
  readonly budgetName: pulumi.Output<string>;

  constructor(name: string, args: BudgetArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:budget:Budget', name, {}, opts);
    const tag = args.costAllocationTag;
    const budget = new aws.budgets.Budget(
      `${namePrefix(args.stack)}-monthly`,
      {
        name: `${namePrefix(args.stack)}-monthly`,
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        limitAmount: args.monthlyUsd.toFixed(2),
        limitUnit: 'USD',
        ...(tag ? { costFilters: [{ name: 'TagKeyValue', values: [`user:${tag.key}$${tag.value}`] }] } : {}),
        notifications: BUDGET_NOTIFICATIONS.map(({ thresholdPercent, spend }) => ({
          notificationType: spend,
          comparisonOperator: 'GREATER_THAN',
          threshold: thresholdPercent,
          thresholdType: 'PERCENTAGE',
          subscriberEmailAddresses: args.notifyEmails,
          subscriberSnsTopicArns: [args.alarmTopicArn],
        })),
      },
      { parent: this },
    );
    this.budgetName = budget.name;
    this.registerOutputs({ budgetName: this.budgetName });
  }
}
