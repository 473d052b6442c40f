import { randomBytes } from 'node:crypto';
import { hash, parseOptions, verify, type Algorithm, type Options } from '@node-rs/argon2';
import { COMMON_PASSWORDS } from './common-passwords.js';

/**
 * OWASP Password Storage Cheat Sheet: argon2id with 19 MiB, 2 passes, 1 lane. `2` is
 * `Algorithm.Argon2id`, a const enum that `isolatedModules` cannot read from the package's types.
 */
export const ARGON2_OPTIONS: Readonly<Options> = { algorithm: 2 as Algorithm, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;

/**
 * The same characters typed on two keyboards can arrive as different code points (composed or
 * not): hash and verify the NFKC form so a password always matches itself.
 */
const normalise = (password: string) => password.normalize('NFKC');

/** Why a new password is refused, or undefined when it is acceptable (ASVS 2.1: length and breached lists, no composition rules). */
export function passwordProblem(password: string): string | undefined {
  const length = [...normalise(password)].length;
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  const lower = normalise(password).toLowerCase();
  // A common word with digits or symbols around it ("sunshine2024!") is as guessable as the word.
  const stripped = lower.replace(/[\d\W_]+$/u, '');
  const candidates = [lower, stripped, lower.replace(/^[\d\W_]+/u, ''), stripped.replace(/^[\d\W_]+/u, '')];
  if (candidates.some((candidate) => COMMON_PASSWORDS.has(candidate))) return 'is too common: choose a longer, less predictable passphrase';
  return undefined;
}

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
