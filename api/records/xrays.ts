import { randomUUID } from 'node:crypto';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { LockMode } from '@mikro-orm/core';
import type { Context } from 'koa';
import { auditActor, recordAudit } from '../audit/record.js';
import { requireRole } from '../auth/access.js';
import { discloses, disclosePatients } from '../audit/access.js';
import { conflict } from '../http/errors.js';
import { createdBefore, createdKey, pageOf, listQuery } from '../http/pagination.js';
import { parseBody } from '../http/validation.js';
import { bucketOf, deleteObject, encryptionAccepted, headObject, presignDownload, presignUpload, readHead, type Storage, type StoredObject } from '../storage/s3.js';
import { Xray } from './entities.js';
import { recordOfLivePatient, visitOfPatient } from './lookup.js';
import { CLINICIANS } from './roles.js';
import { xrayShape, type XrayContentType } from './shapes.js';
import { presenter } from './present.js';
import { idempotent } from '../http/idempotency.js';

export const presentXray = presenter(Xray, ['id', 'patientId', 'visitId', 'contentType', 'sizeBytes', 'description', 'status', 'uploadedAt', 'createdAt', 'updatedAt']);

/** The only place an X-ray key is made: from ids the server issued, never from client text (CONTRACT §3). */
export const xrayKey = (patientId: string, visitId: string, xrayId: string) => `patients/${patientId}/visits/${visitId}/xrays/${xrayId}`;

/** The bytes each allowed type starts with: a PNG labelled DICOM is refused even though S3 took it. */
const SIGNATURES: Record<XrayContentType, { offset: number; bytes: Buffer }> = {
  'application/dicom': { offset: 128, bytes: Buffer.from('DICM', 'ascii') }, // DICOM Part 10: 128-byte preamble, then "DICM"
  'image/jpeg': { offset: 0, bytes: Buffer.from([0xff, 0xd8, 0xff]) },
  'image/png': { offset: 0, bytes: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
};
const SIGNATURE_READ_BYTES = 132;

/** Why a stored object is not the upload that was announced, or `undefined` when it is. */
async function uploadProblem(storage: Storage, xray: Xray, object: StoredObject): Promise<string | undefined> {
  if (object.sizeBytes !== xray.sizeBytes) return 'size';
  if (object.contentType !== xray.contentType) return 'content_type';
  if (!encryptionAccepted(object)) return 'encryption';
  const signature = SIGNATURES[xray.contentType as XrayContentType];
  const head = await readHead(storage, bucketOf(storage, 'xray'), xray.objectKey, Math.min(SIGNATURE_READ_BYTES, xray.sizeBytes), object.versionId);
  const found = head.subarray(signature.offset, signature.offset + signature.bytes.length);
  return found.equals(signature.bytes) ? undefined : 'file_signature';
}

const xrayCancelled = () => conflict('xray_cancelled', 'This X-ray was cancelled.');

/** A refused `complete` is evidence (an upload that is not what was announced): its audit row commits on its own. */
async function auditRefusedCompletion(ctx: Context, xray: Xray, reason: string): Promise<void> {
  await recordAudit(ctx.state.em, {
    action: 'xray.complete', outcome: 'failure', entity: 'xray', entityId: xray.id, ...auditActor(ctx),
    details: { patientId: xray.patientId, visitId: xray.visitId, reason },
  });
}

/**
 * A download serves only the object `complete` verified. In AWS the bucket is versioned and the URL
 * names the verified version, and the upload URL is create-only, so this never fires there; a store
 * that keeps no versions (or an object altered by someone holding bucket credentials) is caught by
 * its ETag, refused, audited and logged as `xray_object_changed`: a possible tampering, for the breach runbook.
 */
async function refuseChangedObject(ctx: Context, storage: Storage, xray: Xray): Promise<void> {
  if (xray.verifiedEtag === null) return; // completed before verification was recorded (migration 0012)
  const object = await headObject(storage, bucketOf(storage, 'xray'), xray.objectKey, xray.verifiedVersionId ?? undefined);
  if (object?.etag === xray.verifiedEtag) return;
  const ids = { patientId: xray.patientId, visitId: xray.visitId };
  await recordAudit(ctx.state.em, {
    action: 'xray.download_url_issued', outcome: 'denied', entity: 'xray', entityId: xray.id, ...auditActor(ctx),
    details: { ...ids, reason: object ? 'object_changed' : 'object_missing' },
  });
  ctx.state.log.error('xray_object_changed', { xrayId: xray.id, ...ids, found: object ? 'other_object' : 'nothing' });
  throw conflict('xray_object_changed', 'The stored X-ray is not the file that was verified; it cannot be downloaded.');
}

/** X-ray metadata, presigned uploads straight to S3, their completion or cancellation, and presigned downloads (CONTRACT §2–§3). */
export function xrayRoutes(storage: Storage): ApiRouter {
  const router = apiRouter();
  const clinicians = requireRole(...CLINICIANS);

  router.post('/patients/:pid/visits/:vid/xrays', clinicians, idempotent(), async (ctx) => {
    const input = parseBody(xrayShape, ctx.request.body);
    const result = await ctx.state.em.transactional(async (tx) => {
      const visit = await visitOfPatient(tx, ctx.params.pid!, ctx.params.vid!, { lock: LockMode.PESSIMISTIC_READ });
      const id = randomUUID();
      const xray = tx.create(Xray, {
        id, patientId: visit.patientId, visitId: visit.id, objectKey: xrayKey(visit.patientId, visit.id, id),
        contentType: input.contentType, sizeBytes: input.sizeBytes, description: input.description ?? null,
        status: 'pending', uploadedAt: null, createdBy: ctx.state.user?.id ?? null,
      });
      await tx.flush();
      // Signed before the audit rows, so the chain lock is never held across the credential provider.
      const upload = await presignUpload(storage, { key: xray.objectKey, contentType: xray.contentType, sizeBytes: xray.sizeBytes });
      const ids = { patientId: xray.patientId, visitId: xray.visitId };
      await recordAudit(tx, { action: 'xray.create', outcome: 'success', entity: 'xray', entityId: xray.id, ...auditActor(ctx), details: { ...ids, contentType: xray.contentType, sizeBytes: xray.sizeBytes } });
      await recordAudit(tx, { action: 'xray.upload_url_issued', outcome: 'success', entity: 'xray', entityId: xray.id, ...auditActor(ctx), details: { ...ids, expiresAt: upload.expiresAt } });
      return { xray, upload };
    });
    ctx.status = 201;
    ctx.body = { xray: presentXray(result.xray), upload: result.upload };
  });

  router.get('/patients/:pid/visits/:vid/xrays', discloses('xray', clinicians), async (ctx) => {
    const { page } = listQuery(ctx.query, createdKey);
    const visit = await visitOfPatient(ctx.state.em, ctx.params.pid!, ctx.params.vid!);
    const rows = await ctx.state.em.find(Xray, { visitId: visit.id, ...createdBefore(page.after) }, {
      orderBy: { createdAt: 'desc', id: 'desc' }, limit: page.limit + 1,
    });
    ctx.body = pageOf(rows, page.limit, (row) => createdKey.encode(row), presentXray);
  });

  router.post('/xrays/:id/complete', discloses('xray', clinicians), async (ctx) => {
    const xray = await recordOfLivePatient(ctx.state.em, Xray, ctx.params.id!);
    if (xray.status === 'uploaded') {
      ctx.body = presentXray(xray);
      return;
    }
    if (xray.status === 'cancelled') throw xrayCancelled();
    const object = await headObject(storage, bucketOf(storage, 'xray'), xray.objectKey);
    const problem = object ? await uploadProblem(storage, xray, object) : 'missing';
    if (problem) {
      await auditRefusedCompletion(ctx, xray, problem);
      throw problem === 'missing'
        ? conflict('upload_missing', 'Nothing has been uploaded for this X-ray yet.')
        : conflict('upload_mismatch', 'The uploaded object is not the file that was announced.');
    }
    const completed = await ctx.state.em.transactional(async (tx) => {
      const target = await recordOfLivePatient(tx, Xray, xray.id, LockMode.PESSIMISTIC_WRITE);
      if (target.status === 'uploaded') return target;
      if (target.status === 'cancelled') throw xrayCancelled();
      target.status = 'uploaded';
      target.uploadedAt = new Date();
      target.verifiedEtag = object!.etag ?? null;
      target.verifiedVersionId = object!.versionId ?? null;
      await tx.flush();
      await recordAudit(tx, {
        action: 'xray.complete', outcome: 'success', entity: 'xray', entityId: target.id, ...auditActor(ctx),
        details: { patientId: target.patientId, visitId: target.visitId },
      });
      return target;
    });
    ctx.body = presentXray(completed);
  });

  /**
   * Cancels a pending X-ray (announced by mistake, the wrong file, the patient left): the row stays
   * as `cancelled`, and whatever was uploaded to its key is deleted. An uploaded X-ray is part of
   * the record and is never cancelled. Cancelling again deletes anything uploaded since, with the
   * URL the create issued while it was still live (a URL cannot be revoked); with nothing there it
   * changes nothing and writes no audit row.
   */
  router.delete('/xrays/:id', clinicians, async (ctx) => {
    await ctx.state.em.transactional(async (tx) => {
      const xray = await recordOfLivePatient(tx, Xray, ctx.params.id!, LockMode.PESSIMISTIC_WRITE);
      if (xray.status === 'uploaded') throw conflict('xray_uploaded', 'An uploaded X-ray is part of the record; it cannot be cancelled.');
      const bucket = bucketOf(storage, 'xray');
      // Deleted before the audit row, so the chain lock is never held across a call to S3. In the
      // versioned AWS bucket this leaves a delete marker; the lifecycle rule expires the old version.
      const uploaded = (await headObject(storage, bucket, xray.objectKey)) !== undefined;
      if (uploaded) await deleteObject(storage, bucket, xray.objectKey);
      if (xray.status === 'cancelled' && !uploaded) return;
      xray.status = 'cancelled';
      await tx.flush();
      await recordAudit(tx, {
        action: 'xray.cancel', outcome: 'success', entity: 'xray', entityId: xray.id, ...auditActor(ctx),
        details: { patientId: xray.patientId, visitId: xray.visitId, objectDeleted: uploaded },
      });
    });
    ctx.status = 204;
  });

  router.get('/xrays/:id/download', discloses('xray', clinicians), async (ctx) => {
    const xray = await recordOfLivePatient(ctx.state.em, Xray, ctx.params.id!);
    if (xray.status !== 'uploaded') throw conflict('xray_not_uploaded', 'This X-ray has not been uploaded yet.');
    await refuseChangedObject(ctx, storage, xray);
    const extension = { 'application/dicom': 'dcm', 'image/jpeg': 'jpg', 'image/png': 'png' }[xray.contentType as XrayContentType];
    const download = await presignDownload(storage, { key: xray.objectKey, versionId: xray.verifiedVersionId ?? undefined, fileName: `xray-${xray.id}.${extension}` });
    // The URL is handed out only once its issue is on the record.
    await recordAudit(ctx.state.em, {
      action: 'xray.download_url_issued', outcome: 'success', entity: 'xray', entityId: xray.id, ...auditActor(ctx),
      details: { patientId: xray.patientId, visitId: xray.visitId, expiresAt: download.expiresAt },
    });
    disclosePatients(ctx, [xray.patientId]);
    ctx.body = download;
  });

  return router;
}
