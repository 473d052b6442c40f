import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import type { Role } from '../db/entities.js';
import type { SessionRestriction } from '../auth/entities.js';
import type { AccessTrail } from '../audit/access.js';

/** The signed-in principal, set by the authentication middleware. */
export interface AuthUser {
  id: string;
  role: Role;
  sessionId: string;
  /** Set for a restricted session: the one step it may take (api/auth/access.ts). */
  restriction?: SessionRestriction;
}

declare module 'koa' {
  interface DefaultState {
    requestId: string;
    /** The W3C trace id of the request's server span, when tracing is on (api/tracing). */
    traceId?: string;
    log: Logger;
    /** A request-scoped EntityManager (forked on first use). */
    em: EntityManager;
    user?: AuthUser;
    /** Where access records of PHI responses are group-committed (api/audit/access.ts). */
    accessTrail: AccessTrail;
    /** Patients a PHI response discloses, named by a handler whose body does not carry them. */
    disclosedPatients?: string[];
  }
}
