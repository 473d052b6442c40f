import { DescribeTaskDefinitionCommand, ListTaskDefinitionsCommand, type ECSClient } from '@aws-sdk/client-ecs';
import { defineCommand, parseInteger } from '../lib/command.js';
import { dryRunOption } from '../lib/dry-run.js';
import { deployAndSettle, describeService, familyRevisionOf, rolloutTimeoutMs, timeoutOption } from '../lib/ecs.js';
import { OpsError, UsageError } from '../lib/errors.js';
import { loadOutputs, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary } from '../lib/report.js';

/** `--to 41` or `--to dms-api-production:41`: the revision number, with the family checked. */
function parseTarget(text: string, family: string): number {
  const [named, revision] = text.includes(':') ? text.split(':', 2) : [family, text];
  if (named !== family) throw new UsageError(`--to ${text} names family ${named}, but the service's family is ${family}`);
  return parseInteger(revision ?? '', 'to', 1, 1_000_000);
}

async function activeRevisions(ecs: ECSClient, family: string): Promise<number[]> {
  const revisions: number[] = [];
  let nextToken: string | undefined;
  do {
    const page = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: family, status: 'ACTIVE', sort: 'DESC', nextToken }));
    for (const arn of page.taskDefinitionArns ?? []) {
      const parsed = familyRevisionOf(arn);
      // familyPrefix is a prefix match: dms-api-production also lists dms-api-production-canary.
      if (parsed.family === family) revisions.push(parsed.revision);
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return revisions.sort((a, b) => b - a);
}

export const rollback = defineCommand({
  name: 'rollback',
  summary: 'point the ECS service at an earlier task definition revision and wait for it to settle',
  options: {
    to: { type: 'string', valueName: 'revision', description: 'revision number (or family:revision); default: the previous ACTIVE revision' },
    timeout: timeoutOption,
    'dry-run': dryRunOption,
  },
  details: [
    'Reads the revision the service runs (DescribeServices), picks --to or the newest ACTIVE revision of the family',
    'below it (ListTaskDefinitions), UpdateService to it and waits until that deployment is COMPLETED (exit 1 if it',
    'FAILED). Database migrations are not reversed, and the next `pulumi up` deploys the stack\'s revision again.',
    'Example: npm run ops -- rollback --stack production',
  ],
  async run({ options }, ctx) {
    const timeoutMs = rolloutTimeoutMs(options.timeout);
    const outputs = requireOutputs(await loadOutputs(options.stack, options.outputs, ctx), ['region', 'clusterName', 'serviceName', 'taskDefinitionFamily']);
    const family = outputs.taskDefinitionFamily;
    const requested = options.to === undefined ? undefined : parseTarget(options.to, family);
    const ecs = ctx.aws(outputs.region).ecs();
    const ref = { cluster: outputs.clusterName, service: outputs.serviceName };
    const progress = new Progress(ctx);

    const service = await describeService(ecs, ref);
    const current = familyRevisionOf(service.taskDefinition ?? '');
    if (current.family !== family) throw new OpsError(`service ${ref.service} runs family ${current.family}, not the stack's ${family}; roll back by hand`);
    progress.step(`service ${ref.service} runs ${family}:${current.revision}`);

    let target: number;
    if (requested !== undefined) {
      const described = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: `${family}:${requested}` }));
      if (described.taskDefinition?.status !== 'ACTIVE') throw new OpsError(`${family}:${requested} is ${described.taskDefinition?.status ?? 'unknown'}, not ACTIVE`);
      target = requested;
    } else {
      const older = (await activeRevisions(ecs, family)).find((revision) => revision < current.revision);
      if (older === undefined) throw new OpsError(`${family} has no ACTIVE revision older than ${current.revision}`);
      target = older;
    }

    const rows = (result: string, deployment: string): [string, string][] => [
      ['service', `${ref.service} (cluster ${ref.cluster})`],
      ['from', `${family}:${current.revision}`],
      ['to', `${family}:${target}`],
      ['deployment', deployment],
      ['result', result],
      ['note', "migrations are not reversed; the next `pulumi up` deploys the stack's revision again"],
    ];
    if (target === current.revision) {
      printSummary(ctx, `rollback: ${options.stack}`, rows('already on that revision; no change made', 'none'));
      return 0;
    }
    progress.step(`rolling back to ${family}:${target}`);
    const deployment = await deployAndSettle(ctx, progress, ecs, ref, { taskDefinition: `${family}:${target}` }, timeoutMs, options['dry-run']);
    printSummary(
      ctx,
      `rollback: ${options.stack}`,
      deployment ? rows(`COMPLETED, ${deployment.runningCount ?? 0} task(s) running`, deployment.id ?? '') : rows('dry run: not sent', 'none'),
    );
    return 0;
  },
});
