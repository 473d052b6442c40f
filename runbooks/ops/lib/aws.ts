import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { BackupClient } from '@aws-sdk/client-backup';
import { BudgetsClient } from '@aws-sdk/client-budgets';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient } from '@aws-sdk/client-ecs';
import { IAMClient } from '@aws-sdk/client-iam';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { STSClient } from '@aws-sdk/client-sts';
import { SFNClient } from '@aws-sdk/client-sfn';
import { WAFV2Client } from '@aws-sdk/client-wafv2';

/** The AWS clients of one stack's region. Each is built on first use, so a dry run builds none. */
export interface AwsClients {
  rds(): RDSClient;
  ecs(): ECSClient;
  wafv2(): WAFV2Client;
  cloudwatch(): CloudWatchClient;
  logs(): CloudWatchLogsClient;
  secrets(): SecretsManagerClient;
  budgets(): BudgetsClient;
  autoscaling(): ApplicationAutoScalingClient;
  /** The operator's own identity and the policy simulator (permission checks before long operations). */
  sts(): STSClient;
  iam(): IAMClient;
  sfn(): SFNClient;
  /** The region-loss drill: its throw-away network, the DR vault's recovery points, the X-ray replica. */
  ec2(): EC2Client;
  backup(): BackupClient;
  /** The region-loss drill's X-ray replica; `preserve-evidence`'s audit exports, ALB logs and evidence. */
  s3(): S3Client;
}

export type AwsClientFactory = (region: string) => AwsClients;

function lazy<T>(build: () => T): () => T {
  let built: T | undefined;
  return () => (built ??= build());
}

/** SDK v3 clients with the caller's default credential chain (env, profile, SSO, instance role). */
export const defaultAwsClients: AwsClientFactory = (region) => ({
  rds: lazy(() => new RDSClient({ region })),
  ecs: lazy(() => new ECSClient({ region })),
  wafv2: lazy(() => new WAFV2Client({ region })),
  cloudwatch: lazy(() => new CloudWatchClient({ region })),
  logs: lazy(() => new CloudWatchLogsClient({ region })),
  secrets: lazy(() => new SecretsManagerClient({ region })),
  // Budgets is a global service; the SDK's endpoint rules route any commercial region to it.
  budgets: lazy(() => new BudgetsClient({ region })),
  autoscaling: lazy(() => new ApplicationAutoScalingClient({ region })),
  sts: lazy(() => new STSClient({ region })),
  // IAM is a global service; the SDK's endpoint rules route any commercial region to it.
  iam: lazy(() => new IAMClient({ region })),
  sfn: lazy(() => new SFNClient({ region })),
  ec2: lazy(() => new EC2Client({ region })),
  backup: lazy(() => new BackupClient({ region })),
  s3: lazy(() => new S3Client({ region })),
});

/** The service error name of an SDK exception (`WAFOptimisticLockException`, …), if it is one. */
export function awsErrorName(error: unknown): string | undefined {
  return error instanceof Error && '$metadata' in error ? error.name : undefined;
}
