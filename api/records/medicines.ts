import { auditActor, recordAudit } from '../audit/record.js';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { transactionalUnique } from '../db/transactions.js';
import { requireRole } from '../auth/access.js';
import { conflict, notFound } from '../http/errors.js';
import { keysetAfter, listQuery, pageOf, textKey } from '../http/pagination.js';
import { isUuid, optional, parseBody, text } from '../http/validation.js';
import { foldedContains } from './search.js';
import { Medicine } from './entities.js';
import { CARE_TEAM } from './roles.js';
import { medicineShape } from './shapes.js';
import { presenter } from './present.js';
import { idempotent } from '../http/idempotency.js';

export const presentMedicine = presenter(Medicine, ['id', 'name', 'form', 'strength', 'createdAt', 'updatedAt']);

const nameKey = textKey('name');

/** The formulary (CONTRACT §2): the clinical roles read it (`?q=` finds by part of the name, any case or accents), admins add to it. */
export function medicineRoutes(): ApiRouter {
  const router = apiRouter({ prefix: '/medicines' });

  router.get('/', requireRole(...CARE_TEAM), async (ctx) => {
    const { page, filters: { q } } = listQuery(ctx.query, nameKey, { q: optional(text({ max: 200 })) });
    const rows = await ctx.state.em.find(Medicine, { ...(q ? foldedContains('name', q) : {}), ...keysetAfter('name', page.after, 'asc') }, {
      orderBy: { name: 'asc', id: 'asc' }, limit: page.limit + 1,
    });
    ctx.body = pageOf(rows, page.limit, (row) => nameKey.encode(row), presentMedicine);
  });

  router.get('/:id', requireRole(...CARE_TEAM), async (ctx) => {
    const medicine = isUuid(ctx.params.id) ? await ctx.state.em.findOne(Medicine, { id: ctx.params.id }) : null;
    if (!medicine) throw notFound('not_found', 'The medicine');
    ctx.body = presentMedicine(medicine);
  });

  router.post('/', requireRole('admin'), idempotent(), async (ctx) => {
    const input = parseBody(medicineShape, ctx.request.body);
    const medicine = await transactionalUnique(ctx.state.em, async (tx) => {
      const created = tx.create(Medicine, { name: input.name, form: input.form ?? null, strength: input.strength ?? null });
      await tx.flush();
      await recordAudit(tx, { action: 'medicine.create', outcome: 'success', entity: 'medicine', entityId: created.id, ...auditActor(ctx) });
      return created;
    }, () => conflict('medicine_exists', 'This medicine, form and strength is already listed.'));
    ctx.status = 201;
    ctx.body = presentMedicine(medicine);
  });

  return router;
}
