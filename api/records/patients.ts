import { LockMode } from '@mikro-orm/core';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { createAudited } from '../audit/audited-create.js';
import { auditActor, recordAudit } from '../audit/record.js';
import { requireRole } from '../auth/access.js';
import { discloses } from '../audit/access.js';
import { Patient } from '../db/entities.js';
import { notFound } from '../http/errors.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createdKey, listQuery, pageOf, type PageRequest, type SortKey } from '../http/pagination.js';
import { optional, parseBody, parsePatch } from '../http/validation.js';
import { patientSearch, patientSearchCondition, type PatientSearch } from './search.js';
import { livePatient, readLivePatient } from './lookup.js';
import { CARE_TEAM, fieldList } from './roles.js';
import { patientShape } from './shapes.js';
import { presenter } from './present.js';
import { idempotent } from '../http/idempotency.js';
import type { RowsById } from '../db/batched-reads.js';

export const presentPatient = presenter(Patient, ['id', 'fullName', 'dateOfBirth', 'sex', 'phone', 'email', 'notes', 'createdAt', 'updatedAt']);

/**
 * The query of `GET /patients` (with `?q=`, a search): live patients, newest first. Built with
 * Kysely so a search string is a bound parameter, never statement text (api/records/search.ts).
 * The EXPLAIN test (test/api/find-and-day-view.test.ts) reads the plan of exactly this query.
 */
/** The `patients` table (migrations 0001, 0007) as Kysely sees it: what `em.map(Patient, row)` reads back. */
interface PatientsTable {
  patients: {
    id: string; full_name: string; date_of_birth: string; sex: string | null; phone: string | null; email: string | null; notes: string | null;
    created_at: Date; updated_at: Date; deleted_at: Date | null;
  };
}

export function patientsQuery(em: EntityManager, search: PatientSearch | undefined, page: PageRequest<SortKey<'createdAt', Date>>) {
  const after = page.after;
  return em.getKysely<PatientsTable>().selectFrom('patients').selectAll()
    .where('deleted_at', 'is', null)
    .$if(search !== undefined, (query) => query.where(patientSearchCondition(search!)))
    .$if(after !== undefined, (query) => query.where((eb) => eb.or([
      eb('created_at', '<', after!.createdAt),
      eb.and([eb('created_at', '=', after!.createdAt), eb('id', '<', after!.id)]),
    ])))
    .orderBy('created_at', 'desc').orderBy('id', 'desc')
    .limit(page.limit + 1);
}

/**
 * `/patients` (CONTRACT §2): the care team; DELETE is a soft delete, after which the patient is 404
 * everywhere. `GET /patients?q=` finds patients (api/records/search.ts), newest first like the list.
 */
export function patientRoutes(reads: RowsById): ApiRouter {
  const router = apiRouter({ prefix: '/patients' });
  const notThere = () => notFound('not_found', 'The patient');

  router.post('/', requireRole(...CARE_TEAM), idempotent(), async (ctx) => {
    const input = parseBody(patientShape, ctx.request.body);
    const patient = await createAudited(ctx.state.em, ctx.state.log, Patient, { ...input, deletedAt: null },
      (id) => ({ action: 'patient.create', outcome: 'success', entity: 'patient', entityId: id, ...auditActor(ctx) }));
    ctx.status = 201;
    ctx.body = presentPatient(patient);
  });

  router.get('/', discloses('demographics', requireRole(...CARE_TEAM)), async (ctx) => {
    const { page, filters: { q } } = listQuery(ctx.query, createdKey, { q: optional(patientSearch()) });
    const rows = (await patientsQuery(ctx.state.em, q, page).execute()).map((row) => ctx.state.em.map(Patient, row));
    ctx.body = pageOf(rows, page.limit, (row) => createdKey.encode(row), presentPatient);
  });

  router.get('/:id', discloses('demographics', requireRole(...CARE_TEAM)), async (ctx) => {
    ctx.body = presentPatient(await readLivePatient(ctx.state.em, reads, ctx.params.id!, notThere));
  });

  router.patch('/:id', requireRole(...CARE_TEAM), async (ctx) => {
    const changes = parsePatch(patientShape, ctx.request.body);
    const patient = await ctx.state.em.transactional(async (tx) => {
      const target = await livePatient(tx, ctx.params.id!, { orElse: notThere, lock: LockMode.PESSIMISTIC_WRITE });
      tx.assign(target, changes);
      await tx.flush();
      await recordAudit(tx, {
        action: 'patient.update', outcome: 'success', entity: 'patient', entityId: target.id, ...auditActor(ctx),
        details: { fields: fieldList(Object.keys(changes)) },
      });
      return target;
    });
    ctx.body = presentPatient(patient);
  });

  router.delete('/:id', requireRole(...CARE_TEAM), async (ctx) => {
    await ctx.state.em.transactional(async (tx) => {
      const target = await livePatient(tx, ctx.params.id!, { orElse: notThere, lock: LockMode.PESSIMISTIC_WRITE });
      target.deletedAt = new Date();
      await tx.flush();
      await recordAudit(tx, { action: 'patient.delete', outcome: 'success', entity: 'patient', entityId: target.id, ...auditActor(ctx), details: { soft: true } });
    });
    ctx.status = 204;
  });

  return router;
}
