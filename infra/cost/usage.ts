/**
 * What a month of use looks like, for the usage part of the estimate. Each default is a small
 * clinic's working month; `npm run plan -- --cost --assume name=value` changes any of them.
 */
export interface Usage {
  /** API requests a month (WAF requests, Contributor Insights events). A clinic: ~3,000 a working day per workstation. */
  requestsPerMonth: number;
  /** Load balancer capacity units used on average (1 LCU: 25 new connections/s, 3,000 active a minute, 1 GB an hour). */
  albLcu: number;
  /** GB out to the internet (X-ray downloads, API responses); the first 100 GB a month are free. */
  dataOutGb: number;
  /** GB through the NAT gateways (image pulls go through endpoints; what is left is little). */
  natGb: number;
  /** GB through the interface endpoints (image pulls on deploys, logs, secrets). */
  interfaceEndpointGb: number;
  /** GB of API logs a month (one http_access line ~400 bytes a request, plus the rest). */
  apiLogGb: number;
  /** GB of VPC flow logs and WAF logs a month together. */
  networkLogGb: number;
  /** X-ray images stored, GB (a radiograph is 5–50 MB). */
  xrayGb: number;
  /** Audit export files stored, GB (mostly in Glacier after the hot period). */
  auditGb: number;
  /** ALB and S3 access logs stored, GB. */
  accessLogGb: number;
  /** Incident evidence held in the forensics bucket, GB (none until an incident is preserved). */
  forensicsGb: number;
  /** API images kept in ECR, GB. */
  ecrGb: number;
  /** KMS requests a month (S3 SSE-KMS with bucket keys, secrets at task start). */
  kmsRequests: number;
  /** Minutes each scheduled job task runs. */
  minutesPerScheduledRun: number;
  /** RDS backup storage beyond the free allowance (100% of provisioned storage), GB. */
  extraBackupGb: number;
  /** AWS Backup recovery points per vault (the primary's and the DR copy), GB: the first full copy plus daily changes. */
  backupVaultGb: number;
}

export const USAGE_DEFAULTS: Readonly<Usage> = {
  requestsPerMonth: 3_000_000,
  albLcu: 1,
  dataOutGb: 150,
  natGb: 20,
  interfaceEndpointGb: 20,
  apiLogGb: 3,
  networkLogGb: 5,
  xrayGb: 200,
  auditGb: 2,
  accessLogGb: 20,
  forensicsGb: 0,
  ecrGb: 2,
  kmsRequests: 200_000,
  minutesPerScheduledRun: 2,
  extraBackupGb: 0,
  backupVaultGb: 30,
};

/** `name=value` pairs over the defaults; an unknown name or a value that is not a number ≥ 0 is an error. */
export function usageWith(assignments: readonly string[], base: Readonly<Usage> = USAGE_DEFAULTS): Usage {
  const usage = { ...base };
  for (const assignment of assignments) {
    const [name, value] = assignment.split('=');
    if (!name || !(name in usage)) throw new Error(`--assume ${assignment}: unknown assumption (one of ${Object.keys(usage).join(', ')})`);
    const number = Number(value);
    if (value === undefined || value === '' || !Number.isFinite(number) || number < 0) throw new Error(`--assume ${assignment}: not a number of 0 or more`);
    usage[name as keyof Usage] = number;
  }
  return usage;
}
