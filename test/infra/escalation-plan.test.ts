// `npm run plan -- --stack production` as the issue reads it: no Incident Manager resource by
// default; the escalation state machine, its EventBridge trigger and the messaging permissions are
// in the plan and in its printout; the policy pack passes, and its new rules fire on what they guard.
import { strict as assert } from 'node:assert';
import { formatPlan } from '../../infra/plan/print.js';
import type { StackRun } from '../../infra/plan/run.js';
import { toPlan } from '../../infra/plan.js';
import { checkPolicies } from '../../infra/policy/harness.js';
import { one, ofType, planned, plannedWith, section } from './fixture.js';

describe('plan: production pages through Step Functions, not Incident Manager', function () {
  this.timeout(60_000);
  let run: StackRun;
  before(async () => {
    run = await planned('production');
  });

  it('has no ssmincidents or ssmcontacts resource by default', () => {
    assert.deepEqual(run.resources.filter((resource) => /^aws:ssm(incidents|contacts)\//.test(resource.type)).map((resource) => resource.name), []);
  });

  it('has the Standard state machine, started by an EventBridge rule on alarm state changes', () => {
    const machine = one(run, 'aws:sfn/stateMachine:StateMachine', 'dms-production-escalation');
    assert.equal(machine.inputs['type'], 'STANDARD');
    const target = one(run, 'aws:cloudwatch/eventTarget:EventTarget', 'dms-production-escalation');
    assert.equal(target.inputs['arn'], machine.outputs['arn']);
    const rule = one(run, 'aws:cloudwatch/eventRule:EventRule', 'dms-production-escalation');
    assert.equal(JSON.parse(String(rule.inputs['eventPattern']))['detail-type'][0], 'CloudWatch Alarm State Change');
  });

  it('grants the step function SendTextMessage and SendVoiceMessage on the origination identity only', () => {
    const policy = one(run, 'aws:iam/rolePolicy:RolePolicy', 'dms-production-escalation-step');
    const statement = (JSON.parse(String(policy.inputs['policy'])) as { Statement: { Sid: string; Action: string[]; Resource: string[] }[] }).Statement.find(
      (candidate) => candidate.Sid === 'TextAndCallFromTheOriginationIdentity',
    );
    assert.deepEqual(statement?.Action, ['sms-voice:SendTextMessage', 'sms-voice:SendVoiceMessage']);
    assert.ok(statement?.Resource.every((resource) => resource.startsWith('arn:aws:sms-voice:us-east-2:')));
  });

  it('prints them for the reviewer', () => {
    const text = formatPlan('production', toPlan(run), [], 0, []);
    assert.match(text, /aws:sfn\/stateMachine:StateMachine {2}dms-production-escalation\n {6}dms-production-escalation STANDARD/);
    assert.match(text, /aws:cloudwatch\/eventRule:EventRule {2}dms-production-escalation\n {6}dms-production-escalation\n {6}pattern \{"source":\["aws.cloudwatch"\]/);
    assert.match(text, /Allow sms-voice:SendTextMessage,sms-voice:SendVoiceMessage on arn:aws:sms-voice:/);
    assert.match(text, /escalationStateMachineArn: arn:aws:states:us-east-2:\d{12}:stateMachine:dms-production-escalation/);
    assert.doesNotMatch(text, /ssmincidents|ssmcontacts/);
  });

  it('passes the policy pack', async () => {
    assert.deepEqual(await checkPolicies(run.resources), []);
  });

  it('with incidentManager: true, adds incident records (and still no contacts)', async () => {
    const optedIn = await plannedWith('production', (config) => (section(config, 'monitoring')['incidentManager'] = true));
    assert.equal(ofType(optedIn, 'aws:ssmincidents/responsePlan:ResponsePlan').length, 4);
    assert.equal(ofType(optedIn, 'aws:ssmcontacts/contact:Contact').length, 0);
    assert.equal(ofType(optedIn, 'aws:sfn/stateMachine:StateMachine').length, 1);
  });
});

describe('policy: the paging rules fire on what they guard', function () {
  this.timeout(60_000);

  async function violationsAfter(change: (run: StackRun) => void) {
    const run = structuredClone(await planned('production'));
    change(run);
    return (await checkPolicies(run.resources)).map((violation) => `${violation.policy}: ${violation.message}`);
  }

  it('a public permission to invoke the function through the Lambda API', async () => {
    const violations = await violationsAfter((run) => {
      delete one(run, 'aws:lambda/permission:Permission', 'dms-production-escalation-ack-url-invoke').inputs['invokedViaFunctionUrl'];
    });
    assert.deepEqual(violations, ['public-function-urls-only: dms-production-escalation-ack lets anyone call lambda:InvokeFunction outside its function URL']);
  });

  it('an unencrypted paging topic or acknowledgement table', async () => {
    const violations = await violationsAfter((run) => {
      delete one(run, 'aws:sns/topic:Topic', 'dms-production-page-email').inputs['kmsMasterKeyId'];
      delete one(run, 'aws:dynamodb/table:Table', 'dms-production-escalation-acks').inputs['serverSideEncryption'];
    });
    assert.deepEqual(violations, [
      'notifications-encrypted: topic dms-production-page-email is not encrypted with a customer-managed key',
      'notifications-encrypted: table dms-production-escalation-acks is not encrypted with a customer-managed key',
    ]);
  });
});
