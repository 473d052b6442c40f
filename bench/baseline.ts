import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import pg from 'pg';

/**
 * The yardstick: a bare Koa 3 app running the same SQL as the API's hot read and audited write,
 * with a `pg` pool of the same size, on the same primary; no auth, limits, audit or logs (but for
 * `POST /patients/with-audit-record`, below).
 */
const primary = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });

const COLUMNS = 'id, full_name, date_of_birth, sex, phone, email, notes, created_at, updated_at';
const present = (row: Record<string, unknown>) => ({
  id: row.id, fullName: row.full_name, dateOfBirth: row.date_of_birth, sex: row.sex, phone: row.phone,
  email: row.email, notes: row.notes, createdAt: row.created_at, updatedAt: row.updated_at,
});

const INSERT_PATIENT = `insert into patients (id, full_name, date_of_birth, sex, phone, email, notes, deleted_at, created_at, updated_at)
  values ($1, $2, $3, $4, $5, $6, $7, null, now(), now()) returning ${COLUMNS}`;
/**
 * The same insert with the audit record the API's create commits beside it (a row of
 * `audit_queue`, in the same statement, as api/audit/audited-create.ts writes it): the price of
 * the record alone, without the API's other work. The API's sequencer chains these too.
 */
const INSERT_PATIENT_WITH_RECORD = `with created as (${INSERT_PATIENT}),
  queued as (
    insert into audit_queue (id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details)
    select gen_random_uuid(), now(), 'bench-baseline', 'doctor', 'patient.create', 'success', 'patient', created.id::text, '127.0.0.1', gen_random_uuid()::text, '{}'
      from created)
  select * from created`;

async function readJson(req: NodeJS.ReadableStream): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text) as Record<string, unknown>;
}

const app = new Koa();
app.use(async (ctx) => {
  const read = /^\/patients\/([0-9a-f-]{36})$/.exec(ctx.path);
  if (ctx.method === 'GET' && read) {
    const { rows } = await primary.query(`select ${COLUMNS} from patients where id = $1 and deleted_at is null`, [read[1]]);
    if (!rows[0]) ctx.status = 404;
    else ctx.body = present(rows[0]);
    return;
  }
  if (ctx.method === 'POST' && (ctx.path === '/patients' || ctx.path === '/patients/with-audit-record')) {
    const body = await readJson(ctx.req);
    const values = [randomUUID(), body.fullName, body.dateOfBirth, body.sex ?? null, body.phone ?? null, body.email ?? null, body.notes ?? null];
    const { rows } = await primary.query(ctx.path === '/patients' ? INSERT_PATIENT : INSERT_PATIENT_WITH_RECORD, values);
    ctx.status = 201;
    ctx.body = present(rows[0]);
    return;
  }
  ctx.status = 404;
});

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ event: 'startup', port: (server.address() as { port: number }).port })}\n`);
});
process.once('SIGTERM', () => server.close(() => void primary.end().then(() => process.exit(0))));
