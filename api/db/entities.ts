import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const ROLES = ['admin', 'doctor', 'staff', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export const timestamps = {
  createdAt: p.datetime().onCreate(() => new Date()),
  updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
};

export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    email: p.text().unique(),
    name: p.text(),
    role: p.enum(ROLES),
    passwordHash: p.text().hidden().lazy(),
    disabled: p.boolean().default(false),
    /** Set by an admin: the next sign-in can only change the password. */
    mustChangePassword: p.boolean().default(false),
    ...timestamps,
  },
});
export type User = InferEntity<typeof User>;

export const Patient = defineEntity({
  name: 'Patient',
  tableName: 'patients',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    fullName: p.text(),
    dateOfBirth: p.string().columnType('date'),
    sex: p.text().nullable(),
    phone: p.text().nullable(),
    email: p.text().nullable(),
    notes: p.text().nullable(),
    /** Soft delete: a patient with this set is 404 everywhere (CONTRACT §2). */
    deletedAt: p.datetime().nullable().hidden(),
    ...timestamps,
  },
});
export type Patient = InferEntity<typeof Patient>;
