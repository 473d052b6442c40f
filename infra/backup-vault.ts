/**
 * An AWS Backup vault under its own customer-managed key, with Vault Lock: the primary region's
 * vault and the DR region's copy vault are built the same way.
 */
import * as aws from '@pulumi/aws';
import type * as pulumi from '@pulumi/pulumi';
import type { RecoverySettings } from './config.js';
import { inRegion } from './region.js';

export interface LockedVaultArgs {
  /** Physical vault name (vault names are per region). */
  name: string;
  /** Encrypts what AWS Backup encrypts itself: S3 backups, and the copies it re-encrypts in this vault. */
  key: aws.kms.Key;
  /** Retention and lock mode (`dms:recovery`). */
  recovery: RecoverySettings;
  /** Keep the vault on `pulumi destroy` (production): a COMPLIANCE-locked vault cannot be deleted while it holds recovery points anyway. */
  retainOnDelete: boolean;
  /** The vault's region when not the stack's. */
  region?: string;
}

/**
 * The vault and its lock. minRetentionDays = the plan's retention: a backup or copy job asking for
 * less fails instead of landing in the vault with a shorter life ("any backup or copy job to the vault
 * must have a lifecycle policy with a retention period equal to or longer than the minimum",
 * PutBackupVaultLockConfiguration, https://docs.aws.amazon.com/aws-backup/latest/devguide/API_PutBackupVaultLockConfiguration.html).
 * COMPLIANCE sets ChangeableForDays: AWS Backup enforces a 72-hour cool-off, so it must be 3 or more;
 * before the lock date the lock can be changed or deleted, "on and after the lock date, the Vault
 * Lock becomes immutable and cannot be changed or deleted" (same page). Without ChangeableForDays
 * the lock is GOVERNANCE: deletable by whoever may call DeleteBackupVaultLockConfiguration.
 * https://docs.aws.amazon.com/aws-backup/latest/devguide/vault-lock.html
 */
export function lockedVault(name: string, args: LockedVaultArgs, opts: pulumi.CustomResourceOptions): { vault: aws.backup.Vault; lock: aws.backup.VaultLockConfiguration } {
  const where = inRegion(args.region);
  const vault = new aws.backup.Vault(
    name,
    { name: args.name, kmsKeyArn: args.key.arn, forceDestroy: !args.retainOnDelete, ...where },
    { ...opts, retainOnDelete: args.retainOnDelete },
  );
  const { recovery } = args;
  const lock = new aws.backup.VaultLockConfiguration(
    name,
    {
      backupVaultName: vault.name,
      minRetentionDays: recovery.backupRetentionDays,
      ...(recovery.vaultLockMode === 'COMPLIANCE' ? { changeableForDays: recovery.vaultLockChangeableForDays } : {}),
      ...where,
    },
    { ...opts, retainOnDelete: args.retainOnDelete },
  );
  return { vault, lock };
}
