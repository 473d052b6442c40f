import type { Role } from '../db/entities.js';

/** Who works with patients and visits (CONTRACT §2). */
export const CARE_TEAM: Role[] = ['staff', 'doctor', 'admin'];
/** Who handles X-rays, prescriptions (read), presets and reports. */
export const CLINICIANS: Role[] = ['doctor', 'admin'];

/** Names of the fields a change touches, for its audit row: never their values (PHI). */
export const fieldList = (fields: readonly string[]) => [...fields].sort().join(',');
