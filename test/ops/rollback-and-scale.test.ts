import assert from 'node:assert/strict';
import { DescribeScalableTargetsCommand } from '@aws-sdk/client-application-auto-scaling';
import { DescribeServicesCommand, DescribeTaskDefinitionCommand, ListTaskDefinitionsCommand, UpdateServiceCommand, type Service } from '@aws-sdk/client-ecs';
import { runCli, STACK_ARGS, totalCalls, useAwsMocks } from './support.js';

const FAMILY_ARN = 'arn:aws:ecs:eu-west-1:123456789012:task-definition/dms-api-production';
const SERVICE_REF = { cluster: 'dms-production', services: ['dms-api-production'] };

function service(fields: Partial<Service>): { services: Service[] } {
  return { services: [{ serviceName: 'dms-api-production', status: 'ACTIVE', taskDefinition: `${FAMILY_ARN}:42`, desiredCount: 3, runningCount: 3, pendingCount: 0, ...fields }] };
}

function deployment(rolloutState: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED', revision: number, extra: Record<string, unknown> = {}) {
  return service({
    taskDefinition: `${FAMILY_ARN}:${revision}`,
    deployments: [{ id: 'ecs-svc/111', status: 'PRIMARY', taskDefinition: `${FAMILY_ARN}:${revision}`, rolloutState, desiredCount: 3, runningCount: rolloutState === 'COMPLETED' ? 3 : 1, ...extra }],
  });
}

describe('ops rollback: back to the previous task definition revision', () => {
  const aws = useAwsMocks();

  it('picks the newest ACTIVE revision of the family below the running one, updates the service and waits for COMPLETED', async () => {
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service({})).resolvesOnce(deployment('IN_PROGRESS', 40)).resolves(deployment('COMPLETED', 40));
    aws.ecs
      .on(ListTaskDefinitionsCommand)
      .resolvesOnce({ taskDefinitionArns: [`${FAMILY_ARN}:43`, `${FAMILY_ARN}:42`, `${FAMILY_ARN}-canary:41`], nextToken: 'more' })
      .resolves({ taskDefinitionArns: [`${FAMILY_ARN}:40`, `${FAMILY_ARN}:38`] });
    aws.ecs.on(UpdateServiceCommand).resolves({ service: deployment('IN_PROGRESS', 40).services[0] });
    const run = await runCli(['rollback', ...STACK_ARGS]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.ecs.commandCalls(DescribeServicesCommand)[0]?.args[0].input, SERVICE_REF);
    assert.deepEqual(aws.ecs.commandCalls(ListTaskDefinitionsCommand).map((call) => call.args[0].input), [
      { familyPrefix: 'dms-api-production', status: 'ACTIVE', sort: 'DESC', nextToken: undefined },
      { familyPrefix: 'dms-api-production', status: 'ACTIVE', sort: 'DESC', nextToken: 'more' },
    ]);
    assert.deepEqual(aws.ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input, {
      cluster: 'dms-production',
      service: 'dms-api-production',
      taskDefinition: 'dms-api-production:40',
    });
    assert.equal(aws.ecs.commandCalls(DescribeServicesCommand).length, 3, 'polled until the rollout completed');
    assert.match(run.stdout, /from\s+dms-api-production:42/);
    assert.match(run.stdout, /to\s+dms-api-production:40/);
    assert.match(run.stdout, /result\s+COMPLETED, 3 task\(s\) running/);
    assert.match(run.stderr, /IN_PROGRESS, running 1\/3/);
  });

  it('rolls back to the revision given with --to, after checking it is ACTIVE', async () => {
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service({})).resolves(deployment('COMPLETED', 37));
    aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: { status: 'ACTIVE' } });
    aws.ecs.on(UpdateServiceCommand).resolves({ service: deployment('IN_PROGRESS', 37).services[0] });
    const run = await runCli(['rollback', ...STACK_ARGS, '--to', 'dms-api-production:37']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.ecs.commandCalls(DescribeTaskDefinitionCommand)[0]?.args[0].input, { taskDefinition: 'dms-api-production:37' });
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input.taskDefinition, 'dms-api-production:37');
    assert.equal(aws.ecs.commandCalls(ListTaskDefinitionsCommand).length, 0);
  });

  it('exits 1 with the reason when the deployment FAILED (circuit breaker)', async () => {
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service({})).resolves(deployment('FAILED', 41, { rolloutStateReason: 'ECS deployment circuit breaker: tasks failed to start.' }));
    aws.ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [`${FAMILY_ARN}:42`, `${FAMILY_ARN}:41`] });
    aws.ecs.on(UpdateServiceCommand).resolves({ service: deployment('IN_PROGRESS', 41).services[0] });
    const run = await runCli(['rollback', ...STACK_ARGS]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: deployment ecs-svc\/111 of dms-api-production FAILED: ECS deployment circuit breaker: tasks failed to start\.$/m);
  });

  it('exits 1 when the deployment does not settle within --timeout', async () => {
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service({})).resolves(deployment('IN_PROGRESS', 41));
    aws.ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [`${FAMILY_ARN}:41`] });
    aws.ecs.on(UpdateServiceCommand).resolves({ service: deployment('IN_PROGRESS', 41).services[0] });
    const run = await runCli(['rollback', ...STACK_ARGS, '--timeout', '5m']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /gave up after 5m waiting for deployment ecs-svc\/111/);
  });

  it('refuses an INACTIVE --to revision and a family without an older revision, with exit 1', async () => {
    aws.ecs.on(DescribeServicesCommand).resolves(service({}));
    aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: { status: 'INACTIVE' } });
    const inactive = await runCli(['rollback', ...STACK_ARGS, '--to', '30']);
    assert.equal(inactive.code, 1);
    assert.match(inactive.stderr, /dms-api-production:30 is INACTIVE, not ACTIVE/);

    aws.ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [`${FAMILY_ARN}:42`] });
    const none = await runCli(['rollback', ...STACK_ARGS]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /dms-api-production has no ACTIVE revision older than 42/);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
  });

  it('--dry-run picks the revision, prints the UpdateService and sends none', async () => {
    aws.ecs.on(DescribeServicesCommand).resolves(service({}));
    aws.ecs.on(ListTaskDefinitionsCommand).resolves({ taskDefinitionArns: [`${FAMILY_ARN}:42`, `${FAMILY_ARN}:41`] });
    const run = await runCli(['rollback', ...STACK_ARGS, '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
    assert.match(run.stdout, /dry run, not sent: ecs UpdateService\n\s+\{"cluster":"dms-production","service":"dms-api-production","taskDefinition":"dms-api-production:41"\}/);
    assert.match(run.stdout, /result\s+dry run: not sent/);
  });

  it('changes nothing when the service already runs the requested revision', async () => {
    aws.ecs.on(DescribeServicesCommand).resolves(service({}));
    aws.ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: { status: 'ACTIVE' } });
    const run = await runCli(['rollback', ...STACK_ARGS, '--to', '42']);
    assert.equal(run.code, 0);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
    assert.match(run.stdout, /already on that revision; no change made/);
  });

  it('refuses a malformed --to or another family with exit 2, before any call', async () => {
    for (const [to, message] of [['latest', /--to must be a whole number/], ['dms-worker:3', /names family dms-worker, but the service's family is dms-api-production/]] as const) {
      const run = await runCli(['rollback', ...STACK_ARGS, '--to', to]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, message);
    }
    assert.equal(totalCalls(aws), 0);
  });
});

describe('ops scale: desired count within the autoscaling bounds', () => {
  const aws = useAwsMocks();
  const target = (min: number, max: number) => ({ ScalableTargets: [{ ServiceNamespace: 'ecs' as const, ResourceId: 'x', ScalableDimension: 'ecs:service:DesiredCount' as const, MinCapacity: min, MaxCapacity: max, RoleARN: 'r', CreationTime: new Date() }] });

  it('reads the autoscaling target, sets desiredCount and waits until that many tasks run', async () => {
    aws.autoscaling.on(DescribeScalableTargetsCommand).resolves(target(2, 6));
    aws.ecs
      .on(DescribeServicesCommand)
      .resolvesOnce(service({ desiredCount: 3, runningCount: 3 }))
      .resolvesOnce(service({ desiredCount: 5, runningCount: 3, pendingCount: 2 }))
      .resolves(service({ desiredCount: 5, runningCount: 5 }));
    const run = await runCli(['scale', ...STACK_ARGS, '--count', '5']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(aws.autoscaling.commandCalls(DescribeScalableTargetsCommand)[0]?.args[0].input, {
      ServiceNamespace: 'ecs',
      ResourceIds: ['service/dms-production/dms-api-production'],
      ScalableDimension: 'ecs:service:DesiredCount',
    });
    assert.deepEqual(aws.ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input, { cluster: 'dms-production', service: 'dms-api-production', desiredCount: 5 });
    assert.match(run.stdout, /desired\s+3 -> 5/);
    assert.match(run.stdout, /result\s+steady: 5 task\(s\) running/);
  });

  it('is done once the service is steady within the bounds, also when autoscaling moved the desired count during the wait', async () => {
    aws.autoscaling.on(DescribeScalableTargetsCommand).resolves(target(2, 6));
    aws.ecs
      .on(DescribeServicesCommand)
      .resolvesOnce(service({ desiredCount: 3, runningCount: 3 }))
      .resolvesOnce(service({ desiredCount: 5, runningCount: 3, pendingCount: 2 }))
      .resolves(service({ desiredCount: 4, runningCount: 4 }));
    const run = await runCli(['scale', ...STACK_ARGS, '--count', '5']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /result\s+steady: 4 task\(s\) running; autoscaling moved the desired count from 5 to 4 during the wait/);
  });

  it('keeps waiting while tasks are pending, and gives up after --timeout', async () => {
    aws.autoscaling.on(DescribeScalableTargetsCommand).resolves(target(2, 6));
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service({ desiredCount: 3 })).resolves(service({ desiredCount: 5, runningCount: 4, pendingCount: 1 }));
    const run = await runCli(['scale', ...STACK_ARGS, '--count', '5', '--timeout', '5m']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /gave up after 5m waiting for dms-api-production to be steady within 2\.\.6 \(last status: running 4, pending 1, desired 5\)/);
  });

  it('--dry-run reads the bounds and the service, prints the UpdateService and sends none', async () => {
    aws.autoscaling.on(DescribeScalableTargetsCommand).resolves(target(2, 6));
    aws.ecs.on(DescribeServicesCommand).resolves(service({ desiredCount: 3 }));
    const run = await runCli(['scale', ...STACK_ARGS, '--count', '5', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
    assert.match(run.stdout, /dry run, not sent: ecs UpdateService\n\s+\{"cluster":"dms-production","service":"dms-api-production","desiredCount":5\}/);
    assert.match(run.stdout, /result\s+dry run: not sent/);
  });

  it('lets the live autoscaling bounds win over the stack outputs', async () => {
    aws.autoscaling.on(DescribeScalableTargetsCommand).resolves(target(3, 10));
    aws.ecs.on(DescribeServicesCommand).resolvesOnce(service({ desiredCount: 3 })).resolves(service({ desiredCount: 8, runningCount: 8 }));
    const above = await runCli(['scale', ...STACK_ARGS, '--count', '8']);
    assert.equal(above.code, 0, above.stderr);

    const below = await runCli(['scale', ...STACK_ARGS, '--count', '2']);
    assert.equal(below.code, 2);
    assert.match(below.stderr, /--count 2 is outside 3\.\.10 \(the Application Auto Scaling target\)/);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 1);
  });

  it('falls back to minTaskCount/maxTaskCount when the service has no autoscaling target', async () => {
    aws.autoscaling.on(DescribeScalableTargetsCommand).resolves({ ScalableTargets: [] });
    const run = await runCli(['scale', ...STACK_ARGS, '--count', '7']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--count 7 is outside 2\.\.6 \(the stack outputs \(no autoscaling target found\)\)/);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
  });

  it('changes nothing when the service is already at that count', async () => {
    aws.autoscaling.on(DescribeScalableTargetsCommand).resolves(target(2, 6));
    aws.ecs.on(DescribeServicesCommand).resolves(service({ desiredCount: 4 }));
    const run = await runCli(['scale', ...STACK_ARGS, '--count', '4']);
    assert.equal(run.code, 0);
    assert.equal(aws.ecs.commandCalls(UpdateServiceCommand).length, 0);
  });

  it('refuses a missing or malformed --count with exit 2', async () => {
    const missing = await runCli(['scale', ...STACK_ARGS]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /scale needs --count <n>/);
    const malformed = await runCli(['scale', ...STACK_ARGS, '--count', '-1']);
    assert.equal(malformed.code, 2);
    assert.equal(totalCalls(aws), 0);
  });
});
