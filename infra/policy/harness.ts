/**
 * Runs the policies against a recorded stack in-process, the way the Pulumi policy engine would
 * call them (resource policies see inputs, stack policies see outputs and dependencies), without
 * `new PolicyPack()`, which starts a gRPC server and waits for the engine.
 */
import type { PolicyResource, PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from '@pulumi/policy';
import type { RecordedResource } from '../plan/run.js';
import { allPolicies } from './policies.js';

export interface Violation {
  policy: string;
  /** `type name` of the resource at fault, when the policy names one. */
  resource?: string;
  message: string;
}

class NotApplicable extends Error {}

type ResourceClass = Parameters<PolicyResource['isType']>[0];

const pulumiTypeOf = (resourceClass: ResourceClass): string | undefined => (resourceClass as unknown as { __pulumiType?: string }).__pulumiType;

const OPTIONS: PolicyResourceOptions = {
  protect: false,
  ignoreChanges: [],
  aliases: [],
  customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
  additionalSecretOutputs: [],
};

/** Components (the program's own and awsx's) have no provider-side settings to check. */
const isCustom = (resource: RecordedResource) => !resource.type.startsWith('dms:') && !resource.type.startsWith('awsx:');

export async function checkPolicies(
  resources: readonly RecordedResource[],
  policies: readonly (ResourceValidationPolicy | StackValidationPolicy)[] = allPolicies,
): Promise<Violation[]> {
  const violations: Violation[] = [];
  const byUrn = new Map(resources.map((resource) => [resource.urn, resource]));
  const label = (urn: string | undefined) => {
    const resource = urn ? byUrn.get(urn) : undefined;
    return resource ? `${resource.type} ${resource.name}` : undefined;
  };
  const isType = (type: string) => (resourceClass: ResourceClass) => pulumiTypeOf(resourceClass) === type;
  const notApplicable = (): never => {
    throw new NotApplicable();
  };

  const policyResources = new Map<string, PolicyResource>();
  for (const resource of resources.filter(isCustom)) {
    policyResources.set(resource.urn, {
      type: resource.type,
      name: resource.name,
      urn: resource.urn,
      props: { ...resource.outputs, id: resource.id },
      opts: { ...OPTIONS, protect: resource.protect },
      dependencies: [],
      propertyDependencies: {},
      isType: isType(resource.type),
      asType: ((resourceClass: ResourceClass) => (pulumiTypeOf(resourceClass) === resource.type ? { ...resource.outputs, id: resource.id } : undefined)) as PolicyResource['asType'],
    });
  }
  for (const resource of resources.filter(isCustom)) {
    const policyResource = policyResources.get(resource.urn) as PolicyResource;
    for (const [property, urns] of Object.entries(resource.propertyDependencies)) {
      const dependencies = urns.map((urn) => policyResources.get(urn)).filter((dependency) => dependency !== undefined);
      policyResource.propertyDependencies[property] = dependencies;
      policyResource.dependencies.push(...dependencies);
    }
  }

  for (const policy of policies) {
    const report = (resourceUrn?: string) => (message: string, urn?: string) => {
      const resource = label(urn ?? resourceUrn);
      violations.push({ policy: policy.name, ...(resource ? { resource } : {}), message });
    };
    try {
      if ('validateStack' in policy) {
        await policy.validateStack({ resources: [...policyResources.values()], stackTags: new Map(), getConfig: <T extends object>() => ({}) as T, notApplicable }, report());
        continue;
      }
      const validations = [policy.validateResource ?? []].flat();
      for (const resource of resources.filter(isCustom)) {
        const args: ResourceValidationArgs = {
          type: resource.type,
          props: resource.inputs,
          urn: resource.urn,
          name: resource.name,
          opts: { ...OPTIONS, protect: resource.protect },
          stackTags: new Map(),
          isType: isType(resource.type),
          asType: ((resourceClass: ResourceClass) => (pulumiTypeOf(resourceClass) === resource.type ? resource.inputs : undefined)) as ResourceValidationArgs['asType'],
          getConfig: <T extends object>() => ({}) as T,
          notApplicable,
        };
        for (const validate of validations) {
          try {
            await validate(args, report(resource.urn));
          } catch (error) {
            if (!(error instanceof NotApplicable)) throw error;
          }
        }
      }
    } catch (error) {
      if (!(error instanceof NotApplicable)) throw error;
    }
  }
  return violations;
}
