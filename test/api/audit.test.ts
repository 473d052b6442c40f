import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { listKeys } from '../../api/storage/s3.js';
import { sharedDatabase, type TestApi } from '../support/api.js';
import { auditRows, type SignedIn } from '../support/auth.js';
import { auditChained } from '../support/audit.js';
import { sql } from '../support/postgres.js';
import { sharedS3, startClinic } from '../support/s3.js';

/** An owner-made trigger that refuses the audit row of one request: the audit write fails, nothing else does. */
async function failAuditWritesOf(requestId: string): Promise<() => Promise<void>> {
  const { ownerUrl } = await sharedDatabase();
  const name = `fail_audit_${randomUUID().replaceAll('-', '')}`;
  await sql(ownerUrl, `
    create function ${name}() returns trigger language plpgsql as $$
    begin
      if new.request_id = '${requestId}' then raise exception 'injected audit failure'; end if;
      return new;
    end $$;
    create trigger ${name} before insert on audit_queue for each row execute function ${name}();`);
  return async () => {
    await sql(ownerUrl, `drop trigger ${name} on audit_queue; drop function ${name}();`);
  };
}

describe('the audit trail over HTTP (CONTRACT §4)', function () {
  this.timeout(60_000);
  let api: TestApi, staff: SignedIn, doctor: SignedIn, admin: SignedIn, auditor: SignedIn;
  before(async () => ({ api, staff, doctor, admin, auditor } = await startClinic()));
  after(() => api?.close());

  const call = (user: SignedIn, method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    api.request(method, path, { token: user.accessToken, body, headers });

  describe('one row per sensitive action, ids only', () => {
    it('records who, what, where and in which request for each record change', async () => {
      const secretName = `Phi Name ${randomUUID()}`;
      const requestId = `req-${randomUUID()}`;
      const patient = (await call(staff, 'POST', '/patients', { fullName: secretName, dateOfBirth: '1970-01-02', notes: 'phi notes' }, { 'x-request-id': requestId })).body;
      await call(staff, 'PATCH', `/patients/${patient.id}`, { notes: 'more phi notes' });
      const visit = (await call(doctor, 'POST', `/patients/${patient.id}/visits`, { visitedAt: '2024-01-01T10:00:00Z', reason: 'phi reason' })).body;
      await call(doctor, 'PATCH', `/visits/${visit.id}`, { notes: 'phi', followUpAt: '2024-02-01T10:00:00Z' });
      const medicine = (await call(admin, 'POST', '/medicines', { name: `Med ${randomUUID()}` })).body;
      const preset = (await call(doctor, 'POST', '/rx-presets', { name: `Preset ${randomUUID()}`, items: [{ medicineId: medicine.id, dose: '1', frequency: 'daily', durationDays: 2 }] })).body;
      const rx = (await call(doctor, 'POST', `/patients/${patient.id}/visits/${visit.id}/rx`, { items: [{ medicineId: medicine.id, dose: '1', frequency: 'daily', durationDays: 2 }] })).body;
      await call(staff, 'DELETE', `/patients/${patient.id}`);

      const expected: [string, string, SignedIn][] = [
        ['patient.create', patient.id, staff], ['patient.update', patient.id, staff], ['patient.delete', patient.id, staff],
        ['visit.create', visit.id, doctor], ['visit.update', visit.id, doctor], ['follow_up.update', visit.id, doctor],
        ['medicine.create', medicine.id, admin], ['rx_preset.create', preset.id, doctor], ['rx.create', rx.id, doctor],
      ];
      for (const [action, entityId, actor] of expected) {
        const rows = await auditRows(action, entityId);
        assert.equal(rows.length, 1, action);
        assert.equal(rows[0]!.outcome, 'success');
        assert.equal(rows[0]!.actor_id, actor.id, action);
        assert.equal(rows[0]!.actor_role, actor.role, action);
        assert.match(String(rows[0]!.ip), /127\.0\.0\.1/);
        assert.match(String(rows[0]!.request_id), /.{8,}/);
      }
      assert.equal((await auditRows('patient.create', patient.id))[0]!.request_id, requestId);
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select * from audit_trail');
      assert.doesNotMatch(JSON.stringify(rows), new RegExp(`${secretName}|1970-01-02|phi notes|phi reason`), 'the trail holds no PHI');
    });

    it('logs each committed record as event audit, ids only', async () => {
      const patient = (await call(staff, 'POST', '/patients', { fullName: 'Logged Person', dateOfBirth: '1990-03-03' })).body;
      const [line] = api.logs.records('audit').filter((r) => r.entityId === patient.id);
      assert.ok(line, 'an audit line');
      assert.equal(line.action, 'patient.create');
      assert.equal(line.actorId, staff.id);
      assert.doesNotMatch(JSON.stringify(api.logs.records('audit')), /Logged Person/);
    });
  });

  describe('a change never commits without its row', () => {
    it('answers 503 and logs audit_write_failed when the row cannot be written, leaving no change behind', async () => {
      const requestId = `inject-${randomUUID()}`;
      const name = `Never Stored ${randomUUID()}`;
      const restore = await failAuditWritesOf(requestId);
      try {
        const res = await call(staff, 'POST', '/patients', { fullName: name, dateOfBirth: '1980-01-01' }, { 'x-request-id': requestId });
        assert.equal(res.status, 503);
        assert.equal(res.body.error, 'unavailable');
        assert.doesNotMatch(JSON.stringify(res.body), /injected|audit_logs|trigger/);
        const failed = api.logs.records('audit_write_failed').filter((r) => r.reqId === requestId);
        assert.equal(failed.length, 1);
        assert.equal(failed[0]!.action, 'patient.create');
        assert.equal(api.logs.records('audit').filter((r) => r.reqId === requestId).length, 0);
      } finally {
        await restore();
      }
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select count(*)::int as n from patients where full_name = $1', [name]);
      assert.equal(rows[0].n, 0, 'the patient was not created');
    });

    it('leaves an update unapplied, and a prescription without its document in the bucket', async () => {
      const patient = (await call(staff, 'POST', '/patients', { fullName: 'Kept As Is', dateOfBirth: '1980-01-01', notes: 'before' })).body;
      const visit = (await call(doctor, 'POST', `/patients/${patient.id}/visits`, { visitedAt: '2024-01-01T10:00:00Z', reason: 'check' })).body;
      const medicine = (await call(admin, 'POST', '/medicines', { name: `Med ${randomUUID()}` })).body;
      const requestId = `inject-${randomUUID()}`;
      const restore = await failAuditWritesOf(requestId);
      try {
        assert.equal((await call(staff, 'PATCH', `/patients/${patient.id}`, { notes: 'after' }, { 'x-request-id': requestId })).status, 503);
        const rx = await call(doctor, 'POST', `/patients/${patient.id}/visits/${visit.id}/rx`, { items: [{ medicineId: medicine.id, dose: '1', frequency: 'daily', durationDays: 1 }] }, { 'x-request-id': requestId });
        assert.equal(rx.status, 503);
      } finally {
        await restore();
      }
      assert.equal((await call(staff, 'GET', `/patients/${patient.id}`)).body.notes, 'before');
      assert.equal((await call(doctor, 'GET', `/patients/${patient.id}/visits/${visit.id}/rx`)).body.items.length, 0);
      const s3 = await sharedS3();
      const storage = s3.storage();
      assert.deepEqual(await listKeys(storage, s3.s3.xrayBucket!, `patients/${patient.id}/visits/${visit.id}/rx/`), [], 'the document was removed again');
      storage.client.destroy();
    });
  });

  describe('GET /admin/audit', () => {
    it('is for auditors and admins only', async () => {
      assert.equal((await call(doctor, 'GET', '/admin/audit')).status, 403);
      assert.equal((await call(staff, 'GET', '/admin/audit/verify')).status, 403);
      assert.equal((await api.request('GET', '/admin/audit')).status, 401);
    });

    it('filters, pages newest first, and audits the read itself', async () => {
      const patient = (await call(staff, 'POST', '/patients', { fullName: 'Filter Me', dateOfBirth: '1980-01-01' })).body;
      for (const notes of ['a', 'b', 'c']) await call(staff, 'PATCH', `/patients/${patient.id}`, { notes });
      await auditChained((await sharedDatabase()).ownerUrl);
      const seen: { action: string; seq: string; entityId: string }[] = [];
      let cursor: string | null = null;
      do {
        const page = await call(auditor, 'GET', `/admin/audit?entity=patient&entityId=${patient.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(page.status, 200, JSON.stringify(page.body));
        seen.push(...page.body.items);
        cursor = page.body.nextCursor;
      } while (cursor);
      assert.deepEqual(seen.map((r) => r.action), ['patient.update', 'patient.update', 'patient.update', 'patient.create']);
      assert.ok(seen.every((r, i) => i === 0 || BigInt(r.seq) < BigInt(seen[i - 1]!.seq)), 'newest first');

      const byActor = await call(admin, 'GET', `/admin/audit?actor=${staff.id}&action=patient.create&limit=200`);
      assert.ok(byActor.body.items.every((r: { actorId: string; action: string }) => r.actorId === staff.id && r.action === 'patient.create'));
      const window = await call(admin, `GET`, `/admin/audit?from=${encodeURIComponent(new Date(Date.now() - 60_000).toISOString())}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&outcome=success`);
      assert.ok(window.body.items.length > 0);
      assert.equal((await call(admin, 'GET', '/admin/audit?from=yesterday')).status, 422);

      const reads = await sql((await sharedDatabase()).ownerUrl, `select actor_id, details from audit_trail where action = 'audit.read' and actor_id = $1 order by occurred_at, id`, [auditor.id]);
      assert.equal(reads.rows.length, 2, 'one row per page read');
      assert.deepEqual(reads.rows[0].details, { filters: 'entity,entityId', rows: 2, paged: false });
    });
  });

  describe('GET /admin/audit/verify', () => {
    it('checks the chain end to end, even while requests write to it concurrently', async () => {
      const writes = Array.from({ length: 16 }, (_, i) => call(staff, 'POST', '/patients', { fullName: `Concurrent ${i}`, dateOfBirth: '1980-01-01' }));
      const statuses = (await Promise.all(writes)).map((res) => res.status);
      assert.deepEqual([...new Set(statuses)], [201]);
      await auditChained((await sharedDatabase()).ownerUrl);
      const report = await call(auditor, 'GET', '/admin/audit/verify');
      assert.equal(report.status, 200);
      assert.equal(report.body.ok, true, JSON.stringify(report.body));
      const { rows } = await sql((await sharedDatabase()).ownerUrl, 'select count(*)::int as n, (select hash from audit_chain_head) as head from audit_logs');
      assert.ok(report.body.checked >= rows[0].n - 1);
      assert.match(report.body.headHash, /^[0-9a-f]{64}$/);
      assert.equal((await auditRows('audit.verify')).filter((r) => r.actor_id === auditor.id).length, 1);
    });

    it('names the first row an owner altered behind the trigger', async () => {
      const { ownerUrl } = await sharedDatabase();
      await auditChained(ownerUrl);
      const { rows } = await sql(ownerUrl, `select seq::text as seq, id::text as id, actor_role from audit_logs where action = 'patient.create' order by seq desc limit 1`);
      const target = rows[0];
      const setRole = (role: string) => sql(ownerUrl, `begin;
        alter table audit_logs disable trigger audit_logs_no_update;
        update audit_logs set actor_role = '${role}' where seq = ${target.seq};
        alter table audit_logs enable trigger audit_logs_no_update;
        commit;`);
      await setRole('admin');
      try {
        const report = await call(auditor, 'GET', '/admin/audit/verify');
        assert.equal(report.body.ok, false);
        assert.deepEqual(report.body.firstBroken, { seq: target.seq, id: target.id, reason: 'hash_mismatch' });
      } finally {
        await setRole(target.actor_role);
      }
      assert.equal((await call(auditor, 'GET', '/admin/audit/verify')).body.ok, true, 'the original value verifies again');
    });
  });
});
