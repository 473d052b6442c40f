import type pg from 'pg';
import type { Context } from 'koa';
import { HttpError } from '../http/errors.js';
import { routeFields } from '../http/route.js';
import type { AccessGuard } from '../http/router.js';
import type { QueuedRecord } from './chain.js';
import { AuditWriteError, auditActor, queueInsert, queueRows, queuedRecord } from './record.js';

/** What a response discloses about patients: the `kind` of an access record (`x-phi` in the OpenAPI document). */
export const DISCLOSURE_KINDS = ['demographics', 'visit', 'xray', 'prescription', 'report'] as const;
export type DisclosureKind = (typeof DISCLOSURE_KINDS)[number];

/** The action of every access record. */
export const ACCESS_ACTION = 'phi.access';

/** Marks a guard made by `discloses`, with its kind (the OpenAPI test holds the router to the document). */
export const DISCLOSES = Symbol('discloses');

/** Where each kind's response names its patient: a patient by its `id`, anything else by `patientId`. */
const PATIENT_FIELD: Record<DisclosureKind, 'id' | 'patientId' | undefined> = {
  demographics: 'id',
  visit: 'patientId',
  xray: 'patientId',
  prescription: 'patientId',
  report: undefined, // counts per day: no patient
};

export interface GroupCommitOptions {
  /** Records per INSERT at most. */
  maxBatch?: number;
  /** INSERTs in flight at once (each holds a pool connection while it runs). */
  maxInFlight?: number;
}

interface Waiting {
  record: QueuedRecord;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Access records are group-committed, as PostgreSQL commits WAL: a record waits at most for the
 * INSERTs already in flight (and one turn of the event loop), then goes out with every record that
 * arrived meanwhile, in one INSERT, one autocommit, one fsync. Each caller's promise settles when
 * the commit that carries its record has returned: resolved, the record is durable; rejected
 * (`AuditWriteError`), it is not, and the response must not leave.
 */
export class AccessTrail {
  private waiting: Waiting[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly pool: () => Promise<pg.Pool>,
    readonly enabled: boolean,
    { maxBatch = 500, maxInFlight = 2 }: GroupCommitOptions = {},
  ) {
    this.maxBatch = maxBatch;
    this.maxInFlight = maxInFlight;
  }

  /** Resolves once `record` is committed. */
  write(record: QueuedRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ record, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Requests answered in the same turn of the event loop share the INSERT.
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.inFlight += 1;
      void this.commit(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async commit(batch: Waiting[]): Promise<void> {
    try {
      const pool = await this.pool();
      await pool.query(queueInsert('$1'), [queueRows(batch.map((waiting) => waiting.record))]);
    } catch (cause) {
      const error = new AuditWriteError(ACCESS_ACTION, { cause });
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    for (const waiting of batch) waiting.resolve();
  }
}

/** For a response whose body does not carry its patient ids (a download URL): the handler names them. */
export function disclosePatients(ctx: Context, patientIds: string[]): void {
  ctx.state.disclosedPatients = patientIds;
}

/** The patients a successful response discloses, each once. */
function patientsOf(ctx: Context, kind: DisclosureKind): string[] {
  if (ctx.state.disclosedPatients) return [...new Set(ctx.state.disclosedPatients)];
  const field = PATIENT_FIELD[kind];
  if (!field) return [];
  const body = ctx.body as { items?: unknown; nextCursor?: unknown } | undefined;
  // A list page is `{items, nextCursor}` (api/http/pagination.ts); a prescription also has `items`, of medicines.
  const list = Array.isArray(body?.items) && body !== undefined && 'nextCursor' in body;
  const items = (list ? body!.items : [body]) as Record<string, unknown>[];
  const ids = items.map((item) => item?.[field]).filter((id): id is string => typeof id === 'string');
  // Fail closed: a single record whose patient cannot be named is a route this module does not know how to record.
  if (!list && ids.length === 0) throw new Error(`${kind} response names no patient (${String(ctx.method)} ${routeFields(ctx).path})`);
  return [...new Set(ids)];
}

const outcomeOf = (status: number) => (status < 400 ? 'success' : status === 403 ? 'denied' : 'failure');

/**
 * Declares that a route discloses PHI of `kind`, around the route's own access guard:
 * `router.get('/:id', discloses('demographics', requireRole(...CARE_TEAM)), handler)`. Every
 * answer to a signed-in user (success, denied, not found, failure) leaves an access record (action
 * `phi.access`): who (user, role, session), which patients the response names (every id on a list
 * page), the kind, route, status, request id and time; ids only. A success is held back until its
 * record is durable, and fails 503 (`audit_write_failed`) when it cannot be written, as a change
 * does. Anonymous requests (401) leave none: there is no one to name, and the access log has them.
 */
export function discloses(kind: DisclosureKind, guard: AccessGuard): AccessGuard {
  const recording = (async (ctx, next) => {
    const trail = ctx.state.accessTrail;
    if (!trail.enabled) return guard(ctx, next);
    let failed: unknown;
    try {
      await guard(ctx, next);
    } catch (error) {
      failed = error;
    }
    if (!ctx.state.user) {
      if (failed) throw failed;
      return;
    }
    const status = failed === undefined ? ctx.status : failed instanceof HttpError ? failed.status : 500;
    const patients = failed === undefined ? patientsOf(ctx, kind) : [];
    const { path, ids } = routeFields(ctx);
    const resourceId = ids?.id ?? ids?.vid ?? ids?.pid;
    const record = queuedRecord({
      action: ACCESS_ACTION, outcome: outcomeOf(status), entity: 'patient', entityId: patients.length === 1 ? patients[0] : undefined,
      ...auditActor(ctx),
      details: {
        kind, route: path, status, sessionId: ctx.state.user.sessionId, patients,
        ...(resourceId ? { resourceId } : {}),
      },
    });
    try {
      await trail.write(record);
    } catch (error) {
      // A request that already failed on the server's side keeps its own error; any other answer waits for its record.
      if (status >= 500 && failed) throw failed;
      throw error;
    }
    if (failed) throw failed;
  }) as AccessGuard;
  return Object.assign(recording, { [DISCLOSES]: kind });
}
