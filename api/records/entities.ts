import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { timestamps } from '../db/entities.js';

const id = () => p.uuid().primary().onCreate(() => randomUUID());

/** One line of a prescription or preset; names are looked up from `medicines`, never trusted from the client. */
export interface RxItem {
  medicineId: string;
  dose: string;
  frequency: string;
  durationDays: number;
}

export const Visit = defineEntity({
  name: 'Visit',
  tableName: 'visits',
  properties: {
    id: id(),
    patientId: p.uuid(),
    visitedAt: p.datetime(),
    reason: p.text(),
    notes: p.text().nullable(),
    /** Follow-up fields live on the visit (CONTRACT §2). */
    followUpAt: p.datetime().nullable(),
    followUpNotes: p.text().nullable(),
    createdBy: p.uuid().nullable(),
    ...timestamps,
  },
});
export type Visit = InferEntity<typeof Visit>;

export const Medicine = defineEntity({
  name: 'Medicine',
  tableName: 'medicines',
  properties: {
    id: id(),
    name: p.text(),
    form: p.text().nullable(),
    strength: p.text().nullable(),
    ...timestamps,
  },
});
export type Medicine = InferEntity<typeof Medicine>;

export const RxPreset = defineEntity({
  name: 'RxPreset',
  tableName: 'rx_presets',
  properties: {
    id: id(),
    name: p.text(),
    items: p.json<RxItem[]>(),
    createdBy: p.uuid().nullable(),
    ...timestamps,
  },
});
export type RxPreset = InferEntity<typeof RxPreset>;

export const Prescription = defineEntity({
  name: 'Prescription',
  tableName: 'prescriptions',
  properties: {
    id: id(),
    patientId: p.uuid(),
    visitId: p.uuid(),
    prescriberId: p.uuid().nullable(),
    items: p.json<RxItem[]>(),
    notes: p.text().nullable(),
    /** The JSON document in the X-ray bucket; written before this row commits. */
    documentKey: p.text().hidden(),
    ...timestamps,
  },
});
export type Prescription = InferEntity<typeof Prescription>;

export const XRAY_STATUSES = ['pending', 'uploaded', 'cancelled'] as const;

export const Xray = defineEntity({
  name: 'Xray',
  tableName: 'xrays',
  properties: {
    id: id(),
    patientId: p.uuid(),
    visitId: p.uuid(),
    /** Built by the server only: `patients/<pid>/visits/<vid>/xrays/<id>` (CONTRACT §3). */
    objectKey: p.text().hidden(),
    contentType: p.text(),
    sizeBytes: p.bigint('number'),
    description: p.text().nullable(),
    status: p.enum(XRAY_STATUSES).default('pending'),
    uploadedAt: p.datetime().nullable(),
    /** The ETag `complete` verified; a download of any other object is refused. */
    verifiedEtag: p.text().nullable().hidden(),
    /** The version `complete` verified, in a versioned bucket (AWS); downloads name it. */
    verifiedVersionId: p.text().nullable().hidden(),
    createdBy: p.uuid().nullable(),
    ...timestamps,
  },
});
export type Xray = InferEntity<typeof Xray>;

export const recordEntities = [Visit, Medicine, RxPreset, Prescription, Xray];
