import Router from '@koa/router';
import { LockMode } from '@mikro-orm/core';
import { auditActor, recordAudit } from '../audit/record.js';
import { requireRole } from '../auth/middleware.js';
import { Patient } from '../db/entities.js';
import { notFound } from '../http/errors.js';
import { createdBefore, createdKey, pageOf, pageRequest } from '../http/pagination.js';
import { parseBody, parsePatch } from '../http/validation.js';
import { livePatient } from './lookup.js';
import { CARE_TEAM, fieldList } from './roles.js';
import { patientShape } from './shapes.js';
import { presenter } from './present.js';

export const presentPatient = presenter(Patient, ['id', 'fullName', 'dateOfBirth', 'sex', 'phone', 'email', 'notes', 'createdAt', 'updatedAt']);

/** `/patients` (CONTRACT §2): the care team; DELETE is a soft delete, after which the patient is 404 everywhere. */
export function patientRoutes(): Router {
  const router = new Router({ prefix: '/patients' });
  router.use(requireRole(...CARE_TEAM));
  const notThere = () => notFound('not_found', 'The patient');

  router.post('/', async (ctx) => {
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

  router.get('/', async (ctx) => {
    const page = pageRequest(ctx.query, createdKey);
    const rows = await ctx.state.em.find(Patient, { deletedAt: null, ...createdBefore(page.after) }, {
      orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1,
    });
    ctx.body = pageOf(rows, page.limit, (row) => createdKey.encode(row), presentPatient);
  });

  router.get('/:id', async (ctx) => {
    ctx.body = presentPatient(await livePatient(ctx.state.em, ctx.params.id!, { orElse: notThere }));
  });

  router.patch('/:id', async (ctx) => {
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

  router.delete('/:id', async (ctx) => {
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
