import { requireRole } from '../auth/access.js';
import { discloses } from '../audit/access.js';
import { readPreferringReplica } from '../db/stale-read.js';
import { apiRouter, type ApiRouter } from '../http/router.js';
import { validationFailed } from '../http/errors.js';
import { encodeCursor, listQuery, type CursorKey, type Page } from '../http/pagination.js';
import { accepted, calendarDate } from '../http/validation.js';
import { CLINICIANS } from './roles.js';

/** The longest range one report covers (CONTRACT §2: longer is 422). */
export const MAX_REPORT_DAYS = 366;
const DAY_MS = 86_400_000;

const dayNumber = (date: string) => Date.parse(`${date}T00:00:00Z`) / DAY_MS;
const dateOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** A report page resumes after the last day it served. */
const dayKey: CursorKey<string> = {
  encode: (day) => [day],
  decode: (parts) => (parts.length === 1 ? accepted(calendarDate(), parts[0]) : undefined),
};

interface DayCount {
  date: string;
  visits: number;
}

/**
 * `GET /reports/visits?from&to`: visits per UTC day, every day of the range (zeros included),
 * paginated by day. Served from a replica: a report may be a little stale, and it keeps
 * aggregate scans off the primary; from the primary when no replica answers.
 */
export function reportRoutes(): ApiRouter {
  const router = apiRouter({ prefix: '/reports' });

  router.get('/visits', discloses('report', requireRole(...CLINICIANS)), async (ctx) => {
    const { page, filters: { from, to } } = listQuery(ctx.query, dayKey, { from: calendarDate(), to: calendarDate() });
    const first = dayNumber(from);
    const last = dayNumber(to);
    if (last < first) throw validationFailed({ to: 'must not be before from' });
    if (last - first + 1 > MAX_REPORT_DAYS) throw validationFailed({ to: `the range must cover at most ${MAX_REPORT_DAYS} days` });
    const start = page.after === undefined ? first : Math.max(first, dayNumber(page.after) + 1);
    const end = Math.min(last, start + page.limit - 1);
    const rows = start > end ? [] : await readPreferringReplica(ctx, (connectionType) => ctx.state.em.execute<DayCount[]>(
      `select to_char(d.day, 'YYYY-MM-DD') as date, count(v.id)::int as visits
         from generate_series(?::date, ?::date, interval '1 day') as d(day)
         left join visits v
           on v.visited_at >= d.day at time zone 'UTC' and v.visited_at < (d.day + interval '1 day') at time zone 'UTC'
          and exists (select from patients p where p.id = v.patient_id and p.deleted_at is null)
        group by d.day order by d.day`,
      [dateOf(start), dateOf(end)],
      { connectionType },
    ));
    const body: Page<DayCount> = { items: rows, nextCursor: end < last ? encodeCursor(dayKey.encode(dateOf(end))) : null };
    ctx.body = { from, to, ...body };
  });

  return router;
}
