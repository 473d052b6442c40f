import { LockMode } from '@mikro-orm/core';
import { apiRouter, type ApiRouter } from '../http/router.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import { auditActor, recordAudit } from '../audit/record.js';
import { transactionalUnique } from '../db/transactions.js';
import { requireRole } from '../auth/access.js';
import { conflict, notFound } from '../http/errors.js';
import { createdBefore, createdKey, pageOf, listQuery } from '../http/pagination.js';
import { isUuid, parseBody, parsePatch } from '../http/validation.js';
import { RxPreset } from './entities.js';
import { medicinesOf } from './prescriptions.js';
import { CLINICIANS, fieldList } from './roles.js';
import { rxPresetShape } from './shapes.js';
import { presenter } from './present.js';
import { idempotent } from '../http/idempotency.js';

export const presentPreset = presenter(RxPreset, ['id', 'name', 'items', 'createdAt', 'updatedAt']);

async function findPreset(em: EntityManager, id: string, lock?: LockMode): Promise<RxPreset> {
  const preset = isUuid(id) ? await em.findOne(RxPreset, { id }, lock ? { lockMode: lock } : {}) : null;
  if (!preset) throw notFound('not_found', 'The preset');
  return preset;
}

/** Runs a preset change; a second preset of the same name (any case) is 409. */
function savingPreset<T>(ctx: Context, change: (tx: EntityManager) => Promise<T>): Promise<T> {
  return transactionalUnique(ctx.state.em, change, () => conflict('preset_exists', 'A preset with this name exists.'));
}

/** Rx presets (CONTRACT §2): named item lists a doctor starts a prescription from. */
export function rxPresetRoutes(): ApiRouter {
  const router = apiRouter({ prefix: '/rx-presets' });

  router.get('/', requireRole(...CLINICIANS), async (ctx) => {
    const { page } = listQuery(ctx.query, createdKey);
    const rows = await ctx.state.em.find(RxPreset, createdBefore(page.after), { orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1 });
    ctx.body = pageOf(rows, page.limit, (row) => createdKey.encode(row), presentPreset);
  });

  router.get('/:id', requireRole(...CLINICIANS), async (ctx) => {
    ctx.body = presentPreset(await findPreset(ctx.state.em, ctx.params.id!));
  });

  router.post('/', requireRole(...CLINICIANS), idempotent(), async (ctx) => {
    const input = parseBody(rxPresetShape, ctx.request.body);
    await medicinesOf(ctx.state.em, input.items);
    const preset = await savingPreset(ctx, async (tx) => {
      const created = tx.create(RxPreset, { name: input.name, items: input.items, createdBy: ctx.state.user?.id ?? null });
      await tx.flush();
      await recordAudit(tx, { action: 'rx_preset.create', outcome: 'success', entity: 'rx_preset', entityId: created.id, ...auditActor(ctx) });
      return created;
    });
    ctx.status = 201;
    ctx.body = presentPreset(preset);
  });

  router.patch('/:id', requireRole(...CLINICIANS), async (ctx) => {
    const changes = parsePatch(rxPresetShape, ctx.request.body);
    if (changes.items) await medicinesOf(ctx.state.em, changes.items);
    const preset = await savingPreset(ctx, async (tx) => {
      const target = await findPreset(tx, ctx.params.id!, LockMode.PESSIMISTIC_WRITE);
      tx.assign(target, changes);
      await tx.flush();
      await recordAudit(tx, {
        action: 'rx_preset.update', outcome: 'success', entity: 'rx_preset', entityId: target.id, ...auditActor(ctx),
        details: { fields: fieldList(Object.keys(changes)) },
      });
      return target;
    });
    ctx.body = presentPreset(preset);
  });

  router.delete('/:id', requireRole(...CLINICIANS), async (ctx) => {
    await ctx.state.em.transactional(async (tx) => {
      const target = await findPreset(tx, ctx.params.id!, LockMode.PESSIMISTIC_WRITE);
      tx.remove(target);
      await tx.flush();
      await recordAudit(tx, { action: 'rx_preset.delete', outcome: 'success', entity: 'rx_preset', entityId: target.id, ...auditActor(ctx) });
    });
    ctx.status = 204;
  });

  return router;
}
