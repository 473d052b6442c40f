import type { EntityManager } from '@mikro-orm/postgresql';
import { validationFailed } from '../http/errors.js';
import type { Logger } from '../logger.js';
import { pageOf, type CursorKey, type Page, type PageRequest } from '../http/pagination.js';
import { accepted, checkQuery, dateTime, isoInstant, rule, uuid, type Problems, type Rule, type Shape } from '../http/validation.js';
import { ACCESS_ACTION, type DisclosureKind } from './access.js';

/**
 * The privacy officer's and the breach runbook's questions of the access records (issue 16), for
 * `GET /admin/audit/accesses/…` and `npm run audit:accesses`. They read every record committed so
 * far, chained or still queued (`audit_disclosures` and `audit_disclosure_trail`, migration 0014).
 */

/** The longest window one query covers: a year, the span of an accounting of disclosures request. */
export const MAX_WINDOW_DAYS = 366;
const DAY_MS = 86_400_000;

export interface Window {
  from: Date;
  to: Date;
}

/** A whole number of at least 1 in a query string. */
const count = (): Rule<number> => rule({ type: 'integer', minimum: 1, maximum: 1_000_000 }, (value) => {
  if (typeof value !== 'string' || !/^[1-9]\d{0,6}$/.test(value) || Number(value) > 1_000_000) return 'must be a whole number from 1 to 1000000';
  return { value: Number(value) };
});

/** The window of every access question: `from` (inclusive) and `to` (exclusive), both required. */
export const windowFilters = { from: dateTime(), to: dateTime() };

/** An accounting is always of a period, and of at most a year. */
export function checkWindow({ from, to }: Window): Window {
  if (to <= from) throw validationFailed({ to: 'must be after from' });
  if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * DAY_MS) throw validationFailed({ to: `the window must cover at most ${MAX_WINDOW_DAYS} days` });
  return { from, to };
}

/** A question's whole query string (`extra` beside the window), every parameter known. */
function questionQuery<S extends Shape>(query: Record<string, string | string[] | undefined>, extra: S) {
  const problems: Problems = {};
  const parsed = checkQuery({ ...windowFilters, ...extra }, query, problems);
  if (!parsed || Object.keys(problems).length > 0) throw validationFailed(problems);
  return { window: checkWindow(parsed as unknown as Window), parsed };
}

/** The window alone (the command line's `--from`/`--to`). */
export const windowOf = (query: Record<string, string | string[] | undefined>) => questionQuery(query, {}).window;

/** The heavy-user question: the window and `minPatients`. */
export function heavyUsersQuery(query: Record<string, string | string[] | undefined>): { window: Window; minPatients: number } {
  const { window, parsed } = questionQuery(query, { minPatients: count() });
  return { window, minPatients: parsed.minPatients };
}

const iso = (date: Date) => date.toISOString();
const OCCURRED_AT = `to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** One access to a patient: when, by whom, what kind, through which request; `seq` once chained. */
export interface PatientAccess {
  id: string;
  seq: string | null;
  occurredAt: string;
  actorId: string | null;
  actorRole: string | null;
  kind: DisclosureKind;
  route: string | null;
  requestId: string | null;
  ip: string | null;
}

interface PatientAccessRow {
  id: string;
  seq: string | null;
  occurred_at: string;
  actor_id: string | null;
  actor_role: string | null;
  kind: DisclosureKind;
  route: string | null;
  request_id: string | null;
  ip: string | null;
}

/** Pages resume after (occurredAt, id), newest first. */
export const accessKey: CursorKey<{ occurredAt: Date; id: string }> = {
  encode: (key) => [key.occurredAt.toISOString(), key.id],
  decode(parts) {
    const occurredAt = accepted(isoInstant(), parts[0]);
    const id = accepted(uuid(), parts[1]);
    return parts.length === 2 && occurredAt && id ? { occurredAt, id } : undefined;
  },
};

/**
 * Every disclosure of `patientId` in the window, newest first ("accounting of disclosures"): each
 * access record that named the patient, chained (through the patient index) or still queued.
 */
export async function accessesToPatient(em: EntityManager, patientId: string, window: Window, page: PageRequest<{ occurredAt: Date; id: string }>): Promise<Page<PatientAccess>> {
  const after = page.after ? 'and (occurred_at, id) < (?::timestamptz, ?::uuid)' : '';
  const afterParams = page.after ? [iso(page.after.occurredAt), page.after.id] : [];
  const rows = await em.execute<PatientAccessRow[]>(
    `select id::text, seq::text, ${OCCURRED_AT} as occurred_at, actor_id, actor_role, details->>'kind' as kind, details->>'route' as route, request_id, ip
       from (
         select l.id, l.seq, l.occurred_at, l.actor_id, l.actor_role, l.details, l.request_id, l.ip
           from audit_disclosures d join audit_logs l on l.seq = d.seq
          where d.patient_id = ?::uuid and d.occurred_at >= ? and d.occurred_at < ?
         union all
         select q.id, null, q.occurred_at, q.actor_id, q.actor_role, q.details, q.request_id, q.ip
           from audit_queue q
          where q.action = '${ACCESS_ACTION}' and q.details->'patients' @> jsonb_build_array(?::text) and q.occurred_at >= ? and q.occurred_at < ?
       ) accesses
      where true ${after}
      order by occurred_at desc, id desc limit ${page.limit + 1}`,
    [patientId, iso(window.from), iso(window.to), patientId, iso(window.from), iso(window.to), ...afterParams],
  );
  return pageOf(rows, page.limit, (row) => accessKey.encode({ occurredAt: new Date(row.occurred_at), id: row.id }), (row) => ({
    id: row.id, seq: row.seq, occurredAt: row.occurred_at, actorId: row.actor_id, actorRole: row.actor_role,
    kind: row.kind, route: row.route, requestId: row.request_id, ip: row.ip,
  }));
}

/** A patient a user saw in the window: how often, of which kind, first and last. */
export interface PatientSeen {
  patientId: string;
  accesses: number;
  byKind: Partial<Record<DisclosureKind, number>>;
  firstAt: string;
  lastAt: string;
}

/** Pages resume after the last patient id. */
export const patientKey: CursorKey<string> = {
  encode: (patientId) => [patientId],
  decode: (parts) => (parts.length === 1 ? accepted(uuid(), parts[0]) : undefined),
};

/** Every patient `actorId` accessed in the window, with counts by kind, in patient id order. */
export async function patientsSeenBy(em: EntityManager, actorId: string, window: Window, page: PageRequest<string>): Promise<Page<PatientSeen>> {
  const rows = await em.execute<{ patient_id: string; kind: DisclosureKind; n: number; first_at: string; last_at: string }[]>(
    `select patient_id::text, kind, count(*)::int as n,
            to_char(min(occurred_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as first_at,
            to_char(max(occurred_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_at
       from audit_disclosure_trail
      where patient_id in (
              select distinct patient_id from audit_disclosure_trail
               where actor_id = ? and occurred_at >= ? and occurred_at < ? ${page.after ? 'and patient_id > ?::uuid' : ''}
               order by patient_id limit ${page.limit + 1})
        and actor_id = ? and occurred_at >= ? and occurred_at < ?
      group by patient_id, kind order by patient_id, kind`,
    [actorId, iso(window.from), iso(window.to), ...(page.after ? [page.after] : []), actorId, iso(window.from), iso(window.to)],
  );
  const patients = new Map<string, PatientSeen>();
  for (const row of rows) {
    const seen = patients.get(row.patient_id) ?? { patientId: row.patient_id, accesses: 0, byKind: {}, firstAt: row.first_at, lastAt: row.last_at };
    seen.accesses += row.n;
    seen.byKind[row.kind] = row.n;
    if (row.first_at < seen.firstAt) seen.firstAt = row.first_at;
    if (row.last_at > seen.lastAt) seen.lastAt = row.last_at;
    patients.set(row.patient_id, seen);
  }
  return pageOf([...patients.values()], page.limit, (seen) => patientKey.encode(seen.patientId), (seen) => seen);
}

/** A user who saw more distinct patients in the window than the threshold. */
export interface HeavyUser {
  actorId: string;
  patients: number;
  accesses: number;
}

/** At most this many heavy users per answer, most patients first: more is an incident, not a list. */
export const HEAVY_USERS_LIMIT = 200;

/** Users who accessed more than `minPatients` distinct patients in the window (an exfiltration signal), most first. */
export async function heavyUsers(em: EntityManager, window: Window, minPatients: number): Promise<HeavyUser[]> {
  const rows = await em.execute<{ actor_id: string; patients: number; accesses: number }[]>(
    `select actor_id, count(distinct patient_id)::int as patients, count(*)::int as accesses
       from audit_disclosure_trail
      where occurred_at >= ? and occurred_at < ? and actor_id is not null
      group by actor_id having count(distinct patient_id) > ?
      order by patients desc, actor_id limit ${HEAVY_USERS_LIMIT}`,
    [iso(window.from), iso(window.to), minPatients],
  );
  return rows.map((row) => ({ actorId: row.actor_id, patients: row.patients, accesses: row.accesses }));
}


/** The window the heavy-user check looks back over, and how often the leading sequencer runs it. */
export const HEAVY_USER_WINDOW_MINUTES = 60;
export const HEAVY_USER_CHECK_MS = 60_000;

/**
 * Logs `phi_access_heavy_user` (warn) for each user who accessed more than `threshold` distinct
 * patients in the last hour (`AUDIT_HEAVY_USER_PATIENTS`): what the `bulk-patient-access` alarm
 * counts. The leading sequencer runs it, so the counts span every task and each is logged once.
 */
export async function reportHeavyUsers(em: EntityManager, log: Logger, threshold: number, now = new Date()): Promise<number> {
  const window = { from: new Date(now.getTime() - HEAVY_USER_WINDOW_MINUTES * 60_000), to: now };
  const users = await heavyUsers(em, window, threshold);
  for (const user of users) {
    log.warn('phi_access_heavy_user', { actorId: user.actorId, patients: user.patients, accesses: user.accesses, windowMinutes: HEAVY_USER_WINDOW_MINUTES, threshold });
  }
  return users.length;
}
