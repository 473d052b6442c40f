import type { MigrationObject } from '@mikro-orm/core';
import { UsersAndPatients } from './0001-users-and-patients.js';
import { AuditLogs } from './0002-audit-logs.js';
import { AuthSessions } from './0003-auth-sessions.js';
import { ClinicalRecords } from './0004-clinical-records.js';
import { SessionEndNotifications } from './0005-session-end-notifications.js';
import { AuditLockChainHead } from './0006-audit-lock-chain-head.js';
import { KeysetMillisecondTimestamps } from './0007-keyset-millisecond-timestamps.js';
import { AuditPurgeHotDays } from './0008-audit-purge-hot-days.js';
import { LoginLockoutPerClient } from './0009-login-lockout-per-client.js';
import { AccountSecurity } from './0010-account-security.js';
import { IdempotencyKeys } from './0011-idempotency-keys.js';
import { XrayVerifiedObject } from './0012-xray-verified-object.js';
import { AuditExporterRole } from './0013-audit-exporter-role.js';
import { FindPatientsAndDayView } from './0014-find-patients-and-day-view.js';
import { AuditQueue } from './0015-audit-queue.js';
import { AuditLeanIndexes } from './0016-audit-lean-indexes.js';

/**
 * Every migration, in order. An explicit list (not a folder glob) so the same code runs from
 * TypeScript sources under tsx and from the compiled image.
 */
export const migrations: MigrationObject[] = [
  { name: '0001-users-and-patients', class: UsersAndPatients },
  { name: '0002-audit-logs', class: AuditLogs },
  { name: '0003-auth-sessions', class: AuthSessions },
  { name: '0004-clinical-records', class: ClinicalRecords },
  { name: '0005-session-end-notifications', class: SessionEndNotifications },
  { name: '0006-audit-lock-chain-head', class: AuditLockChainHead },
  { name: '0007-keyset-millisecond-timestamps', class: KeysetMillisecondTimestamps },
  { name: '0008-audit-purge-hot-days', class: AuditPurgeHotDays },
  { name: '0009-login-lockout-per-client', class: LoginLockoutPerClient },
  { name: '0010-account-security', class: AccountSecurity },
  { name: '0011-idempotency-keys', class: IdempotencyKeys },
  { name: '0012-xray-verified-object', class: XrayVerifiedObject },
  { name: '0013-audit-exporter-role', class: AuditExporterRole },
  { name: '0014-find-patients-and-day-view', class: FindPatientsAndDayView },
  { name: '0015-audit-queue', class: AuditQueue },
  { name: '0016-audit-lean-indexes', class: AuditLeanIndexes },
];
