import { DescribeScalableTargetsCommand } from '@aws-sdk/client-application-auto-scaling';
import { UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { defineCommand, parseInteger } from '../lib/command.js';
import { dryRunOption, sendChange } from '../lib/dry-run.js';
import { describeService, ROLLOUT_POLL_MS, rolloutTimeoutMs, timeoutOption } from '../lib/ecs.js';
import { UsageError } from '../lib/errors.js';
import { loadOutputs, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary } from '../lib/report.js';
import { waitFor } from '../lib/wait.js';

export const scale = defineCommand({
  name: 'scale',
  summary: "set the ECS service's desired task count, within the autoscaling bounds",
  options: {
    count: { type: 'string', valueName: 'n', required: true, description: 'desired number of API tasks' },
    timeout: { ...timeoutOption, description: 'how long to wait for the service to be steady (default 30m)' },
    'dry-run': dryRunOption,
  },
  details: [
    'Bounds come from the service\'s Application Auto Scaling target (DescribeScalableTargets) and, when it has none,',
    'from the stack outputs minTaskCount/maxTaskCount; a count outside them is refused (change the stack config',
    'instead). Then UpdateService desiredCount and wait until the service is steady: as many tasks running as it',
    'wants now, none pending, within the bounds. Target tracking may move the desired count during the wait; that is',
    'not a failure, and the summary says what it settled at.',
    'Example: npm run ops -- scale --stack production --count 6',
  ],
  async run({ options }, ctx) {
    const count = parseInteger(options.count, 'count', 0, 5_000);
    const timeoutMs = rolloutTimeoutMs(options.timeout);
    const outputs = requireOutputs(await loadOutputs(options.stack, options.outputs, ctx), [
      'region',
      'clusterName',
      'serviceName',
      'minTaskCount',
      'maxTaskCount',
    ]);
    const clients = ctx.aws(outputs.region);
    const ref = { cluster: outputs.clusterName, service: outputs.serviceName };
    const progress = new Progress(ctx);

    const targets = await clients.autoscaling().send(
      new DescribeScalableTargetsCommand({
        ServiceNamespace: 'ecs',
        ResourceIds: [`service/${ref.cluster}/${ref.service}`],
        ScalableDimension: 'ecs:service:DesiredCount',
      }),
    );
    const target = targets.ScalableTargets?.[0];
    // The live autoscaling target wins: it is what would undo a count outside it.
    const bounds = target?.MinCapacity !== undefined && target.MaxCapacity !== undefined
      ? { min: target.MinCapacity, max: target.MaxCapacity, source: 'the Application Auto Scaling target' }
      : { min: outputs.minTaskCount, max: outputs.maxTaskCount, source: 'the stack outputs (no autoscaling target found)' };
    if (count < bounds.min || count > bounds.max) {
      throw new UsageError(`--count ${count} is outside ${bounds.min}..${bounds.max} (${bounds.source}); change the bounds in the stack config to go beyond them`);
    }

    const service = await describeService(clients.ecs(), ref);
    const before = service.desiredCount ?? 0;
    const summary = (result: string): void =>
      printSummary(ctx, `scale: ${options.stack}`, [
        ['service', `${ref.service} (cluster ${ref.cluster})`],
        ['desired', `${before} -> ${count}`],
        ['bounds', `${bounds.min}..${bounds.max} from ${bounds.source}`],
        ['result', result],
      ]);
    if (before === count) {
      summary('already at that count; no change made');
      return 0;
    }
    progress.step(`setting desired count of ${ref.service} from ${before} to ${count}`);
    const sent = await sendChange(ctx, options['dry-run'], {
      service: 'ecs',
      command: new UpdateServiceCommand({ cluster: ref.cluster, service: ref.service, desiredCount: count }),
      send: (command) => clients.ecs().send(command),
    });
    if (!sent) {
      summary('dry run: not sent');
      return 0;
    }
    // Steady is judged against what the service wants NOW: target tracking may already have moved
    // it within the bounds, which is the autoscaling working, not the command failing.
    const settled = await waitFor(ctx, progress, {
      what: `${ref.service} to be steady within ${bounds.min}..${bounds.max}`,
      intervalMs: ROLLOUT_POLL_MS,
      timeoutMs,
      check: async () => {
        const now = await describeService(clients.ecs(), ref);
        const desired = now.desiredCount ?? 0;
        const running = now.runningCount ?? 0;
        const pending = now.pendingCount ?? 0;
        if (running === desired && pending === 0 && desired >= bounds.min && desired <= bounds.max) return { done: true, value: desired };
        return { done: false, status: `running ${running}, pending ${pending}, desired ${desired}` };
      },
    });
    summary(
      settled === count
        ? `steady: ${settled} task(s) running; target tracking may adjust it within the bounds`
        : `steady: ${settled} task(s) running; autoscaling moved the desired count from ${count} to ${settled} during the wait (within the bounds)`,
    );
    return 0;
  },
});
