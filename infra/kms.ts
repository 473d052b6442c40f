/** Customer-managed KMS keys: one policy shape, yearly rotation, kept with the data they protect. */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AwsEnvironment } from './config.js';
import { policyDocument, type PolicyStatement } from './iam.js';
import { inRegion } from './region.js';

export interface KeyArgs {
  /** What the key protects (shown in the KMS console). */
  description: string;
  /** Physical alias, without `alias/`. */
  alias: string;
  /** Account and region the key policy names. */
  env: AwsEnvironment;
  /** AWS services (e.g. CloudWatch Logs) that encrypt with the key on the account's behalf. */
  serviceStatements?: pulumi.Input<PolicyStatement>[];
  /**
   * The key protects data that outlives the stack (PHI buckets kept on `pulumi destroy`, a final
   * database snapshot and retained backups). Such a key is kept on destroy and protected: a
   * destroyed key would be scheduled for deletion and, after its window, the kept data unreadable
   * ("Deleting a KMS key ... After a KMS key is deleted, you can no longer decrypt the data that was
   * encrypted under that KMS key", https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html).
   */
  outlivesStack?: boolean;
  /** The key's region when it is not the stack's (the DR region's key); KMS keys never leave their region. */
  region?: string;
}

/**
 * A customer-managed key with yearly rotation and a 30-day deletion window. The key policy keeps
 * the account root statement (without it no IAM policy can grant use of the key and the key is
 * unmanageable); every other use is granted by IAM policies scoped to the key's ARN.
 */
export function customerManagedKey(name: string, args: KeyArgs, opts: pulumi.CustomResourceOptions): aws.kms.Key {
  const { env } = args;
  const rootStatement: pulumi.Input<PolicyStatement> = {
    Sid: 'AccountAdministersKeyThroughIam',
    Effect: 'Allow',
    Principal: { AWS: pulumi.interpolate`arn:${env.partition}:iam::${env.accountId}:root` },
    Action: 'kms:*',
    Resource: '*',
  };
  const key = new aws.kms.Key(
    name,
    {
      description: args.description,
      enableKeyRotation: true,
      rotationPeriodInDays: 365,
      deletionWindowInDays: 30,
      policy: policyDocument([rootStatement, ...(args.serviceStatements ?? [])]),
      ...inRegion(args.region),
    },
    args.outlivesStack ? { ...opts, retainOnDelete: true, protect: true } : opts,
  );
  new aws.kms.Alias(name, { name: `alias/${args.alias}`, targetKeyId: key.keyId, ...inRegion(args.region) }, opts);
  return key;
}
