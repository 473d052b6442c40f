import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { livePatientReads } from '../../api/records/lookup.js';
import { sharedDatabase, startTestApi, type TestApi } from '../support/api.js';
import { signedIn, UNLIMITED, type SignedIn } from '../support/auth.js';
import { sql, statementsSentThrough } from '../support/postgres.js';

/** A pool on the shared database whose statements are counted. */
function countedPool(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  return { pool, statements: statementsSentThrough(pool) };
}

async function insertPatient(ownerUrl: string, { deleted = false } = {}): Promise<string> {
  const id = randomUUID();
  await sql(ownerUrl, `insert into patients (id, full_name, date_of_birth, created_at, updated_at, deleted_at)
    values ($1, $2, '1980-01-01', now(), now(), ${deleted ? 'now()' : 'null'})`, [id, `Read ${id.slice(0, 8)}`]);
  return id;
}

describe('GET /patients/:id: the reads of one turn go to PostgreSQL together', function () {
  this.timeout(60_000);

  describe('one statement for every read asked in the same turn', () => {
    let db: Awaited<ReturnType<typeof sharedDatabase>>;
    let counted: ReturnType<typeof countedPool>;
    before(async () => {
      db = await sharedDatabase();
      counted = countedPool(db.appUrl);
    });
    after(() => counted?.pool.end());

    it('answers each read with its own live patient, and nothing for an unknown or soft-deleted one', async () => {
      const [a, b, c] = [await insertPatient(db.ownerUrl), await insertPatient(db.ownerUrl), await insertPatient(db.ownerUrl)];
      const deleted = await insertPatient(db.ownerUrl, { deleted: true });
      const reads = livePatientReads(async () => counted.pool);
      counted.statements.length = 0;
      const ids = [a, b, deleted, c, randomUUID(), a];
      const rows = await Promise.all(ids.map((id) => reads.read(id)));
      assert.deepEqual(rows.map((row) => row?.id), [a, b, undefined, c, undefined, a]);
      assert.equal(counted.statements.length, 1, 'one statement for the six reads');
      assert.equal(rows[0]!.full_name, `Read ${a.slice(0, 8)}`);
    });

    it('reads again for the next turn, and sees a patient deleted in between as gone', async () => {
      const id = await insertPatient(db.ownerUrl);
      const reads = livePatientReads(async () => counted.pool);
      assert.equal((await reads.read(id))?.id, id);
      await sql(db.ownerUrl, 'update patients set deleted_at = now() where id = $1', [id]);
      assert.equal(await reads.read(id), undefined);
    });

    it('fails every read of a statement that fails, so no request answers from another\'s result', async () => {
      const broken = new pg.Pool({ connectionString: db.appUrl.replace(/\/[^/]+$/, `/no_such_database_${randomUUID().slice(0, 8)}`), max: 1 });
      try {
        const reads = livePatientReads(async () => broken);
        const outcomes = await Promise.allSettled([reads.read(randomUUID()), reads.read(randomUUID())]);
        assert.deepEqual(outcomes.map((outcome) => outcome.status), ['rejected', 'rejected']);
      } finally {
        await broken.end();
      }
    });
  });

  describe('many concurrent requests', () => {
    let api: TestApi;
    let staff: SignedIn;
    before(async () => {
      api = await startTestApi({ env: UNLIMITED });
      staff = await signedIn(api, 'staff');
    });
    after(() => api?.close());

    it('answers each request with the patient it named: 200, or 404 for one soft-deleted or unknown', async () => {
      const { ownerUrl } = await sharedDatabase();
      const live = await Promise.all(Array.from({ length: 8 }, () => insertPatient(ownerUrl)));
      const gone = await insertPatient(ownerUrl, { deleted: true });
      const asked = [...live, gone, randomUUID(), ...live.slice().reverse()];
      const answers = await Promise.all(asked.map((id) => api.request('GET', `/patients/${id}`, { token: staff.accessToken })));
      answers.forEach((res, i) => {
        const id = asked[i]!;
        if (live.includes(id)) {
          assert.equal(res.status, 200, id);
          assert.equal(res.body.id, id);
          assert.equal(res.body.fullName, `Read ${id.slice(0, 8)}`);
          assert.equal(res.body.dateOfBirth, '1980-01-01');
        } else {
          assert.equal(res.status, 404, id);
          assert.equal(res.body.error, 'not_found');
        }
      });
    });
  });
});
