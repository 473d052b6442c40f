/** IAM policy documents as this program writes them: statements, and the trust policy of a service role. */
import * as pulumi from '@pulumi/pulumi';

/** IAM policy statement as JSON (the subset this program writes). */
export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: unknown;
  Action: string | string[];
  /** Absent only in trust policies. */
  Resource?: pulumi.Input<string> | pulumi.Input<string>[];
  Condition?: Record<string, Record<string, unknown>>;
}

/** Serialises a policy document whose statements may hold outputs. */
export function policyDocument(statements: pulumi.Input<PolicyStatement>[]): pulumi.Output<string> {
  return pulumi.jsonStringify({ Version: '2012-10-17', Statement: statements });
}

/**
 * Trust policy for a role an AWS service assumes on this account's behalf; `aws:SourceAccount`
 * stops another account's resource from borrowing it (confused deputy).
 */
export function trustPolicy(service: string, accountId: pulumi.Input<string>): pulumi.Output<string> {
  return policyDocument([
    {
      Sid: 'ServiceAssumesRole',
      Effect: 'Allow',
      Principal: { Service: service },
      Action: 'sts:AssumeRole',
      Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
    },
  ]);
}
