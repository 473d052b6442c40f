import assert from 'node:assert/strict';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { accessesToPatient, heavyUsers, patientsSeenBy } from '../../api/audit/accesses.js';
import { purgeAudit } from '../../api/audit/exports.js';
import { trailPage, type TrailFilters } from '../../api/audit/routes.js';
import { sequenceBatch } from '../../api/audit/sequencer.js';
import { auditRowsFrom } from '../../api/audit/store.js';
import { createOrm, type Orm } from '../../api/db/orm.js';
import { createLogger } from '../../api/logger.js';
import type { Storage } from '../../api/storage/s3.js';
import { LogCapture, migratedDatabase } from '../support/api.js';
import { sql } from '../support/postgres.js';

/**
 * Every query of the audit tables stays on an index after migration 0016 took indexes away: the
 * real queries (built by the code the routes and commands run), planned by PostgreSQL on a trail of
 * 200 000 rows over 120 days with fresh statistics. `audit_logs` and `audit_disclosures` grow with
 * the hot retention, so a Seq Scan over either fails; `audit_queue` holds only what the sequencer
 * has not chained yet, so the auditors' questions may read it whole, but the sequencer must take
 * its oldest rows from the index, or a backlog is sorted again for every batch.
 * SHOW_PLANS=1 prints each plan.
 */
describe('the audit tables\' queries stay on their indexes (EXPLAIN, 200 000 records)', function () {
  this.timeout(240_000);
  const LOGS = 200_000;
  const QUEUED = 20_000;
  const GROWING = /Seq Scan on audit_(logs|disclosures)\b/;
  let db: Awaited<ReturnType<typeof migratedDatabase>>, orm: Orm;
  let actor: string, patient: string;

  before(async () => {
    db = await migratedDatabase();
    // Rows written behind the triggers (replica role): the plans need their volume, not their chain.
    // Nine in ten are access records, as on a clinic's trail; 50 users, 20 000 patients.
    const client = new pg.Client({ connectionString: db.ownerUrl });
    await client.connect();
    try {
      await client.query('set session_replication_role = replica');
      await client.query(`
        create temporary table fixture_ids as
          select n, md5('actor' || (n % 50))::uuid::text as actor_id, md5('patient' || (n * 7919 % 20000))::uuid::text as patient_id
            from generate_series(1, ${LOGS + QUEUED}) as n`);
      const hash = (n: string) => `md5((${n})::text) || md5((${n})::text || '.')`;
      await client.query(`
        insert into audit_logs (seq, id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details, prev_hash, hash)
        select n, gen_random_uuid(), now() - interval '120 days' + (n * interval '120 days' / ${LOGS}) - interval '1 hour', actor_id, 'doctor',
               case when n % 10 = 0 then (array['patient.update', 'patient.create', 'auth.login', 'audit.read', 'visit.create'])[1 + n / 10 % 5] else 'phi.access' end,
               'success', 'patient', patient_id, '10.0.0.1', md5(n::text),
               case when n % 10 = 0 then '{}'::jsonb else jsonb_build_object('kind', 'demographics', 'route', '/patients/:id', 'status', 200, 'patients', jsonb_build_array(patient_id)) end,
               case when n = 1 then repeat('0', 64) else ${hash('n - 1')} end, ${hash('n')}
          from fixture_ids where n <= ${LOGS}`);
      await client.query(`update audit_chain_head set seq = ${LOGS}, hash = ${hash(String(LOGS))}`);
      await client.query(`
        insert into audit_disclosures (seq, patient_id, actor_id, kind, occurred_at)
        select seq, entity_id::uuid, actor_id, 'demographics', occurred_at from audit_logs where action = 'phi.access'`);
      // A backlog: the sequencer stopped for the last ten minutes.
      await client.query(`
        insert into audit_queue (id, occurred_at, actor_id, actor_role, action, outcome, entity, entity_id, ip, request_id, details)
        select gen_random_uuid(), now() - interval '10 minutes' + ((n - ${LOGS}) * interval '10 minutes' / ${QUEUED}), actor_id, 'doctor', 'phi.access',
               'success', 'patient', patient_id, '10.0.0.1', md5(n::text),
               jsonb_build_object('kind', 'demographics', 'route', '/patients/:id', 'status', 200, 'patients', jsonb_build_array(patient_id))
          from fixture_ids where n > ${LOGS}`);
      const { rows: [sample] } = await client.query<{ actor_id: string; patient_id: string }>('select actor_id, patient_id from fixture_ids where n = 12345');
      ({ actor_id: actor, patient_id: patient } = sample!);
      await client.query('analyze audit_logs, audit_disclosures, audit_queue');
    } finally {
      await client.end();
    }
    orm = await createOrm({ databaseUrl: db.appUrl, replicaUrls: [], log: createLogger({ level: 'error', env: 'test', stream: new LogCapture() }) });
  });
  after(async () => {
    await orm?.close();
    await db?.drop();
  });

  /**
   * The plans of the statements `run` sends through its entity manager, planned (EXPLAIN) instead
   * of run, as the API's role; each answers no rows, which ends most questions after their first.
   */
  async function plansOf(run: (em: EntityManager) => Promise<unknown>): Promise<string[]> {
    const plans: string[] = [];
    const explaining = {
      async execute(query: string, params: unknown[] = []) {
        const rows = await orm.em.fork().execute<{ 'QUERY PLAN': string }[]>(`explain ${query}`, params);
        const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
        if (process.env.SHOW_PLANS) console.log(`${query}\n${plan}\n`);
        plans.push(plan);
        return [];
      },
    } as unknown as EntityManager;
    await run(explaining);
    assert.ok(plans.length > 0, 'the code sent no statement');
    return plans;
  }

  /** The plans of every statement, nested ones included (PL/pgSQL functions, triggers), that `run` sends on `client`, as auto_explain reports them. */
  async function nestedPlansOf(run: (client: pg.Client) => Promise<unknown>): Promise<string[]> {
    const client = new pg.Client({ connectionString: db.ownerUrl });
    await client.connect();
    const plans: string[] = [];
    client.on('notice', (notice) => {
      if (notice.message?.includes('plan:')) plans.push(notice.message);
    });
    try {
      await client.query(`load 'auto_explain'`);
      await client.query('set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on; set client_min_messages = log');
      await run(client);
    } finally {
      await client.end();
    }
    if (process.env.SHOW_PLANS) console.log(plans.join('\n\n'));
    assert.ok(plans.length > 0, 'auto_explain reported no plan');
    return plans;
  }

  // A batch's plans name thousands of ids: a failure shows the start of each.
  const shown = (plans: string[]) => plans.map((plan) => plan.slice(0, 1_500)).join('\n\n');
  const onIndex = (plans: string[], index: string) => {
    const scanning = plans.filter((plan) => GROWING.test(plan));
    assert.deepEqual(scanning.map((plan) => plan.slice(0, 1_500)), [], 'a Seq Scan over a table that grows with the retention');
    assert.ok(plans.some((plan) => new RegExp(`\\b${index}\\b`).test(plan)), `no plan uses ${index}:\n${shown(plans)}`);
  };
  const page = { limit: 50 };
  const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000);

  describe('GET /admin/audit', () => {
    const trail = (filters: TrailFilters) => plansOf((em) => trailPage(em, filters, page));
    it('unfiltered, and a next page: the primary key, newest first', async () => {
      onIndex(await trail({}), 'audit_logs_pkey');
      onIndex(await plansOf((em) => trailPage(em, {}, { limit: 50, after: '150000' })), 'audit_logs_pkey');
    });
    it('by actor', async () => onIndex(await trail({ actor }), 'audit_logs_actor_seq'));
    it('by an action other than access (the partial action index)', async () => onIndex(await trail({ action: 'patient.update' }), 'audit_logs_action_seq'));
    it('by the access action, most of the trail: the primary key', async () => onIndex(await trail({ action: 'phi.access' }), 'audit_logs_pkey'));
    it('by entity and id', async () => onIndex(await trail({ entity: 'patient', entityId: patient }), 'audit_logs_entity_seq'));
    it('by a day long ago', async () => onIndex(await trail({ from: day(61), to: day(60) }), 'audit_logs_occurred_at'));
  });

  describe('the access questions (GET /admin/audit/accesses/…)', () => {
    it('who saw a patient: the patient index of the disclosures, each record by its seq', async () => {
      const plans = await plansOf((em) => accessesToPatient(em, patient, { from: day(366), to: new Date() }, page));
      onIndex(plans, 'audit_disclosures_patient');
      onIndex(plans, 'audit_logs_pkey');
    });
    it('which patients a user saw: the actor index of the disclosures', async () =>
      onIndex(await plansOf((em) => patientsSeenBy(em, actor, { from: day(30), to: new Date() }, page)), 'audit_disclosures_actor'));
    it('the heavy users of the last hour (the alarm\'s check every minute): the time index of the disclosures', async () =>
      onIndex(await plansOf((em) => heavyUsers(em, { from: new Date(Date.now() - 3_600_000), to: new Date() }, 500)), 'audit_disclosures_occurred_at'));
  });

  describe('export, verify and purge', () => {
    it('read the chain in seq order through the primary key', async () => {
      const plans = await plansOf(async (em) => {
        for await (const record of auditRowsFrom(em, 1000n, 3000n)) assert.fail(`explained, not read: ${record.id}`);
      });
      onIndex(plans, 'audit_logs_pkey');
    });
    it('find the first row inside the hot retention without reading the older ones', async () => {
      const plans = await plansOf((em) => purgeAudit(em, {} as Storage, 90));
      assert.deepEqual(plans.filter((plan) => GROWING.test(plan)), []);
    });
    it('audit_purge() deletes the exported rows and their disclosures by seq', async () => {
      const plans = await nestedPlansOf(async (client) => {
        await client.query('begin');
        try {
          const { rows: [edge] } = await client.query<{ prev_hash: string; hash: string }>('select (select prev_hash from audit_logs where seq = 1) as prev_hash, hash from audit_logs where seq = 1000');
          await client.query(`insert into audit_exports (id, first_seq, last_seq, prev_hash, last_hash, row_count, object_key, sha256, created_at, verified_at)
            values (gen_random_uuid(), 1, 1000, $1, $2, 1000, 'fixture/1-1000.jsonl', 'fixture', now(), now())`, [edge!.prev_hash, edge!.hash]);
          assert.equal((await client.query('select audit_purge(1000, 90) as purged')).rows[0].purged, '1000');
        } finally {
          await client.query('rollback');
        }
      });
      onIndex(plans, 'audit_disclosures_pkey');
      onIndex(plans, 'audit_logs_pkey');
    });
  });

  describe('the sequencer', () => {
    it('takes the oldest of a backlog from the queue\'s index, and chains them without reading the chain or the disclosures', async () => {
      const plans = await nestedPlansOf(async (client) => {
        await client.query('set role dms_api');
        assert.equal(await sequenceBatch(client), 2_000);
      });
      // Its delete of the batch may read the queue whole: 2,000 of a backlog of 20,000 is a tenth of it.
      onIndex(plans, 'audit_queue_occurred_at');
    });
  });
});
