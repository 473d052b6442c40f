import type { EntityName, FilterQuery, LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { Patient } from '../db/entities.js';
import { notFound } from '../http/errors.js';
import { isUuid } from '../http/validation.js';
import { Visit } from './entities.js';
import { RowsById } from '../db/batched-reads.js';

/** Nested routes say which parent is missing (CONTRACT §2: `patient_not_found`, `visit_not_found`). */
export const patientNotFound = () => notFound('patient_not_found', 'The patient');
export const visitNotFound = () => notFound('visit_not_found', 'The visit');

/**
 * A patient that exists and is not soft-deleted, else `orElse()` (a malformed id is simply not
 * found). Inside a transaction pass `lock`: `PESSIMISTIC_READ` before adding a child record (a
 * concurrent soft delete then waits for it, or it sees the delete), `PESSIMISTIC_WRITE` to change
 * the patient. The lock re-checks `deleted_at`, so a patient deleted meanwhile is not found.
 */
export async function livePatient(em: EntityManager, id: string, { lock, orElse = patientNotFound }: { lock?: LockMode; orElse?: () => Error } = {}): Promise<Patient> {
  if (!isUuid(id)) throw orElse();
  const patient = await em.findOne(Patient, { id, deletedAt: null }, lock ? { lockMode: lock } : {});
  if (!patient) throw orElse();
  return patient;
}

/** Live patients by id, read for all the requests of one turn together (one per app: `createApp`). */
export const livePatientReads = (pool: () => Promise<pg.Pool>) => new RowsById(pool, 'patients', 'deleted_at is null');

/**
 * `livePatient` for a request that only reads the patient, in an entity manager that holds no
 * patient yet: the same row, mapped by the ORM as `findOne` maps it, read together with the other
 * requests' of the same turn (`livePatientReads`) on the primary. Without the ORM's query builder
 * and in one statement per turn, the API process's CPU per `GET /patients/:id` roughly halved
 * (README, issue 16). Not for an entity manager that may already hold the patient: mapping
 * refreshes the managed entity from the row.
 */
export async function readLivePatient(em: EntityManager, reads: RowsById, id: string, orElse: () => Error = patientNotFound): Promise<Patient> {
  if (!isUuid(id)) throw orElse();
  const row = await reads.read(id);
  if (!row) throw orElse();
  return em.map(Patient, row);
}

/** A visit of exactly this (live) patient: a visit of another patient is as missing as no visit. */
export async function visitOfPatient(em: EntityManager, patientId: string, visitId: string, { lock }: { lock?: LockMode } = {}): Promise<Visit> {
  await livePatient(em, patientId, { lock });
  if (!isUuid(visitId)) throw visitNotFound();
  const visit = await em.findOne(Visit, { id: visitId, patientId });
  if (!visit) throw visitNotFound();
  return visit;
}

/**
 * A record reached by its own id (`/visits/:id`, `/xrays/:id`, `/rx/:id`) whose patient must be
 * live: once a patient is soft-deleted, everything under it is 404 too.
 */
export async function recordOfLivePatient<T extends { id: string; patientId: string }>(
  em: EntityManager,
  entity: EntityName<T>,
  id: string,
  lock?: LockMode,
): Promise<T> {
  const record = isUuid(id) ? await em.findOne(entity, { id } as FilterQuery<T>, lock ? { lockMode: lock } : {}) : null;
  if (!record) throw notFound();
  await livePatient(em, record.patientId, { orElse: () => notFound() });
  return record;
}
