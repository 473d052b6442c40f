import { LockMode, raw } from '@mikro-orm/core';
import { apiRouter, type ApiRouter } from '../http/router.js';
import type { Context } from 'koa';
import type { EntityManager } from '@mikro-orm/postgresql';
import { auditActor, recordAudit } from '../audit/record.js';
import { requireRole } from '../auth/access.js';
import { discloses } from '../audit/access.js';
import { validationFailed } from '../http/errors.js';
import { instantKey, keysetAfter, listQuery, pageOf, type PageRequest, type SortKey } from '../http/pagination.js';
import { calendarDate, dateTime, optional, parseBody, parsePatch, type Infer } from '../http/validation.js';
import { Visit } from './entities.js';
import { livePatient, recordOfLivePatient } from './lookup.js';
import { CARE_TEAM, fieldList } from './roles.js';
import { FOLLOW_UP_FIELDS, visitShape } from './shapes.js';
import { presenter } from './present.js';
import { idempotent } from '../http/idempotency.js';

export const presentVisit = presenter(Visit, ['id', 'patientId', 'visitedAt', 'reason', 'notes', 'followUpAt', 'followUpNotes', 'createdAt', 'updatedAt']);

const visitedKey = instantKey('visitedAt');
/** The day view pages on the instant it lists by (the visit, or its follow-up) and the id. */
const dayViewKey = instantKey('at');

const dayViewFilters = { from: optional(dateTime()), to: optional(dateTime()), followUpDue: optional(calendarDate()) };
const DAY_MS = 86_400_000;

/**
 * What `GET /visits` lists: visits with `from <= visitedAt < to` (instants with an offset, so a
 * clinic asks for its own local day), or follow-ups due on the UTC day `followUpDue` (the UTC day,
 * as `/reports/visits` counts days). One or the other, never both.
 */
export function dayViewRange({ from, to, followUpDue }: Infer<typeof dayViewFilters>): { field: 'visitedAt' | 'followUpAt'; from: Date; to: Date } {
  if (followUpDue !== undefined) {
    if (from || to) throw validationFailed({ [from ? 'from' : 'to']: 'cannot be combined with followUpDue' });
    const day = new Date(`${followUpDue}T00:00:00.000Z`);
    return { field: 'followUpAt', from: day, to: new Date(day.getTime() + DAY_MS) };
  }
  if (!from || !to) throw validationFailed({ [from ? 'to' : 'from']: 'is required (or list follow-ups with followUpDue)' });
  if (to <= from) throw validationFailed({ to: 'must be after from' });
  return { field: 'visitedAt', from, to };
}

/** Visits whose patient is not soft-deleted (a deleted patient's visits are 404 everywhere). */
const ofLivePatient = { [raw((alias: string) => `exists (select 1 from patients p where p.id = ${alias}.patient_id and p.deleted_at is null)`)]: [] };

type DayViewRange = ReturnType<typeof dayViewRange>;

/**
 * The query of `GET /visits`: the range on its index, `(visited_at, id)` or `(follow_up_at, id)`
 * (migration 0014), earliest first. The EXPLAIN test (test/api/find-and-day-view.test.ts) reads the
 * plan of exactly this query.
 */
export function dayViewQuery(em: EntityManager, { field, from, to }: DayViewRange, page: PageRequest<SortKey<'at', Date>>) {
  const after = page.after && ({ [field]: page.after.at, id: page.after.id } as SortKey<typeof field, Date>);
  return em.createQueryBuilder(Visit)
    .where({ [field]: { $gte: from, $lt: to }, ...ofLivePatient, ...keysetAfter(field, after, 'asc') })
    .orderBy({ [field]: 'asc', id: 'asc' })
    .limit(page.limit + 1);
}

function checkFollowUp(visitedAt: Date, followUpAt: Date | null | undefined): void {
  if (followUpAt && followUpAt < visitedAt) throw validationFailed({ followUpAt: 'must not be before visitedAt' });
}

/** Follow-ups are audited on their own (CONTRACT §4), so "who moved this follow-up" is one filter away. */
async function auditFollowUp(em: EntityManager, ctx: Context, visit: Visit, fields: string[]): Promise<void> {
  const touched = fields.filter((field) => (FOLLOW_UP_FIELDS as readonly string[]).includes(field));
  if (touched.length === 0) return;
  await recordAudit(em, {
    action: 'follow_up.update', outcome: 'success', entity: 'visit', entityId: visit.id, ...auditActor(ctx),
    details: { patientId: visit.patientId, fields: fieldList(touched), scheduled: visit.followUpAt != null },
  });
}

/** Visits of a patient, the day view across patients, and each visit by id (CONTRACT §2); follow-up fields live on the visit. */
export function visitRoutes(): ApiRouter {
  const router = apiRouter();
  const careTeam = requireRole(...CARE_TEAM);

  router.post('/patients/:pid/visits', careTeam, idempotent(), async (ctx) => {
    const input = parseBody(visitShape, ctx.request.body);
    checkFollowUp(input.visitedAt, input.followUpAt);
    const visit = await ctx.state.em.transactional(async (tx) => {
      const patient = await livePatient(tx, ctx.params.pid!, { lock: LockMode.PESSIMISTIC_READ });
      const created = tx.create(Visit, { ...input, patientId: patient.id, createdBy: ctx.state.user?.id ?? null });
      await tx.flush();
      await recordAudit(tx, {
        action: 'visit.create', outcome: 'success', entity: 'visit', entityId: created.id, ...auditActor(ctx), details: { patientId: patient.id },
      });
      await auditFollowUp(tx, ctx, created, Object.keys(input));
      return created;
    });
    ctx.status = 201;
    ctx.body = presentVisit(visit);
  });

  router.get('/patients/:pid/visits', discloses('visit', careTeam), async (ctx) => {
    const { page } = listQuery(ctx.query, visitedKey);
    const patient = await livePatient(ctx.state.em, ctx.params.pid!);
    const rows = await ctx.state.em.find(Visit, { patientId: patient.id, ...keysetAfter('visitedAt', page.after, 'desc') }, {
      orderBy: { visitedAt: 'desc', id: 'desc' }, limit: page.limit + 1,
    });
    ctx.body = pageOf(rows, page.limit, (row) => visitedKey.encode(row), presentVisit);
  });

  router.get('/visits', discloses('visit', careTeam), async (ctx) => {
    const { page, filters } = listQuery(ctx.query, dayViewKey, dayViewFilters);
    const range = dayViewRange(filters);
    const rows = await dayViewQuery(ctx.state.em, range, page).getResultList();
    ctx.body = pageOf(rows, page.limit, (row) => dayViewKey.encode({ at: row[range.field]!, id: row.id }), presentVisit);
  });

  router.get('/visits/:id', discloses('visit', careTeam), async (ctx) => {
    ctx.body = presentVisit(await recordOfLivePatient(ctx.state.em, Visit, ctx.params.id!));
  });

  router.patch('/visits/:id', careTeam, async (ctx) => {
    const changes = parsePatch(visitShape, ctx.request.body);
    const visit = await ctx.state.em.transactional(async (tx) => {
      const target = await recordOfLivePatient(tx, Visit, ctx.params.id!, LockMode.PESSIMISTIC_WRITE);
      checkFollowUp(changes.visitedAt ?? target.visitedAt, changes.followUpAt === undefined ? target.followUpAt : changes.followUpAt);
      tx.assign(target, changes);
      await tx.flush();
      const fields = Object.keys(changes);
      const other = fields.filter((field) => !(FOLLOW_UP_FIELDS as readonly string[]).includes(field));
      if (other.length > 0) {
        await recordAudit(tx, {
          action: 'visit.update', outcome: 'success', entity: 'visit', entityId: target.id, ...auditActor(ctx),
          details: { patientId: target.patientId, fields: fieldList(other) },
        });
      }
      await auditFollowUp(tx, ctx, target, fields);
      return target;
    });
    ctx.body = presentVisit(visit);
  });

  return router;
}
