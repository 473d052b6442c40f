import { DISCLOSURE_KINDS, type DisclosureKind } from '../audit/access.js';
import { HEAVY_USERS_LIMIT, MAX_WINDOW_DAYS } from '../audit/accesses.js';
import { OUTCOMES } from '../audit/chain.js';
import { ROLES, type Role } from '../db/entities.js';
import { SESSION_RESTRICTIONS, type SessionRestriction } from '../auth/entities.js';
import { MFA_CHALLENGE_TTL_S, RECOVERY_CODE_COUNT } from '../auth/mfa.js';
import { IDEMPOTENCY_HEADER, IDEMPOTENCY_WINDOW_HOURS } from '../http/idempotency.js';
import { BODY_LIMIT_BYTES } from '../http/limits.js';
import { DEFAULT_LIMIT, MAX_LIMIT } from '../http/pagination.js';
import { SECURITY_HEADERS } from '../middleware/security-headers.js';
import { sensitivePrefix } from '../ratelimit/middleware.js';
import { shapeSchema, type JsonSchema, type Shape } from '../http/validation.js';
import { XRAY_STATUSES } from '../records/entities.js';
import { MAX_REPORT_DAYS } from '../records/reports.js';
import { MIN_NAME_SEARCH, MIN_PHONE_DIGITS, patientSearch } from '../records/search.js';
import { medicineShape, patientShape, prescriptionShape, rxItemShape, rxPresetShape, visitShape, xrayShape } from '../records/shapes.js';

/**
 * The OpenAPI 3.1 description of every route the API serves (`GET /openapi.json`). Request bodies
 * of the record routes are derived from the validators themselves; a test checks that the routes
 * here and the routes the router serves are the same set.
 */

type Method = 'get' | 'post' | 'patch' | 'delete';

interface Operation {
  method: Method;
  /** OpenAPI path template (`{id}`). */
  path: string;
  summary: string;
  /** Who may call it; `undefined` for public routes. */
  roles?: readonly Role[];
  /** Restricted sessions it also serves (`x-restricted-sessions`): every other operation refuses them with 403. */
  restricted?: readonly SessionRestriction[];
  body?: JsonSchema;
  query?: { name: string; schema: JsonSchema; required?: boolean; description?: string }[];
  /** Status code to response schema (`null`: no body). */
  responses: Record<number, JsonSchema | null>;
  /** Extra documented errors beyond the ones every authenticated route can answer. */
  errors?: Record<number, string>;
  /**
   * What PHI the response discloses (`x-phi`): every answer to a signed-in caller leaves an access
   * record of this kind (api/audit/access.ts); test/api/access-records.test.ts calls each such route.
   */
  phi?: DisclosureKind;
}

/**
 * Who may call what (CONTRACT §2), written out here rather than imported from the lists the routes
 * use: this document is the contract the role-matrix test (test/api/access-matrix.test.ts) holds
 * every route to, so a route's guard cannot widen or narrow with it.
 */
const CARE_TEAM: readonly Role[] = ['staff', 'doctor', 'admin'];
const CLINICIANS: readonly Role[] = ['doctor', 'admin'];
const AUDIT_READERS: readonly Role[] = ['auditor', 'admin'];

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const uuid = { type: 'string', format: 'uuid' };
const timestamp = { type: 'string', format: 'date-time' };
const nullableString = { type: ['string', 'null'] };

/** A stored record: what the client sent, plus `id`, `createdAt`, `updatedAt` and any server fields. */
function resource(shape: Shape, extra: Record<string, JsonSchema> = {}): JsonSchema {
  const input = shapeSchema(shape) as { properties: Record<string, JsonSchema> };
  const properties = { id: uuid, ...input.properties, ...extra, createdAt: timestamp, updatedAt: timestamp };
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false };
}

const list = (item: string): JsonSchema => ({
  type: 'object',
  properties: { items: { type: 'array', items: ref(item) }, nextCursor: { type: ['string', 'null'], description: 'Opaque; pass back as `cursor` for the next page.' } },
  required: ['items', 'nextCursor'],
});

const paging = [
  { name: 'limit', schema: { type: 'integer', minimum: 1, default: DEFAULT_LIMIT }, description: `Page size; values above ${MAX_LIMIT} are capped.` },
  { name: 'cursor', schema: { type: 'string' }, description: 'The `nextCursor` of the previous page.' },
];

const tokenPair: JsonSchema = {
  type: 'object',
  properties: { accessToken: { type: 'string' }, refreshToken: { type: 'string' }, tokenType: { const: 'Bearer' }, expiresIn: { type: 'integer' } },
  required: ['accessToken', 'refreshToken', 'tokenType', 'expiresIn'],
};
const secretString = { type: 'string', minLength: 1 };
const bodyOf = (properties: Record<string, JsonSchema>, required = Object.keys(properties)): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });
const mfaChallenge: JsonSchema = {
  type: 'object',
  description: `MFA is on: send a code with this token to POST /auth/login/mfa within ${MFA_CHALLENGE_TTL_S} seconds.`,
  properties: { mfaRequired: { const: true }, mfaToken: { type: 'string' }, expiresIn: { type: 'integer' } },
  required: ['mfaRequired', 'mfaToken', 'expiresIn'],
};
const signedIn: JsonSchema = {
  ...tokenPair,
  properties: {
    ...(tokenPair.properties as Record<string, JsonSchema>),
    restricted: { enum: [...SESSION_RESTRICTIONS], description: 'A restricted session: it may only take this step (enrol in MFA, change the password), then sign in again.' },
  },
};
const refreshBody: JsonSchema = { type: 'object', properties: { refreshToken: { type: 'string' } }, required: ['refreshToken'], additionalProperties: false };
const userInput: JsonSchema = {
  type: 'object',
  properties: {
    email: { type: 'string', format: 'email' }, password: { type: 'string', minLength: 12, maxLength: 128 }, role: { enum: [...ROLES] }, name: { type: 'string', maxLength: 200 },
    mustChangePassword: { type: 'boolean', default: false, description: 'The first sign-in can only change the password.' },
  },
  required: ['email', 'password', 'role', 'name'],
  additionalProperties: false,
};
const userChanges: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 200 }, role: { enum: [...ROLES] }, disabled: { type: 'boolean' }, password: { type: 'string', minLength: 12, maxLength: 128 },
    mustChangePassword: { type: 'boolean', description: 'true: a forced reset; every session ends and the next sign-in can only change the password.' },
  },
  additionalProperties: false,
  minProperties: 1,
};

/** The window of an access question: both ends required. */
const accessWindow = [
  { name: 'from', schema: timestamp, required: true, description: 'Inclusive.' },
  { name: 'to', schema: timestamp, required: true, description: `Exclusive; at most ${MAX_WINDOW_DAYS} days after from.` },
];

const OPERATIONS: Operation[] = [
  { method: 'get', path: '/health', summary: 'Liveness: the process serves (touches no dependency).', responses: { 200: { type: 'object', properties: { status: { const: 'ok' } } } } },
  { method: 'get', path: '/health/ready', summary: 'Readiness: 200 when the primary (a fresh connection and the API\'s own pool) and Redis (if configured) answer, `status: "degraded"` when a replica does not (its reads fall back to the primary); 503 when a required dependency does not answer, and while the process drains after SIGTERM.', responses: { 200: { type: 'object' }, 503: ref('Error') } },
  { method: 'get', path: '/openapi.json', summary: 'This document.', responses: { 200: { type: 'object' } } },

  {
    method: 'post', path: '/auth/login', summary: 'Sign in with e-mail and password: the token pair, or (MFA on) the second step.',
    body: bodyOf({ email: { type: 'string', format: 'email' }, password: { type: 'string' } }),
    responses: { 200: { oneOf: [signedIn, mfaChallenge] } }, errors: { 401: 'invalid_credentials (unknown user, bad password, locked account alike)', 429: 'rate_limited, with Retry-After' },
  },
  {
    method: 'post', path: '/auth/login/mfa', summary: 'The second step of a sign-in with MFA: a code of the authenticator app (once) or a recovery code (once).',
    body: { ...bodyOf({ mfaToken: secretString, code: { type: 'string', pattern: '^[0-9]{6}$' }, recoveryCode: { type: 'string' } }, ['mfaToken']), oneOf: [{ required: ['code'] }, { required: ['recoveryCode'] }] },
    responses: { 200: signedIn }, errors: { 401: 'invalid_credentials (wrong, reused or expired code, spent token, locked account alike)' },
  },
  { method: 'post', path: '/auth/refresh', summary: 'Trade a refresh token for a new pair; the old one is spent, and presenting a spent one ends its whole family.', body: refreshBody, responses: { 200: signedIn }, errors: { 401: 'unauthorized' } },
  { method: 'post', path: '/auth/logout', summary: 'End the session of a refresh token.', roles: ROLES, restricted: SESSION_RESTRICTIONS, body: refreshBody, responses: { 204: null } },
  { method: 'get', path: '/auth/me', summary: 'The signed-in user.', roles: ROLES, responses: { 200: { type: 'object', properties: { id: uuid, email: { type: 'string' }, role: { enum: [...ROLES] }, name: { type: 'string' } }, required: ['id', 'email', 'role', 'name'] } } },
  {
    method: 'post', path: '/auth/mfa/enroll', summary: 'Start (or restart) TOTP enrolment: the otpauth:// URI of a new secret, shown this once.', roles: ROLES, restricted: ['mfa_enrolment'],
    responses: { 200: { type: 'object', properties: { otpauthUri: { type: 'string', format: 'uri' } }, required: ['otpauthUri'] } }, errors: { 409: 'mfa_already_enabled' },
  },
  {
    method: 'post', path: '/auth/mfa/confirm', summary: `Turn MFA on with a code of the new device: the ${RECOVERY_CODE_COUNT} single-use recovery codes, shown this once; every other session ends.`, roles: ROLES, restricted: ['mfa_enrolment'],
    body: bodyOf({ code: { type: 'string', pattern: '^[0-9]{6}$' } }),
    responses: { 200: { type: 'object', properties: { recoveryCodes: { type: 'array', items: { type: 'string' }, minItems: RECOVERY_CODE_COUNT, maxItems: RECOVERY_CODE_COUNT } }, required: ['recoveryCodes'] } },
    errors: { 409: 'mfa_not_pending', 422: 'invalid_code, or validation_failed' },
  },
  {
    method: 'delete', path: '/auth/mfa', summary: 'Turn MFA off, with the password (not for a role the MFA policy covers).', roles: ROLES, body: bodyOf({ password: secretString }), responses: { 204: null },
    errors: { 403: 'wrong_password (counts towards the lock-out), or forbidden', 404: 'mfa_not_enabled', 409: 'mfa_required' },
  },
  {
    method: 'post', path: '/auth/password', summary: 'Change your own password; every other session ends (a restricted session too: sign in again).', roles: ROLES, restricted: ['password_change'],
    body: bodyOf({ currentPassword: secretString, newPassword: { type: 'string', minLength: 12, maxLength: 128 } }), responses: { 204: null },
    errors: { 403: 'wrong_password (counts towards the lock-out), or forbidden' },
  },
  { method: 'get', path: '/auth/sessions', summary: 'Your live sessions, newest first.', roles: ROLES, query: paging, responses: { 200: list('Session') } },
  { method: 'delete', path: '/auth/sessions/{id}', summary: 'End one of your sessions.', roles: ROLES, responses: { 204: null } },

  { method: 'post', path: '/admin/users', summary: 'Create a user.', roles: ['admin'], body: userInput, responses: { 201: ref('User') }, errors: { 409: 'email_taken' } },
  { method: 'get', path: '/admin/users', summary: 'List users, newest first.', roles: ['admin'], query: [{ name: 'email', schema: { type: 'string', format: 'email' } }, ...paging], responses: { 200: list('User') } },
  { method: 'get', path: '/admin/users/{id}', summary: 'One user by id.', roles: ['admin'], responses: { 200: ref('User') }, errors: { 404: 'not_found' } },
  { method: 'patch', path: '/admin/users/{id}', summary: 'Change a user (name, role, disabled, password); role, disable and password changes end their sessions.', roles: ['admin'], body: userChanges, responses: { 200: ref('User') }, errors: { 409: 'last_admin' } },
  { method: 'delete', path: '/admin/users/{id}/mfa', summary: "Reset a user's MFA (a lost device, a suspected compromise): it is off and every session ends; audited as user.mfa_reset.", roles: ['admin'], responses: { 204: null } },
  { method: 'post', path: '/admin/users/{id}/revoke-sessions', summary: 'End every session of a user at once.', roles: ['admin'], responses: { 204: null } },

  { method: 'post', path: '/patients', summary: 'Register a patient.', roles: CARE_TEAM, body: shapeSchema(patientShape), responses: { 201: ref('Patient') } },
  {
    method: 'get', path: '/patients', summary: 'List patients, newest first (soft-deleted ones never appear); with `q`, only the patients it finds.', roles: CARE_TEAM, phi: 'demographics',
    query: [{ name: 'q', schema: patientSearch().schema ?? {}, description: `Part of a name (every word, any case, with or without accents; at least ${MIN_NAME_SEARCH} characters), an exact date of birth YYYY-MM-DD, or the last digits of a phone number (at least ${MIN_PHONE_DIGITS}). PHI: it is never logged.` }, ...paging],
    responses: { 200: list('Patient') },
  },
  { method: 'get', path: '/patients/{id}', summary: 'One patient.', roles: CARE_TEAM, phi: 'demographics', responses: { 200: ref('Patient') } },
  { method: 'patch', path: '/patients/{id}', summary: 'Change a patient.', roles: CARE_TEAM, body: shapeSchema(patientShape, { partial: true }), responses: { 200: ref('Patient') } },
  { method: 'delete', path: '/patients/{id}', summary: 'Soft-delete a patient: 404 everywhere after.', roles: CARE_TEAM, responses: { 204: null } },

  { method: 'post', path: '/patients/{pid}/visits', summary: 'Record a visit (with its follow-up, if any).', roles: CARE_TEAM, body: shapeSchema(visitShape), responses: { 201: ref('Visit') }, errors: { 404: 'patient_not_found' } },
  { method: 'get', path: '/patients/{pid}/visits', summary: "A patient's visits, latest first.", roles: CARE_TEAM, phi: 'visit', query: paging, responses: { 200: list('Visit') }, errors: { 404: 'patient_not_found' } },
  {
    method: 'get', path: '/visits', summary: 'The day view across patients: visits with from <= visitedAt < to, earliest first; or, with followUpDue, the visits whose follow-up falls on that UTC day, earliest first. One or the other.', roles: CARE_TEAM, phi: 'visit',
    query: [
      { name: 'from', schema: timestamp, description: 'Inclusive; an instant with its offset (a clinic asks for its own local day).' },
      { name: 'to', schema: timestamp, description: 'Exclusive; after from.' },
      { name: 'followUpDue', schema: { type: 'string', format: 'date' }, description: 'A UTC day: follow-ups due on it. Not with from/to.' },
      ...paging,
    ],
    responses: { 200: list('Visit') },
  },
  { method: 'get', path: '/visits/{id}', summary: 'One visit.', roles: CARE_TEAM, phi: 'visit', responses: { 200: ref('Visit') } },
  { method: 'patch', path: '/visits/{id}', summary: 'Change a visit or its follow-up.', roles: CARE_TEAM, body: shapeSchema(visitShape, { partial: true }), responses: { 200: ref('Visit') } },

  { method: 'post', path: '/patients/{pid}/visits/{vid}/xrays', summary: 'Announce an X-ray and get a presigned upload (PUT, exactly these headers, within PRESIGN_TTL_S seconds).', roles: CLINICIANS, body: shapeSchema(xrayShape), responses: { 201: ref('XrayUpload') }, errors: { 404: 'patient_not_found or visit_not_found' } },
  { method: 'get', path: '/patients/{pid}/visits/{vid}/xrays', summary: "A visit's X-rays, newest first.", roles: CLINICIANS, phi: 'xray', query: paging, responses: { 200: list('Xray') }, errors: { 404: 'patient_not_found or visit_not_found' } },
  { method: 'post', path: '/xrays/{id}/complete', summary: 'Check the uploaded object (exists, size, type, encryption, file signature) and mark the X-ray uploaded.', roles: CLINICIANS, phi: 'xray', responses: { 200: ref('Xray') }, errors: { 409: 'upload_missing, upload_mismatch, or xray_cancelled' } },
  {
    method: 'delete', path: '/xrays/{id}', summary: 'Cancel a pending X-ray: it stays listed as cancelled, and whatever was uploaded for it is deleted (again on a repeated call, for an upload made since with the still-valid URL).', roles: CLINICIANS,
    responses: { 204: null }, errors: { 409: 'xray_uploaded: an uploaded X-ray is part of the record' },
  },
  { method: 'get', path: '/xrays/{id}/download', summary: 'A presigned GET for an uploaded X-ray.', roles: CLINICIANS, phi: 'xray', responses: { 200: ref('PresignedDownload') }, errors: { 409: 'xray_not_uploaded, or xray_object_changed (the stored object is not the one complete verified)' } },

  { method: 'post', path: '/patients/{pid}/visits/{vid}/rx', summary: 'Write a prescription; its JSON document is stored encrypted under the visit.', roles: ['doctor'], body: shapeSchema(prescriptionShape), responses: { 201: ref('Prescription') }, errors: { 404: 'patient_not_found or visit_not_found' } },
  { method: 'get', path: '/patients/{pid}/visits/{vid}/rx', summary: "A visit's prescriptions, newest first.", roles: CLINICIANS, phi: 'prescription', query: paging, responses: { 200: list('Prescription') }, errors: { 404: 'patient_not_found or visit_not_found' } },
  { method: 'get', path: '/rx/{id}', summary: 'One prescription.', roles: CLINICIANS, phi: 'prescription', responses: { 200: ref('Prescription') } },

  {
    method: 'get', path: '/medicines', summary: 'The formulary, alphabetical; with `q`, the medicines whose name contains it (any case, with or without accents).', roles: CARE_TEAM,
    query: [{ name: 'q', schema: { type: 'string', minLength: 1, maxLength: 200 } }, ...paging], responses: { 200: list('Medicine') },
  },
  { method: 'get', path: '/medicines/{id}', summary: 'One medicine.', roles: CARE_TEAM, responses: { 200: ref('Medicine') } },
  { method: 'post', path: '/medicines', summary: 'Add a medicine.', roles: ['admin'], body: shapeSchema(medicineShape), responses: { 201: ref('Medicine') }, errors: { 409: 'medicine_exists' } },

  { method: 'get', path: '/rx-presets', summary: 'Rx presets, newest first.', roles: CLINICIANS, query: paging, responses: { 200: list('RxPreset') } },
  { method: 'post', path: '/rx-presets', summary: 'Create a preset.', roles: CLINICIANS, body: shapeSchema(rxPresetShape), responses: { 201: ref('RxPreset') }, errors: { 409: 'preset_exists' } },
  { method: 'get', path: '/rx-presets/{id}', summary: 'One preset.', roles: CLINICIANS, responses: { 200: ref('RxPreset') } },
  { method: 'patch', path: '/rx-presets/{id}', summary: 'Change a preset.', roles: CLINICIANS, body: shapeSchema(rxPresetShape, { partial: true }), responses: { 200: ref('RxPreset') }, errors: { 409: 'preset_exists' } },
  { method: 'delete', path: '/rx-presets/{id}', summary: 'Delete a preset.', roles: CLINICIANS, responses: { 204: null } },

  {
    method: 'get', path: '/reports/visits', summary: `Visits per UTC day (zeros included), from a replica; at most ${MAX_REPORT_DAYS} days.`, roles: CLINICIANS, phi: 'report',
    query: [{ name: 'from', schema: { type: 'string', format: 'date' }, required: true }, { name: 'to', schema: { type: 'string', format: 'date' }, required: true }, ...paging],
    responses: { 200: ref('VisitReport') },
  },

  {
    method: 'get', path: '/admin/audit', summary: 'Audit records, newest first; the read itself is audited.', roles: AUDIT_READERS,
    query: [
      { name: 'actor', schema: { type: 'string' }, description: 'Actor (user) id.' },
      { name: 'action', schema: { type: 'string' }, description: 'e.g. `patient.update`.' },
      { name: 'entity', schema: { type: 'string' } },
      { name: 'entityId', schema: { type: 'string' } },
      { name: 'outcome', schema: { enum: [...OUTCOMES] } },
      { name: 'from', schema: timestamp, description: 'Inclusive.' },
      { name: 'to', schema: timestamp, description: 'Exclusive.' },
      ...paging,
    ],
    responses: { 200: list('AuditRecord') },
  },
  { method: 'get', path: '/admin/audit/verify', summary: 'Check the hash chain end to end.', roles: AUDIT_READERS, responses: { 200: ref('ChainReport') } },
  {
    method: 'get', path: '/admin/audit/accesses/patients/{id}', roles: AUDIT_READERS, query: [...accessWindow, ...paging], responses: { 200: list('PatientAccess') },
    summary: 'Accounting of disclosures: every access record that named this patient in the window, newest first (chained or not yet); the question is audited.',
  },
  {
    method: 'get', path: '/admin/audit/accesses/users/{id}', roles: AUDIT_READERS, query: [...accessWindow, ...paging], responses: { 200: list('PatientSeen') },
    summary: 'Every patient this user accessed in the window, with counts by kind, in patient id order; the question is audited.',
  },
  {
    method: 'get', path: '/admin/audit/accesses/heavy-users', roles: AUDIT_READERS,
    query: [...accessWindow, { name: 'minPatients', schema: { type: 'integer', minimum: 1 }, required: true, description: 'Users with more distinct patients than this.' }],
    responses: { 200: { type: 'object', properties: { items: { type: 'array', items: ref('HeavyUser'), maxItems: HEAVY_USERS_LIMIT } }, required: ['items'] } },
    summary: `Users who accessed more than minPatients distinct patients in the window (an exfiltration signal), most first, at most ${HEAVY_USERS_LIMIT}; the question is audited.`,
  },
];

const SCHEMAS: Record<string, JsonSchema> = {
  Error: {
    type: 'object',
    properties: {
      error: { type: 'string', description: 'Machine code, e.g. `validation_failed`.' },
      message: { type: 'string' },
      requestId: { type: 'string' },
      fields: { type: 'object', additionalProperties: { type: 'string' }, description: 'For 422: each bad field and what is wrong with it.' },
    },
    required: ['error', 'message', 'requestId'],
    additionalProperties: false,
  },
  User: {
    type: 'object',
    properties: { id: uuid, email: { type: 'string' }, name: { type: 'string' }, role: { enum: [...ROLES] }, disabled: { type: 'boolean' }, mustChangePassword: { type: 'boolean' }, mfaEnabled: { type: 'boolean' }, createdAt: timestamp, updatedAt: timestamp },
    required: ['id', 'email', 'name', 'role', 'disabled', 'mustChangePassword', 'mfaEnabled', 'createdAt', 'updatedAt'],
  },
  Session: {
    type: 'object',
    properties: {
      id: uuid, createdAt: timestamp, expiresAt: timestamp, ip: nullableString, current: { type: 'boolean', description: 'The session of this request.' },
      restricted: { enum: [...SESSION_RESTRICTIONS, null] },
    },
    required: ['id', 'createdAt', 'expiresAt', 'ip', 'current', 'restricted'],
  },
  Patient: resource(patientShape),
  Visit: resource(visitShape, { patientId: uuid }),
  Medicine: resource(medicineShape),
  RxItem: shapeSchema(rxItemShape),
  RxPreset: resource(rxPresetShape),
  Prescription: resource(prescriptionShape, { patientId: uuid, visitId: uuid, prescriberId: { type: ['string', 'null'], format: 'uuid' } }),
  Xray: resource(xrayShape, { patientId: uuid, visitId: uuid, status: { enum: [...XRAY_STATUSES] }, uploadedAt: { type: ['string', 'null'], format: 'date-time' } }),
  XrayUpload: {
    type: 'object',
    properties: {
      xray: ref('Xray'),
      upload: {
        type: 'object',
        properties: {
          method: { const: 'PUT' },
          url: { type: 'string', format: 'uri', description: 'A bearer credential: never log or share it.' },
          headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Send exactly these: the signature covers them.' },
          expiresAt: timestamp,
        },
        required: ['method', 'url', 'headers', 'expiresAt'],
      },
    },
    required: ['xray', 'upload'],
  },
  PresignedDownload: { type: 'object', properties: { url: { type: 'string', format: 'uri' }, expiresAt: timestamp }, required: ['url', 'expiresAt'] },
  VisitReport: {
    type: 'object',
    properties: {
      from: { type: 'string', format: 'date' },
      to: { type: 'string', format: 'date' },
      items: { type: 'array', items: { type: 'object', properties: { date: { type: 'string', format: 'date' }, visits: { type: 'integer' } }, required: ['date', 'visits'] } },
      nextCursor: { type: ['string', 'null'] },
    },
    required: ['from', 'to', 'items', 'nextCursor'],
  },
  AuditRecord: {
    type: 'object',
    properties: {
      seq: { type: 'string', description: 'Position in the chain (a decimal integer).' },
      id: uuid,
      occurredAt: timestamp,
      actorId: nullableString,
      actorRole: nullableString,
      action: { type: 'string' },
      outcome: { enum: [...OUTCOMES] },
      entity: nullableString,
      entityId: nullableString,
      ip: nullableString,
      requestId: nullableString,
      details: {
        type: 'object',
        additionalProperties: { oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'array', items: uuid }] },
        description: 'Ids and counts only; never PHI. An access record (`phi.access`) has `kind`, `route`, `status`, `sessionId`, `patients` (every patient id the response named) and `resourceId`.',
      },
      prevHash: { type: 'string' },
      hash: { type: 'string' },
    },
    required: ['seq', 'id', 'occurredAt', 'action', 'outcome', 'details', 'prevHash', 'hash'],
  },
  PatientAccess: {
    type: 'object',
    properties: {
      id: uuid, seq: { type: ['string', 'null'], description: 'null until the sequencer has chained the record.' }, occurredAt: timestamp,
      actorId: nullableString, actorRole: nullableString, kind: { enum: [...DISCLOSURE_KINDS] }, route: nullableString, requestId: nullableString, ip: nullableString,
    },
    required: ['id', 'seq', 'occurredAt', 'actorId', 'actorRole', 'kind', 'route', 'requestId', 'ip'],
  },
  PatientSeen: {
    type: 'object',
    properties: {
      patientId: uuid, accesses: { type: 'integer' },
      byKind: { type: 'object', properties: Object.fromEntries(DISCLOSURE_KINDS.map((kind) => [kind, { type: 'integer' }])), additionalProperties: false },
      firstAt: timestamp, lastAt: timestamp,
    },
    required: ['patientId', 'accesses', 'byKind', 'firstAt', 'lastAt'],
  },
  HeavyUser: {
    type: 'object',
    properties: { actorId: { type: 'string' }, patients: { type: 'integer', description: 'Distinct patients.' }, accesses: { type: 'integer' } },
    required: ['actorId', 'patients', 'accesses'],
  },
  ChainReport: {
    type: 'object',
    properties: {
      ok: { type: 'boolean' },
      checked: { type: 'integer' },
      headHash: { type: 'string' },
      firstBroken: {
        type: 'object',
        properties: { seq: { type: 'string' }, id: { type: ['string', 'null'] }, reason: { enum: ['hash_mismatch', 'prev_hash_mismatch', 'seq_gap', 'missing_rows'] } },
      },
      pending: { type: 'integer', description: 'Records committed but not chained yet (the sequencer chains them within a fraction of a second).' },
    },
    required: ['ok', 'checked', 'headHash'],
  },
};

/**
 * Response headers, each declared once under `components.headers`. Framing headers (Content-Type,
 * Content-Length, Date, Connection, Keep-Alive, Transfer-Encoding) are HTTP's, not the API's, and
 * OpenAPI ignores a declared Content-Type; every other header a response carries is declared on it.
 */
const HEADERS: Record<string, JsonSchema> = {
  'X-Request-Id': { required: true, description: 'The request id (the one sent, when well-formed: 8 to 128 of A-Z a-z 0-9 . _ : -); it is on every log line of the request and in every error body.', schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,128}$' } },
  ...Object.fromEntries(Object.entries(SECURITY_HEADERS).map(([name, value]) => [name, { required: true, description: 'Sent on every response (api/middleware/security-headers.ts).', schema: { const: value } }])),
  'X-RateLimit-Limit': { description: 'Requests the budget this request spent allows per window (every route under a rate-limited prefix).', schema: { type: 'integer', minimum: 0 } },
  'X-RateLimit-Remaining': { description: 'Requests left in the window.', schema: { type: 'integer', minimum: 0 } },
  'X-RateLimit-Reset': { description: 'When the window resets, in Unix epoch seconds.', schema: { type: 'integer', minimum: 0 } },
  'Retry-After': { required: true, description: 'Seconds until a retry can succeed (at least 1).', schema: { type: 'integer', minimum: 1 } },
  'WWW-Authenticate': { required: true, description: 'RFC 6750 §3: `Bearer realm="dms-api"`, with `error="invalid_token"` when a token was sent.', schema: { type: 'string', pattern: '^Bearer realm="dms-api"' } },
  Vary: { required: true, description: 'Names `Origin`: every answer depends on the Origin header (CORS), so no cache hands one origin\'s answer to another.', schema: { type: 'string', pattern: '(^|[ ,])Origin($|[ ,])' } },
  'Access-Control-Allow-Origin': { description: 'The request\'s Origin, when it is one of `CORS_ORIGINS` (never `*`); absent for any other origin, which the browser then refuses.', schema: { type: 'string', format: 'uri' } },
  'Access-Control-Expose-Headers': { description: 'With Access-Control-Allow-Origin: the headers a browser client may read (Retry-After, X-Request-Id, the rate-limit headers, WWW-Authenticate, Idempotent-Replayed).', schema: { type: 'string' } },
  'Idempotent-Replayed': { description: 'Present (`true`) when this is the stored answer of an earlier request with the same Idempotency-Key.', schema: { const: 'true' } },
};
const headerRef = (name: string): JsonSchema => ({ $ref: `#/components/headers/${name}` });
const headersOf = (names: string[]) => Object.fromEntries(names.map((name) => [name, headerRef(name)]));

/** The routes whose requests spend a rate-limit budget: they carry the X-RateLimit headers and may answer 429. */
const rateLimited = (op: Operation) => sensitivePrefix(op.path) !== undefined;
/** Routes that read a JSON body (when one is sent): the body parser's 400, 413 and 415 apply (api/middleware/json-body.ts). */
const readsBody = (op: Operation) => op.method !== 'get';
/** Every route that creates something (a POST answering 201) honours `Idempotency-Key` (api/http/idempotency.ts). */
const creates = (op: Operation) => op.method === 'post' && 201 in op.responses;

/** The statuses every route may answer beyond its own, and why. */
function commonErrors(op: Operation): Record<number, string> {
  const errors: Record<number, string> = {};
  if (readsBody(op)) {
    errors[400] = 'invalid_json: the body is not valid JSON.';
    errors[413] = `payload_too_large: the body is over ${BODY_LIMIT_BYTES} bytes.`;
    errors[415] = 'unsupported_media_type: a body that is not application/json.';
  }
  if (op.body || op.query) errors[422] = 'validation_failed: `fields` names each bad field (or unknown parameter) and what is wrong with it, never its value.';
  if (op.roles) {
    errors[401] = 'unauthorized: missing, malformed, expired or unknown token, or an ended session.';
    errors[403] = 'forbidden: the role may not do this; or mfa_enrolment_required / password_change_required: a restricted session, which only its own step serves.';
    if (op.path.includes('{')) errors[404] = 'not_found: no such record (or its patient was deleted).';
  }
  if (rateLimited(op)) errors[429] = 'rate_limited: the budget of this client (or user, per prefix) is spent; retry after Retry-After seconds.';
  if (op.path !== '/health' && op.path !== '/openapi.json') errors[503] = 'unavailable: the database (or the audit trail, or S3) cannot be written or reached; retry shortly.';
  errors[500] = 'internal_error: a fault of the API; the request id finds it in the logs. Never for bad input.';
  return errors;
}

const errorResponse = (op: Operation, status: number, description: string) => ({
  description, headers: responseHeaders(op, status), content: { 'application/json': { schema: ref('Error') } },
});

/** Error responses shared by name (`components.responses`), as `commonErrors` words them for a rate-limited route. */
const SAMPLE_LIMITED: Operation = { method: 'post', path: '/patients/{id}', summary: '', roles: ['admin'], body: {}, responses: {} };
const SHARED_NAMES: Record<number, string> = {
  400: 'InvalidJson', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 413: 'PayloadTooLarge', 415: 'UnsupportedMediaType', 422: 'ValidationFailed', 429: 'RateLimited', 500: 'InternalError', 503: 'Unavailable',
};
const SHARED_ERRORS: Record<number, { name: string; description: string }> = Object.fromEntries(
  Object.entries(commonErrors(SAMPLE_LIMITED)).filter(([status]) => SHARED_NAMES[Number(status)]).map(([status, description]) => [status, { name: SHARED_NAMES[Number(status)]!, description }]),
);

function responseHeaders(op: Operation, status: number): Record<string, JsonSchema> {
  const names = ['X-Request-Id', ...Object.keys(SECURITY_HEADERS), 'Vary', 'Access-Control-Allow-Origin', 'Access-Control-Expose-Headers'];
  if (rateLimited(op)) names.push('X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset');
  if (status === 429) names.push('Retry-After');
  if (status === 401 && op.roles) names.push('WWW-Authenticate');
  if (status === 201 && creates(op)) names.push('Idempotent-Replayed');
  return headersOf(names);
}

const idempotencyKey = {
  name: IDEMPOTENCY_HEADER,
  in: 'header',
  required: false,
  schema: { type: 'string', minLength: 1, maxLength: 257 },
  description: `IETF httpapi idempotency-key draft: a key the client makes up for this create (a UUID), as a structured-field string ("…") or bare; 1 to 255 visible ASCII characters. The same key and body from the same user within ${IDEMPOTENCY_WINDOW_HOURS} h answer the first success again (with \`Idempotent-Replayed: true\`) and create nothing; a request with the same key still in flight is waited for. The same key with another body is 422 \`idempotency_key_reused\`. Errors are not kept: a failed request runs again with its key.`,
};

function operationObject(op: Operation): JsonSchema {
  const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: 'path', required: true, schema: uuid }));
  const responses: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(op.responses)) {
    const headers = responseHeaders(op, Number(status));
    responses[status] = schema === null ? { description: 'No content.', headers } : { description: 'Success.', headers, content: { 'application/json': { schema } } };
  }
  const errors = { ...commonErrors(op), ...op.errors };
  if (creates(op)) errors[422] = `validation_failed: \`fields\` names each bad field (\`${IDEMPOTENCY_HEADER}\` for a malformed key); idempotency_key_reused: the key was used with another request.`;
  for (const [status, description] of Object.entries(errors)) {
    const shared = SHARED_ERRORS[Number(status)];
    // Every route under a rate-limited prefix answers these alike: one component each, so the document stays small.
    responses[status] = shared && rateLimited(op) && description === shared.description
      ? { $ref: `#/components/responses/${shared.name}` }
      : errorResponse(op, Number(status), description);
  }
  return {
    summary: op.summary,
    operationId: `${op.method}${op.path.replace(/\{(\w+)\}/g, 'By-$1').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
    ...(op.roles ? { security: [{ bearer: [] }], 'x-roles': [...op.roles] } : { security: [] }),
    ...(op.restricted ? { 'x-restricted-sessions': [...op.restricted] } : {}),
    ...(op.phi ? { 'x-phi': op.phi } : {}),
    parameters: [...pathParams, ...(op.query ?? []).map((q) => ({ in: 'query', required: q.required ?? false, ...q })), ...(creates(op) ? [idempotencyKey] : [])],
    ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: op.body } } } } : {}),
    responses,
  };
}

/** `schema` with every copy of a component's schema replaced by a reference to it (RxItem is written once). */
function referencing(schema: unknown, name: string, component: JsonSchema): unknown {
  if (JSON.stringify(schema) === JSON.stringify(component)) return ref(name);
  if (Array.isArray(schema)) return schema.map((item) => referencing(item, name, component));
  if (schema && typeof schema === 'object') return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, referencing(value, name, component)]));
  return schema;
}

/** The whole document (built once per process: it depends on code only). */
export function openApiDocument(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
  const { RxItem, ...schemas } = SCHEMAS;
  const document = {
    openapi: '3.1.0',
    info: {
      title: 'DMS clinical records API',
      version: '1.0.0',
      description: 'Patients, visits with follow-ups, X-rays (presigned S3), prescriptions, medicines, Rx presets, reports and the audit trail. Errors are `{error, message, requestId}`; lists are `{items, nextCursor}`.',
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    // Relative: the document is served by the API it describes, at the origin the client reached
    // (https://api.dms.<domain> in AWS, http://127.0.0.1:<port> under `npm start`).
    servers: [{ url: '/', description: 'The origin that served this document.' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      headers: HEADERS,
      responses: Object.fromEntries(Object.entries(SHARED_ERRORS).map(([status, { name, description }]) => [name, errorResponse(SAMPLE_LIMITED, Number(status), description)])),
      schemas: { ...(referencing(schemas, 'RxItem', RxItem!) as Record<string, JsonSchema>), RxItem },
    },
    paths: referencing(paths, 'RxItem', RxItem!),
  };
  return document;
}
