import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { requireRole } from '../auth/access.js';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { notFound, validationFailed } from '../http/errors.js';
import { pageOf, listQuery, type CursorKey, type PageRequest } from '../http/pagination.js';
import { accepted, dateTime, oneOf, optional, positiveBigint, text, uuid } from '../http/validation.js';
import { accessesToPatient, accessKey, checkWindow, heavyUsers, heavyUsersQuery, patientKey, patientsSeenBy, windowFilters } from './accesses.js';
import { OUTCOMES, type AuditDetails } from './chain.js';
import { auditActor, recordAudit } from './record.js';
import { AUDIT_COLUMNS, toAuditRecord, type AuditRow } from './store.js';
import { verifyDatabaseChain } from './verify.js';

/** Pages of the trail resume below the last `seq` served (newest first). */
const seqKey: CursorKey<string> = {
  encode: (seq) => [seq],
  decode: (parts) => (parts.length === 1 ? accepted(positiveBigint(), parts[0]) : undefined),
};

const filters = {
  actor: optional(text({ max: 64 })),
  action: optional(text({ max: 64, pattern: /^[a-z][a-z0-9_.-]*$/, hint: 'must be an action name such as patient.update' })),
  entity: optional(text({ max: 64 })),
  entityId: optional(text({ max: 64 })),
  outcome: optional(oneOf(OUTCOMES)),
  from: optional(dateTime()),
  to: optional(dateTime()),
};

/** Column each filter compares, and how. */
const CONDITIONS: Record<keyof typeof filters, string> = {
  actor: 'actor_id = ?',
  action: 'action = ?',
  entity: 'entity = ?',
  entityId: 'entity_id = ?',
  outcome: 'outcome = ?',
  from: 'occurred_at >= ?',
  to: 'occurred_at < ?',
};

export type TrailFilters = Partial<Record<keyof typeof filters, string | Date>>;

/** The rows of one page of `GET /admin/audit`: newest first, every filter applied, below the cursor (one row more than the page, to tell if another follows). */
export function trailPage(em: EntityManager, query: TrailFilters, page: PageRequest<string>): Promise<AuditRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  for (const [name, value] of Object.entries(query) as [keyof typeof filters, string | Date][]) {
    where.push(CONDITIONS[name]);
    params.push(value instanceof Date ? value.toISOString() : value);
  }
  if (page.after) {
    where.push('seq < ?');
    params.push(page.after);
  }
  return em.execute<AuditRow[]>(
    `select ${AUDIT_COLUMNS} from audit_logs ${where.length ? `where ${where.join(' and ')}` : ''}
     order by audit_logs.seq desc limit ${page.limit + 1}`,
    params,
  );
}

/** `/admin/audit` (CONTRACT §2, §4): auditors and admins read the trail and check its chain; both reads are audited. */
export function auditRoutes(): ApiRouter {
  const router = apiRouter({ prefix: '/admin/audit' });

  router.get('/', requireRole('auditor', 'admin'), async (ctx) => {
    const { page, filters: query } = listQuery(ctx.query, seqKey, filters);
    if (query.from && query.to && query.to <= query.from) throw validationFailed({ to: 'must be after from' });
    const result = await ctx.state.em.transactional(async (tx) => {
      const served = pageOf(await trailPage(tx, query, page), page.limit, (row) => seqKey.encode(row.seq), toAuditRecord);
      await recordAudit(tx, {
        action: 'audit.read', outcome: 'success', entity: 'audit_log', ...auditActor(ctx),
        details: { filters: Object.keys(query).sort().join(','), rows: served.items.length, paged: page.after !== undefined },
      });
      return served;
    });
    ctx.body = result;
  });

  router.get('/verify', requireRole('auditor', 'admin'), async (ctx) => {
    const report = await verifyDatabaseChain(ctx.state.em);
    await recordAudit(ctx.state.em, {
      action: 'audit.verify', outcome: 'success', entity: 'audit_log', ...auditActor(ctx),
      details: { ok: report.ok, checked: report.checked, ...(report.firstBroken ? { firstBrokenSeq: report.firstBroken.seq } : {}) },
    });
    ctx.body = report;
  });

  // The access records' questions (issue 16): each answer is audited like a page of the trail.
  const answer = async <T>(ctx: Context, query: string, details: AuditDetails, read: (tx: EntityManager) => Promise<T>, rows: (result: T) => number) => {
    ctx.body = await ctx.state.em.transactional(async (tx) => {
      const result = await read(tx);
      await recordAudit(tx, { action: 'audit.read', outcome: 'success', entity: 'audit_log', ...auditActor(ctx), details: { query, ...details, rows: rows(result) } });
      return result;
    });
  };

  router.get('/accesses/patients/:id', requireRole('auditor', 'admin'), async (ctx) => {
    const patientId = accepted(uuid(), ctx.params.id);
    if (!patientId) throw notFound();
    const { page, filters } = listQuery(ctx.query, accessKey, windowFilters);
    const window = checkWindow(filters);
    await answer(ctx, 'patient_accesses', { patientId }, (tx) => accessesToPatient(tx, patientId, window, page), (result) => result.items.length);
  });

  router.get('/accesses/users/:id', requireRole('auditor', 'admin'), async (ctx) => {
    const actorId = accepted(uuid(), ctx.params.id);
    if (!actorId) throw notFound();
    const { page, filters } = listQuery(ctx.query, patientKey, windowFilters);
    const window = checkWindow(filters);
    await answer(ctx, 'patients_seen_by_user', { userId: actorId }, (tx) => patientsSeenBy(tx, actorId, window, page), (result) => result.items.length);
  });

  router.get('/accesses/heavy-users', requireRole('auditor', 'admin'), async (ctx) => {
    const { window, minPatients } = heavyUsersQuery(ctx.query);
    await answer(ctx, 'heavy_users', { minPatients }, async (tx) => ({ items: await heavyUsers(tx, window, minPatients) }), (result) => result.items.length);
  });

  return router;
}
