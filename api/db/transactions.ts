import { UniqueConstraintViolationException, type TransactionOptions } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { HttpError } from '../http/errors.js';
import type { Logger } from '../logger.js';
import { databaseFault } from './faults.js';

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

/**
 * Makes `em`'s transactions run again, once, when PostgreSQL ends one with a serialization failure
 * (40001) or a deadlock (40P01): it rolled the whole transaction back, so a second run is safe and
 * nearly always succeeds. A second failure is answered 503 like any database fault. Only the
 * outermost transaction is retried: nested ones run on the transaction's own fork, not on `em`.
 */
export function retryingConflicts(em: EntityManager, log: Logger): EntityManager {
  const transactional = em.transactional.bind(em);
  const retrying = async (work: (tx: EntityManager) => Promise<unknown>, options?: TransactionOptions) => {
    try {
      return await transactional(work, options);
    } catch (error) {
      const fault = databaseFault(error);
      if (fault?.cause !== 'conflict') throw error;
      log.warn('transaction_retried', { sqlstate: fault.sqlstate });
      return transactional(work, options);
    }
  };
  em.transactional = retrying as EntityManager['transactional'];
  return em;
}
