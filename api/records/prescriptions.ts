import { randomUUID } from 'node:crypto';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { auditActor, recordAudit } from '../audit/record.js';
import { requireRole } from '../auth/access.js';
import { discloses } from '../audit/access.js';
import { validationFailed } from '../http/errors.js';
import { createdBefore, createdKey, pageOf, listQuery } from '../http/pagination.js';
import { parseBody } from '../http/validation.js';
import { bucketOf, deleteObject, putXrayObject, type Storage } from '../storage/s3.js';
import { Medicine, Prescription, type RxItem } from './entities.js';
import { recordOfLivePatient, visitOfPatient } from './lookup.js';
import { CLINICIANS } from './roles.js';
import { prescriptionShape } from './shapes.js';
import { presenter } from './present.js';
import { idempotent } from '../http/idempotency.js';

export const presentPrescription = presenter(Prescription, ['id', 'patientId', 'visitId', 'prescriberId', 'items', 'notes', 'createdAt', 'updatedAt']);

/** The medicines `items` name, each of which must exist: 422 names the item that does not. */
export async function medicinesOf(em: EntityManager, items: RxItem[]): Promise<Map<string, Medicine>> {
  const found = await em.find(Medicine, { id: { $in: [...new Set(items.map((item) => item.medicineId))] } });
  const byId = new Map(found.map((medicine) => [medicine.id, medicine]));
  const problems = Object.fromEntries(
    items.flatMap((item, index) => (byId.has(item.medicineId) ? [] : [[`items[${index}].medicineId`, 'is not a known medicine']])),
  );
  if (Object.keys(problems).length > 0) throw validationFailed(problems);
  return byId;
}

/** Where a prescription's document lives: under its visit, named by ids only. */
export const prescriptionKey = (patientId: string, visitId: string, rxId: string) => `patients/${patientId}/visits/${visitId}/rx/${rxId}.json`;

/** Prescriptions (CONTRACT §2): doctors write them; doctors and admins read them. */
export function prescriptionRoutes(storage: Storage): ApiRouter {
  const router = apiRouter();

  router.post('/patients/:pid/visits/:vid/rx', requireRole('doctor'), idempotent(), async (ctx) => {
    const input = parseBody(prescriptionShape, ctx.request.body);
    const em = ctx.state.em;
    const visit = await visitOfPatient(em, ctx.params.pid!, ctx.params.vid!);
    const medicines = await medicinesOf(em, input.items);
    const id = randomUUID();
    const issuedAt = new Date();
    const documentKey = prescriptionKey(visit.patientId, visit.id, id);
    const document = {
      format: 'dms-prescription/1',
      id, patientId: visit.patientId, visitId: visit.id, prescriberId: ctx.state.user!.id, issuedAt: issuedAt.toISOString(),
      items: input.items.map((item) => {
        const medicine = medicines.get(item.medicineId)!;
        return { ...item, name: medicine.name, form: medicine.form ?? null, strength: medicine.strength ?? null };
      }),
      notes: input.notes ?? null,
    };
    // The document first, then the row: a committed row always has its document. If the row cannot
    // commit (patient deleted meanwhile, audit write failed), the document is removed again.
    await putXrayObject(storage, { key: documentKey, body: JSON.stringify(document), contentType: 'application/json' });
    let rx: Prescription;
    try {
      rx = await em.transactional(async (tx) => {
        await visitOfPatient(tx, visit.patientId, visit.id, { lock: LockMode.PESSIMISTIC_READ });
        const created = tx.create(Prescription, {
          id, patientId: visit.patientId, visitId: visit.id, prescriberId: ctx.state.user!.id,
          items: input.items, notes: input.notes ?? null, documentKey,
        });
        await tx.flush();
        await recordAudit(tx, {
          action: 'rx.create', outcome: 'success', entity: 'prescription', entityId: id, ...auditActor(ctx),
          details: { patientId: visit.patientId, visitId: visit.id, items: input.items.length },
        });
        return created;
      });
    } catch (error) {
      await deleteObject(storage, bucketOf(storage, 'xray'), documentKey).catch((cleanup: unknown) => {
        // Unreferenced and under a random id, it is unreachable through the API; on-call can remove it by key.
        ctx.state.log.error('rx_document_orphaned', { prescriptionId: id, errorName: cleanup instanceof Error ? cleanup.name : typeof cleanup });
      });
      throw error;
    }
    ctx.status = 201;
    ctx.body = presentPrescription(rx);
  });

  router.get('/patients/:pid/visits/:vid/rx', discloses('prescription', requireRole(...CLINICIANS)), async (ctx) => {
    const { page } = listQuery(ctx.query, createdKey);
    const visit = await visitOfPatient(ctx.state.em, ctx.params.pid!, ctx.params.vid!);
    const rows = await ctx.state.em.find(Prescription, { visitId: visit.id, ...createdBefore(page.after) }, {
      orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1,
    });
    ctx.body = pageOf(rows, page.limit, (row) => createdKey.encode(row), presentPrescription);
  });

  router.get('/rx/:id', discloses('prescription', requireRole(...CLINICIANS)), async (ctx) => {
    ctx.body = presentPrescription(await recordOfLivePatient(ctx.state.em, Prescription, ctx.params.id!));
  });

  return router;
}
