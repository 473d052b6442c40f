import { randomBytes } from 'node:crypto';
import { hash, parseOptions, verify, type Algorithm, type Options } from '@node-rs/argon2';
import { normalisePassword as normalise } from './password-policy.js';

/**
 * OWASP Password Storage Cheat Sheet: argon2id with 19 MiB, 2 passes, 1 lane. `2` is
 * `Algorithm.Argon2id`, a const enum that `isolatedModules` cannot read from the package's types.
 */
export const ARGON2_OPTIONS: Readonly<Options> = { algorithm: 2 as Algorithm, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export function hashPassword(password: string): Promise<string> {
  return hash(normalise(password), ARGON2_OPTIONS);
}

export function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  return verify(passwordHash, normalise(password));
}

/** True when a stored hash was made with other parameters than today's: rehash it at the next sign-in. */
export function needsRehash(passwordHash: string): boolean {
  const stored = parseOptions(passwordHash);
  return stored.algorithm !== ARGON2_OPTIONS.algorithm || stored.memoryCost !== ARGON2_OPTIONS.memoryCost
    || stored.timeCost !== ARGON2_OPTIONS.timeCost || stored.parallelism !== ARGON2_OPTIONS.parallelism;
}

let dummyHash: Promise<string> | undefined;

/** Makes the hash `verifyWithoutUser` checks against; call at start-up so the first unknown e-mail is not slower. */
export function prepareDummyHash(): Promise<string> {
  dummyHash ??= hash(randomBytes(32), ARGON2_OPTIONS);
  return dummyHash;
}

/**
 * Verifies a password against a hash of a random secret made with the same parameters: an
 * unknown e-mail costs the same argon2 work as a known one, so timing does not tell them apart.
 */
export async function verifyWithoutUser(password: string): Promise<false> {
  await verify(await prepareDummyHash(), normalise(password));
  return false;
}
