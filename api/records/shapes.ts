import {
  arrayOf, calendarDate, dateTime, email, integer, nullable, object, oneOf, optional, phone, text, uuid,
} from '../http/validation.js';

/** What a client sends for each record (CONTRACT §2 "Resource shapes"); the OpenAPI document is built from these. */

/** HL7 FHIR administrative gender: what clinical systems exchange. */
export const SEXES = ['female', 'male', 'other', 'unknown'] as const;

export const patientShape = {
  fullName: text({ max: 200 }),
  dateOfBirth: calendarDate({ notInFuture: true }),
  sex: optional(nullable(oneOf(SEXES))),
  phone: optional(nullable(phone())),
  email: optional(nullable(email())),
  notes: optional(nullable(text({ max: 5000 }))),
};

export const visitShape = {
  visitedAt: dateTime(),
  reason: text({ max: 500 }),
  notes: optional(nullable(text({ max: 5000 }))),
  followUpAt: optional(nullable(dateTime())),
  followUpNotes: optional(nullable(text({ max: 2000 }))),
};

export const FOLLOW_UP_FIELDS = ['followUpAt', 'followUpNotes'] as const;

export const medicineShape = {
  name: text({ max: 200 }),
  form: optional(nullable(text({ max: 100 }))),
  strength: optional(nullable(text({ max: 100 }))),
};

export const rxItemShape = {
  medicineId: uuid(),
  dose: text({ max: 100 }),
  frequency: text({ max: 100 }),
  durationDays: integer({ min: 1, max: 365 }),
};
const rxItems = arrayOf(object(rxItemShape), { min: 1, max: 50 });

export const prescriptionShape = {
  items: rxItems,
  notes: optional(nullable(text({ max: 2000 }))),
};

export const rxPresetShape = {
  name: text({ max: 200 }),
  items: rxItems,
};

/** What a radiograph arrives as: DICOM from modalities, JPEG/PNG exports from dental and portable units. */
export const XRAY_CONTENT_TYPES = ['application/dicom', 'image/jpeg', 'image/png'] as const;
export type XrayContentType = (typeof XRAY_CONTENT_TYPES)[number];

/**
 * 100 MiB: a single radiograph (CR/DX DICOM, panoramic or cephalometric export) is 5–50 MB, so
 * this leaves room without letting one presigned URL store gigabytes of PHI or cost; and it is a
 * single PUT that a clinic uplink finishes well after a 90 s URL was first used (S3 checks expiry
 * when the upload starts). Multi-frame CT series belong in a PACS, not here.
 */
export const MAX_XRAY_BYTES = 100 * 1024 * 1024;

export const xrayShape = {
  contentType: oneOf(XRAY_CONTENT_TYPES),
  sizeBytes: integer({ min: 1, max: MAX_XRAY_BYTES }),
  description: optional(nullable(text({ max: 500 }))),
};
