import { LockMode } from '@mikro-orm/core';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { auditActor, recordAudit } from '../audit/record.js';
import { requireRole } from '../auth/access.js';
import { discloses } from '../audit/access.js';
import { Patient } from '../db/entities.js';
import { notFound } from '../http/errors.js';
import { createdBefore, createdKey, pageOf, pageRequest } from '../http/pagination.js';
import { parseBody, parsePatch } from '../http/validation.js';
import { livePatient } from './lookup.js';
import { CARE_TEAM, fieldList } from './roles.js';
import { patientShape } from './shapes.js';
import { presenter } from './present.js';
import { idempotent } from '../http/idempotency.js';

export const presentPatient = presenter(Patient, ['id', 'fullName', 'dateOfBirth', 'sex', 'phone', 'email', 'notes', 'createdAt', 'updatedAt']);

/** `/patients` (CONTRACT §2): the care team; DELETE is a soft delete, after which the patient is 404 everywhere. */
export function patientRoutes(): ApiRouter {
  const router = apiRouter({ prefix: '/patients' });
  const notThere = () => notFound('not_found', 'The patient');

  router.post('/', requireRole(...CARE_TEAM), idempotent(), async (ctx) => {
    const input = parseBody(patientShape, ctx.request.body);
    const patient = await ctx.state.em.transactional(async (tx) => {
      const created = tx.create(Patient, { ...input, deletedAt: null });
      await tx.flush();
      await recordAudit(tx, { action: 'patient.create', outcome: 'success', entity: 'patient', entityId: created.id, ...auditActor(ctx) });
      return created;
    });
    ctx.status = 201;
    ctx.body = presentPatient(patient);
  });

  router.get('/', discloses('demographics', requireRole(...CARE_TEAM)), async (ctx) => {
    const page = pageRequest(ctx.query, createdKey);
    const rows = await ctx.state.em.find(Patient, { deletedAt: null, ...createdBefore(page.after) }, {
      orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1,
    });
    ctx.body = pageOf(rows, page.limit, (row) => createdKey.encode(row), presentPatient);
  });

  router.get('/:id', discloses('demographics', requireRole(...CARE_TEAM)), async (ctx) => {
    ctx.body = presentPatient(await livePatient(ctx.state.em, ctx.params.id!, { orElse: notThere }));
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
