// A check of the operator's own permissions before a long operation starts: the IAM policy
// simulator evaluates the identity's policies for each call the operation will make, on the
// resources it will make it on, so a missing permission (ecs:TagResource for RunTask with tags)
// fails in seconds instead of after a 15-60 minute restore.
import { GetRoleCommand, SimulatePrincipalPolicyCommand, type ContextEntry, type IAMClient } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { awsErrorName } from './aws.js';
import { OpsError } from './errors.js';

/** One call the operation will make: the IAM action, the resource, and the condition keys it is made with. */
export interface RequiredPermission {
  action: string;
  resource: string;
  /** Condition keys the request carries (`ecs:cluster`, `iam:PassedToService`): policies that test them need them to evaluate. */
  context?: Record<string, string>;
}

export interface PermissionReport {
  /** The identity whose policies were simulated (a role ARN with its path), or why none was. */
  principal: string;
  denied: { action: string; resource: string; decision: string }[];
}

/**
 * The IAM principal behind the caller's credentials, as SimulatePrincipalPolicy wants it. An
 * assumed role's STS ARN drops the role's path (SSO roles live under /aws-reserved/…), so GetRole
 * gives its real ARN. The account root is allowed everything: nothing to simulate.
 */
async function policySource(sts: STSClient, iam: IAMClient): Promise<string | undefined> {
  const arn = (await sts.send(new GetCallerIdentityCommand({}))).Arn ?? '';
  const assumed = /^arn:[\w-]+:sts::\d{12}:assumed-role\/([^/]+)\//.exec(arn);
  if (assumed?.[1]) {
    const role = (await iam.send(new GetRoleCommand({ RoleName: assumed[1] }))).Role;
    if (!role?.Arn) throw new OpsError(`GetRole ${assumed[1]} returned no ARN`);
    return role.Arn;
  }
  if (/^arn:[\w-]+:iam::\d{12}:root$/.test(arn)) return undefined;
  if (/^arn:[\w-]+:iam::\d{12}:user\//.test(arn)) return arn;
  throw new OpsError(`cannot simulate the policies of ${arn || 'an unknown identity'} (not an IAM user or role)`);
}

function contextEntries(context: Record<string, string> | undefined): ContextEntry[] | undefined {
  if (!context) return undefined;
  return Object.entries(context).map(([key, value]) => ({ ContextKeyName: key, ContextKeyValues: [value], ContextKeyType: 'string' as const }));
}

/**
 * Simulates every required permission (one call per resource and context, all pages) and returns
 * what would be denied. Fails with a clear error when the check itself is not allowed.
 */
export async function simulatePermissions(sts: STSClient, iam: IAMClient, required: readonly RequiredPermission[]): Promise<PermissionReport> {
  let principal: string | undefined;
  try {
    principal = await policySource(sts, iam);
  } catch (error) {
    if (awsErrorName(error) === 'AccessDenied' || awsErrorName(error) === 'AccessDeniedException') {
      throw new OpsError(`cannot check permissions: ${error instanceof Error ? error.message.split('\n')[0] : String(error)} (grant iam:GetRole and iam:SimulatePrincipalPolicy on yourself, or pass --skip-permission-check)`);
    }
    throw error;
  }
  if (principal === undefined) return { principal: 'the account root (allowed everything)', denied: [] };
  const groups = new Map<string, RequiredPermission[]>();
  for (const permission of required) {
    const key = JSON.stringify([permission.resource, permission.context ?? {}]);
    groups.set(key, [...(groups.get(key) ?? []), permission]);
  }
  const denied: PermissionReport['denied'] = [];
  for (const group of groups.values()) {
    const [first] = group;
    if (!first) continue;
    let marker: string | undefined;
    do {
      let page;
      try {
        page = await iam.send(
          new SimulatePrincipalPolicyCommand({
            PolicySourceArn: principal,
            ActionNames: [...new Set(group.map((permission) => permission.action))],
            ResourceArns: [first.resource],
            ContextEntries: contextEntries(first.context),
            Marker: marker,
          }),
        );
      } catch (error) {
        if (awsErrorName(error) !== 'AccessDenied' && awsErrorName(error) !== 'AccessDeniedException') throw error;
        throw new OpsError(`cannot check permissions of ${principal}: iam:SimulatePrincipalPolicy is denied (grant it on yourself, or pass --skip-permission-check)`);
      }
      for (const result of page.EvaluationResults ?? []) {
        if (result.EvalDecision !== 'allowed') denied.push({ action: result.EvalActionName ?? '?', resource: first.resource, decision: result.EvalDecision ?? 'unknown' });
      }
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
  }
  return { principal, denied };
}
