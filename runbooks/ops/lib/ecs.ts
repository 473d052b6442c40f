import { DescribeServicesCommand, UpdateServiceCommand, type Deployment, type ECSClient, type Service, type UpdateServiceCommandInput } from '@aws-sdk/client-ecs';
import type { OptionSpec } from './command.js';
import type { OpsContext } from './context.js';
import { sendChange } from './dry-run.js';
import { OpsError } from './errors.js';
import type { Progress } from './report.js';
import { parseDuration } from './time.js';
import { waitFor } from './wait.js';

export interface ServiceRef {
  cluster: string;
  service: string;
}

export const ROLLOUT_POLL_MS = 15_000;

export const timeoutOption = {
  type: 'string',
  valueName: 'duration',
  description: 'how long to wait for the deployment to settle (default 30m)',
} as const satisfies OptionSpec;

export function rolloutTimeoutMs(text: string | undefined): number {
  return parseDuration(text ?? '30m', 'timeout');
}

export async function describeService(ecs: ECSClient, ref: ServiceRef): Promise<Service> {
  const response = await ecs.send(new DescribeServicesCommand({ cluster: ref.cluster, services: [ref.service] }));
  const service = response.services?.[0];
  if (!service || service.status === 'INACTIVE') {
    const reason = response.failures?.[0]?.reason ?? (service ? 'INACTIVE' : 'not found');
    throw new OpsError(`ECS service ${ref.service} in cluster ${ref.cluster}: ${reason}`);
  }
  return service;
}

/** `family:revision` of a task definition ARN (`arn:…:task-definition/dms-api-production:42`). */
export function familyRevisionOf(taskDefinitionArn: string): { family: string; revision: number } {
  const match = /task-definition\/([^:]+):(\d+)$/.exec(taskDefinitionArn);
  if (!match?.[1]) throw new OpsError(`cannot read family and revision from task definition ${taskDefinitionArn}`);
  return { family: match[1], revision: Number(match[2]) };
}

function rolloutStateOf(service: Service, deployment: Deployment): string {
  // Services that use CodeDeploy or a classic load balancer report no rolloutState: settled means one deployment, all running.
  if (deployment.rolloutState) return deployment.rolloutState;
  return (service.deployments?.length ?? 0) === 1 && deployment.runningCount === deployment.desiredCount ? 'COMPLETED' : 'IN_PROGRESS';
}

/**
 * UpdateService, then wait until the deployment it started is COMPLETED; FAILED (circuit breaker)
 * or superseded is an error. Under --dry-run the call is printed, and there is nothing to wait for.
 */
export async function deployAndSettle(
  ctx: OpsContext,
  progress: Progress,
  ecs: ECSClient,
  ref: ServiceRef,
  change: Omit<UpdateServiceCommandInput, 'cluster' | 'service'>,
  timeoutMs: number,
  dryRun = false,
): Promise<Deployment | undefined> {
  const updated = await sendChange(ctx, dryRun, {
    service: 'ecs',
    command: new UpdateServiceCommand({ cluster: ref.cluster, service: ref.service, ...change }),
    send: (command) => ecs.send(command),
  });
  if (!updated) return undefined;
  const started = updated.response.service?.deployments?.find((deployment) => deployment.status === 'PRIMARY');
  if (!started?.id) throw new OpsError(`UpdateService on ${ref.service} returned no primary deployment`);
  progress.step(`deployment ${started.id} started (${started.taskDefinition ?? 'task definition unknown'})`);
  return waitFor(ctx, progress, {
    what: `deployment ${started.id} of ${ref.service}`,
    intervalMs: ROLLOUT_POLL_MS,
    timeoutMs,
    check: async () => {
      const service = await describeService(ecs, ref);
      const deployment = service.deployments?.find((candidate) => candidate.id === started.id);
      if (!deployment) throw new OpsError(`deployment ${started.id} of ${ref.service} was replaced by another deployment before it completed`);
      const state = rolloutStateOf(service, deployment);
      if (state === 'FAILED') throw new OpsError(`deployment ${started.id} of ${ref.service} FAILED: ${deployment.rolloutStateReason ?? 'no reason given'}`);
      if (state === 'COMPLETED') return { done: true, value: deployment };
      return {
        done: false,
        status: `${state}, running ${deployment.runningCount ?? 0}/${deployment.desiredCount ?? 0}, pending ${deployment.pendingCount ?? 0}, failed ${deployment.failedTasks ?? 0}`,
      };
    },
  });
}
