import { raw } from '@mikro-orm/core';
import { sql, type RawBuilder } from 'kysely';
import { accepted, calendarDate, rule, type Rule } from '../http/validation.js';

/**
 * What a search string asks for. The string itself is PHI (a name, a birth date, a phone number):
 * it is matched in SQL parameters only, and no log line, error body or audit record repeats it.
 */
export type PatientSearch =
  | { by: 'dateOfBirth'; date: string }
  | { by: 'phone'; digits: string }
  | { by: 'name'; words: string[] };

/** Trigram indexes need three characters to narrow anything down. */
export const MIN_NAME_SEARCH = 3;
/** A shorter phone suffix matches a good share of every clinic's patients. */
export const MIN_PHONE_DIGITS = 3;
const PHONE_SHAPED = /^\+?[0-9 ()./-]+$/;

/**
 * `q` of `GET /patients`: a date `YYYY-MM-DD` is an exact date of birth; digits (with the
 * separators a phone number is written with) are the end of a phone number; anything else is part
 * of a name, each word of it, in any letter case and with or without accents.
 */
export function patientSearch(): Rule<PatientSearch> {
  return rule<PatientSearch>(
    { type: 'string', minLength: 1, maxLength: 200, description: 'Part of a name (each word, any case or accents), a date of birth YYYY-MM-DD, or the last digits of a phone number.' },
    (value) => {
      if (typeof value !== 'string') return 'must be a string';
      const q = value.trim();
      if (q.length === 0 || q.length > 200) return 'must be 1 to 200 characters';
      if (/[\u0000-\u001f\u007f]/.test(q)) return 'must not contain control characters';
      if (/^\d{4}-\d{2}-\d{2}$/.test(q)) {
        const dateOfBirth = accepted(calendarDate(), q);
        return dateOfBirth ? { value: { by: 'dateOfBirth', date: dateOfBirth } } : 'is not a real date';
      }
      if (PHONE_SHAPED.test(q)) {
        const digits = q.replace(/\D/g, '');
        return digits.length >= MIN_PHONE_DIGITS ? { value: { by: 'phone', digits } } : `a phone number needs at least ${MIN_PHONE_DIGITS} digits`;
      }
      const words = q.split(/\s+/);
      if (words.join('').length < MIN_NAME_SEARCH) return `a name needs at least ${MIN_NAME_SEARCH} characters`;
      return { value: { by: 'name', words } };
    },
  );
}

/** `text` as a literal inside a LIKE pattern (backslash is PostgreSQL's default LIKE escape). */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, '\\$&');

/**
 * "Contains `text`", folded the way the trigram index on `column` is (`dms_fold`, migration 0014):
 * the index is used only when the query spells the expression exactly as the index does. For text
 * that is not PHI (medicine names): MikroORM writes `text` into the statement.
 */
export function foldedContains(column: string, text: string): Record<string, unknown> {
  return { [raw((alias: string) => `dms_fold(${alias}.${column}) like '%' || dms_fold(?) || '%'`, [likeLiteral(text)])]: [] };
}

/**
 * The SQL condition of a patient search, each form on its own index (migration 0014). A Kysely
 * `sql` fragment, so the search string is a bound parameter and never part of a statement's text,
 * wherever that text is shown (a PostgreSQL log with `log_min_duration_statement` on, as tests
 * and developers may run it; `pg_stat_statements`). MikroORM 7 writes values into the statement
 * text instead, so the search does not go through it (see patientsQuery); the stacks' parameter
 * group logs no statement text at all (infra/database.ts).
 */
export function patientSearchCondition(search: PatientSearch): RawBuilder<boolean> {
  switch (search.by) {
    case 'dateOfBirth':
      return sql<boolean>`date_of_birth = ${search.date}::date`;
    case 'phone':
      return sql<boolean>`dms_phone_suffix_key(phone) like ${`${[...search.digits].reverse().join('')}%`}`;
    case 'name':
      // Spelt as the trigram index is (dms_fold(full_name)): the index serves only that expression.
      return sql<boolean>`${sql.join(search.words.map((word) => sql`dms_fold(full_name) like '%' || dms_fold(${likeLiteral(word)}) || '%'`), sql` and `)}`;
  }
}
