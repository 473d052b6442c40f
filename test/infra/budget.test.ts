// The stack's cost budget, planned offline from the stack files (issue 6: "a monthly cost budget
// from config with notifications at 80% and 100% of actual and 100% of forecast to the on-call
// e-mail and the alarm topic").
import { strict as assert } from 'node:assert';
import { planStack, planWithConfig, type Plan, type PlanResource } from '../../infra/plan.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';

/** The brief: 80% and 100% of actual spend, 100% of forecast. */
const EXPECTED_NOTIFICATIONS = [
  { notificationType: 'ACTUAL', threshold: 80 },
  { notificationType: 'ACTUAL', threshold: 100 },
  { notificationType: 'FORECASTED', threshold: 100 },
];

interface BudgetConfig {
  monthlyUsd: number;
  notifyEmails: string[];
}

interface Notification {
  notificationType: string;
  threshold: number;
  thresholdType: string;
  comparisonOperator: string;
  subscriberEmailAddresses: string[];
  subscriberSnsTopicArns: string[];
}

const budgetConfig = (stack: string) => loadStackFile(stack).config['dms:budget'] as BudgetConfig;
const budgetOf = (plan: Plan, stack: string): PlanResource => {
  const budgets = plan.resources.filter((resource) => resource.type === 'aws:budgets/budget:Budget');
  assert.equal(budgets.length, 1, 'one budget per stack');
  assert.equal(budgets[0]!.inputs['name'], `dms-${stack}-monthly`);
  return budgets[0]!;
};
const notificationsOf = (budget: PlanResource) => budget.inputs['notifications'] as Notification[];

for (const stack of ['production', 'staging']) {
  describe(`budget: ${stack} has a monthly cost budget that warns before the money is gone`, () => {
    let plan: Plan;
    before(async () => {
      plan = await planStack(stack);
    });

    it(`dms-${stack}-monthly limits the month's cost to budget.monthlyUsd and is a stack output`, () => {
      const budget = budgetOf(plan, stack);
      assert.equal(budget.inputs['budgetType'], 'COST');
      assert.equal(budget.inputs['timeUnit'], 'MONTHLY');
      assert.equal(budget.inputs['limitUnit'], 'USD');
      assert.equal(Number(budget.inputs['limitAmount']), budgetConfig(stack).monthlyUsd);
      assert.equal(plan.outputs['budgetName'], `dms-${stack}-monthly`);
    });

    it('notifies at 80% and 100% of actual spend and at 100% of forecast', () => {
      const notifications = notificationsOf(budgetOf(plan, stack));
      assert.deepEqual(
        notifications
          .map(({ notificationType, threshold }) => ({ notificationType, threshold }))
          .sort((a, b) => a.notificationType.localeCompare(b.notificationType) || a.threshold - b.threshold),
        EXPECTED_NOTIFICATIONS,
      );
      for (const notification of notifications) {
        assert.equal(notification.thresholdType, 'PERCENTAGE');
        assert.equal(notification.comparisonOperator, 'GREATER_THAN');
      }
    });

    it('each notification e-mails budget.notifyEmails and reaches the alarm topic, which admits Budgets', () => {
      const alarmTopic = plan.resources.find((resource) => resource.type === 'aws:sns/topic:Topic' && resource.inputs['name'] === `dms-${stack}-alarms`);
      assert.ok(alarmTopic, 'the alarm topic exists');
      const topicPolicy = plan.resources.find(
        (resource) => resource.type === 'aws:sns/topicPolicy:TopicPolicy' && resource.name === `dms-${stack}-alarms`,
      );
      const topicArn = topicPolicy!.inputs['arn'] as string;
      for (const notification of notificationsOf(budgetOf(plan, stack))) {
        assert.deepEqual(notification.subscriberEmailAddresses, budgetConfig(stack).notifyEmails);
        assert.deepEqual(notification.subscriberSnsTopicArns, [topicArn]);
      }
      const statements = (JSON.parse(topicPolicy!.inputs['policy'] as string) as { Statement: { Principal: { Service: string[] }; Action: string }[] }).Statement;
      assert.ok(statements.some((statement) => statement.Action === 'sns:Publish' && statement.Principal.Service.includes('budgets.amazonaws.com')));
    });
  });
}

describe('budget: the limit and the recipients are configuration, not code', () => {
  it('a changed budget section changes the budget', async () => {
    const { config } = loadStackFile('staging');
    const plan = await planWithConfig('staging', {
      ...config,
      'dms:budget': { monthlyUsd: 412.5, notifyEmails: ['finance@example.org'] },
    });
    const budget = budgetOf(plan, 'staging');
    assert.equal(Number(budget.inputs['limitAmount']), 412.5);
    for (const notification of notificationsOf(budget)) assert.deepEqual(notification.subscriberEmailAddresses, ['finance@example.org']);
  });
});
