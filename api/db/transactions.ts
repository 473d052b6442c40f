import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { HttpError } from '../http/errors.js';

/**
 * Runs `change` in a transaction (with its audit rows); if it breaks a unique constraint, the
 * whole change rolls back and the caller's `duplicate()` error (a 409) is thrown instead.
 */
export async function transactionalUnique<T>(em: EntityManager, change: (tx: EntityManager) => Promise<T>, duplicate: () => HttpError): Promise<T> {
  try {
    return await em.transactional(change);
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException) throw duplicate();
    throw error;
  }
}
