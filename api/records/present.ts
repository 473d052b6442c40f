import type { InferEntity } from '@mikro-orm/core';

type Presented<T, K extends keyof T> = { [P in K]: Exclude<T[P], undefined> | null };

/**
 * What a client sees of a record of `entity`: exactly the listed fields, absent optional ones as
 * `null`. A list rather than the entity's own serialisation, so a field added to an entity (a
 * storage key, a soft-delete mark) never reaches a response unless it is named here.
 */
export function presenter<E, const K extends keyof InferEntity<E>>(_entity: E, fields: readonly K[]): (record: InferEntity<E>) => Presented<InferEntity<E>, K> {
  return (record) => Object.fromEntries(fields.map((field) => [field, record[field] ?? null])) as Presented<InferEntity<E>, K>;
}
