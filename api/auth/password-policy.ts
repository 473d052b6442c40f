import { readFileSync } from 'node:fs';
import { validationFailed } from '../http/errors.js';

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;

/**
 * Breached passwords, lower-cased, one a line, sorted (api/auth/data/README.md says where they come
 * from and how the file is made). A data file, not code: `npm run build` copies it beside the
 * compiled module. Read once, when the module loads, so a missing file stops start-up.
 */
const BREACHED: ReadonlySet<string> = new Set(
  readFileSync(new URL('./data/breached-passwords.txt', import.meta.url), 'utf8').split('\n').filter(Boolean),
);

/** Whom a password is for: it must not be their e-mail or their name. */
export interface PasswordOwner {
  email?: string;
  name?: string;
}

/**
 * The same characters typed on two keyboards can arrive as different code points (composed or
 * not): hash, verify and judge the NFKC form so a password always matches itself.
 */
export const normalisePassword = (password: string) => password.normalize('NFKC');

/** Runs of digits and symbols at either end: `Sunshine2024!` is the word `sunshine`. */
const stripEnds = (text: string) => text.replace(/^[\d\W_]+/u, '').replace(/[\d\W_]+$/u, '');
const lettersAndDigits = (text: string) => text.replace(/[\W_]+/gu, '');

/** The password and the word inside it, each as an attacker's list would hold it. */
function candidates(lower: string): string[] {
  return [...new Set([lower, stripEnds(lower), lower.replace(/[\d\W_]+$/u, ''), lower.replace(/^[\d\W_]+/u, '')])].filter(Boolean);
}

/** One unit said again and again: twelve spaces, `monkeymonkey`, `abcabcabcabc`, `adminadmin` (+ `12`). */
const isRepetition = (text: string) => /^(.+?)\1+$/su.test(text);

/** US keyboard rows, unshifted and shifted: where each key is. */
const KEYBOARD_ROWS = [
  ['`1234567890-=', '~!@#$%^&*()_+'],
  ['qwertyuiop[]\\', 'QWERTYUIOP{}|'],
  ["asdfghjkl;'", 'ASDFGHJKL:"'],
  ['zxcvbnm,./', 'ZXCVBNM<>?'],
] as const;
const KEY_POSITION = new Map<string, { row: number; column: number }>();
KEYBOARD_ROWS.forEach((spellings, row) => {
  for (const keys of spellings) [...keys].forEach((key, column) => KEY_POSITION.set(key, { row, column }));
});

/**
 * A step a person makes without thinking: the same key again, a neighbouring key (left, right,
 * above, below), or the next or previous letter or digit (`abc`, `987`).
 */
function isPredictableStep(from: string, to: string): boolean {
  if (from === to) return true;
  const a = from.codePointAt(0)!;
  const b = to.codePointAt(0)!;
  if (Math.abs(a - b) === 1 && /[a-z0-9]/i.test(from) && /[a-z0-9]/i.test(to)) return true;
  const p = KEY_POSITION.get(from);
  const q = KEY_POSITION.get(to);
  if (!p || !q) return false;
  const rows = Math.abs(p.row - q.row);
  const columns = Math.abs(p.column - q.column);
  return (rows === 0 && columns === 1) || (rows === 1 && columns <= 1);
}

/** Most of the password is a walk along the keyboard or the alphabet: `qwertyuiopas`, `1qaz2wsx3edc`, `aaaaaaaaaaab`. */
const WALK_SHARE = 0.75;

function isKeyboardWalk(password: string): boolean {
  const keys = [...password];
  let predictable = 0;
  for (let i = 1; i < keys.length; i++) if (isPredictableStep(keys[i - 1]!, keys[i]!)) predictable++;
  return predictable >= WALK_SHARE * (keys.length - 1);
}

/** Is the password the owner's e-mail or name (or a part of either long enough to mean them)? */
function isAboutOwner(lower: string, owner: PasswordOwner): boolean {
  const compact = lettersAndDigits(lower);
  const email = owner.email?.normalize('NFKC').toLowerCase();
  const name = owner.name?.normalize('NFKC').toLowerCase();
  const words = name ? name.split(/[\W_]+/u).filter(Boolean) : [];
  const personal = [email, email?.split('@')[0], name, ...words].filter((part): part is string => !!part).map(lettersAndDigits).filter(Boolean);
  const cores = candidates(lower).map(lettersAndDigits);
  // Short words (Ann, Lee) only when they are all there is; longer ones anywhere in the password.
  return personal.some((part) => cores.includes(part) || (part.length >= 4 && compact.includes(part)));
}

/**
 * Why a new password is refused, or undefined when it is acceptable. ASVS 2.1: a length rule and a
 * breached-password list, no composition rules; and what guessers try first besides the list:
 * repetitions, keyboard walks, the user's own e-mail or name.
 */
export function passwordProblem(password: string, owner: PasswordOwner = {}): string | undefined {
  const normal = normalisePassword(password);
  const length = [...normal].length;
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  const lower = normal.toLowerCase();
  const cores = candidates(lower);
  if ([...cores, ...cores.map(lettersAndDigits)].some(isRepetition)) return 'is one thing repeated: choose a longer, less predictable passphrase';
  if (isKeyboardWalk(normal)) return 'is a walk along the keyboard or the alphabet: choose a less predictable passphrase';
  if (isAboutOwner(lower, owner)) return 'must not be your e-mail address or your name';
  // A breached word with digits or symbols around it (`Sunshine2024!`) is as guessable as the word.
  if (cores.some((candidate) => BREACHED.has(candidate))) return 'is too common (it is on lists of breached passwords): choose a longer, less predictable passphrase';
  return undefined;
}

/** The password when the policy accepts it for `owner`; otherwise 422 naming `field` (never echoing the password). */
export function acceptablePassword(field: string, password: string, owner: PasswordOwner): string {
  const problem = passwordProblem(password, owner);
  if (problem) throw validationFailed({ [field]: problem });
  return password;
}
