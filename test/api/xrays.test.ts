import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { presignDownload, presignUpload } from '../../api/storage/s3.js';
import { MAX_XRAY_BYTES } from '../../api/records/shapes.js';
import { allLogLines, sharedDatabase, type TestApi } from '../support/api.js';
import { auditRows, rememberSecret, type SignedIn } from '../support/auth.js';
import { sql } from '../support/postgres.js';
import { sendPresigned as send, sharedS3, startClinic, type TestS3 } from '../support/s3.js';

/** A real PNG header followed by noise: enough for the file-signature check. */
const png = (size: number) => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(size - 8)]);
const jpeg = (size: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(size - 4)]);
const dicom = (size: number) => Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), randomBytes(size - 132)]);

interface Upload {
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

describe('X-rays through presigned S3 URLs (CONTRACT §3)', function () {
  this.timeout(60_000);
  let api: TestApi, doctor: SignedIn, staff: SignedIn, s3: TestS3;
  before(async () => {
    s3 = await sharedS3();
    ({ api, doctor, staff } = await startClinic());
  });
  after(() => api?.close());

  const call = (method: string, path: string, body?: unknown, user = doctor) => api.request(method, path, { token: user.accessToken, body });

  async function visit(): Promise<{ patientId: string; visitId: string }> {
    const patient = await call('POST', '/patients', { fullName: 'Rosalind Franklin', dateOfBirth: '1960-07-25' }, staff);
    const created = await call('POST', `/patients/${patient.body.id}/visits`, { visitedAt: '2024-05-01T09:30:00Z', reason: 'fracture' }, staff);
    return { patientId: patient.body.id, visitId: created.body.id };
  }

  async function announce(contentType: string, sizeBytes: number, where?: { patientId: string; visitId: string }) {
    const { patientId, visitId } = where ?? (await visit());
    const res = await call('POST', `/patients/${patientId}/visits/${visitId}/xrays`, { contentType, sizeBytes, description: 'left wrist, PA view' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    rememberSecret(new URL(res.body.upload.url).searchParams.get('X-Amz-Signature')!);
    return { xray: res.body.xray as { id: string; status: string; patientId: string; visitId: string }, upload: res.body.upload as Upload, patientId, visitId };
  }

  describe('an upload as announced', () => {
    it('goes straight to S3, completes, and downloads through a presigned GET', async () => {
      const bytes = png(4096);
      const { xray, upload, patientId, visitId } = await announce('image/png', bytes.length);
      assert.equal(xray.status, 'pending');
      assert.equal(upload.method, 'PUT');
      const url = new URL(upload.url);
      assert.match(url.pathname, new RegExp(`/patients/${patientId}/visits/${visitId}/xrays/${xray.id}$`), 'the key is built from ids only');
      assert.equal(url.searchParams.get('X-Amz-Expires'), '90');
      assert.deepEqual(url.searchParams.get('X-Amz-SignedHeaders')!.split(';').sort(), ['content-length', 'content-type', 'host', 'if-none-match', 'x-amz-server-side-encryption'], 'a create-only write: S3 refuses a second PUT to the key (412)');
      assert.ok(Math.abs(Date.parse(upload.expiresAt) - (Date.now() + 90_000)) < 5_000);

      assert.equal((await send('PUT', upload.url, upload.headers, bytes)).status, 200);
      const completed = await call('POST', `/xrays/${xray.id}/complete`);
      assert.equal(completed.status, 200, JSON.stringify(completed.body));
      assert.equal(completed.body.status, 'uploaded');
      assert.equal((await call('POST', `/xrays/${xray.id}/complete`)).body.status, 'uploaded', 'completing twice is harmless');

      const download = await call('GET', `/xrays/${xray.id}/download`);
      assert.equal(download.status, 200);
      rememberSecret(new URL(download.body.url).searchParams.get('X-Amz-Signature')!);
      const fetched = await send('GET', download.body.url);
      assert.equal(fetched.status, 200);
      assert.ok(fetched.body.equals(bytes));

      const listed = await call('GET', `/patients/${patientId}/visits/${visitId}/xrays`);
      assert.deepEqual(listed.body.items.map((x: { id: string; status: string }) => [x.id, x.status]), [[xray.id, 'uploaded']]);
    });

    it('accepts DICOM and JPEG as well', async () => {
      for (const [type, bytes] of [['application/dicom', dicom(2048)], ['image/jpeg', jpeg(1024)]] as const) {
        const { xray, upload } = await announce(type, bytes.length);
        assert.equal((await send('PUT', upload.url, upload.headers, bytes)).status, 200, type);
        assert.equal((await call('POST', `/xrays/${xray.id}/complete`)).body.status, 'uploaded', type);
      }
    });
  });

  describe('S3 refuses any other upload', () => {
    const bytes = png(2048);

    it('refuses one without the encryption header', async () => {
      const { xray, upload } = await announce('image/png', bytes.length);
      const { 'x-amz-server-side-encryption': _omitted, ...withoutEncryption } = upload.headers;
      assert.equal((await send('PUT', upload.url, withoutEncryption, bytes)).status, 403);
      const complete = await call('POST', `/xrays/${xray.id}/complete`);
      assert.equal(complete.status, 409);
      assert.equal(complete.body.error, 'upload_missing');
    });

    it('refuses one larger or smaller than declared', async () => {
      const { upload } = await announce('image/png', bytes.length);
      const larger = Buffer.concat([bytes, Buffer.alloc(1)]);
      assert.equal((await send('PUT', upload.url, { ...upload.headers, 'content-length': String(larger.length) }, larger)).status, 403);
      const smaller = bytes.subarray(0, bytes.length - 1);
      assert.equal((await send('PUT', upload.url, { ...upload.headers, 'content-length': String(smaller.length) }, smaller)).status, 403);
    });

    it('refuses one of another content type', async () => {
      const { upload } = await announce('image/png', bytes.length);
      assert.equal((await send('PUT', upload.url, { ...upload.headers, 'content-type': 'text/html' }, bytes)).status, 403);
    });

    it('refuses one after the URL expired', async () => {
      const { xray, patientId, visitId } = await announce('image/png', bytes.length);
      // The same signing the API does, dated one lifetime and a second ago.
      const storage = s3.storage(api.config.presignTtlS);
      const stale = await presignUpload(
        storage,
        { key: `patients/${patientId}/visits/${visitId}/xrays/${xray.id}`, contentType: 'image/png', sizeBytes: bytes.length },
        new Date(Date.now() - (api.config.presignTtlS + 1) * 1000),
      );
      const refused = await send('PUT', stale.url, stale.headers, bytes);
      assert.equal(refused.status, 403);
      assert.match(refused.body.toString(), /expired/i);
      storage.client.destroy();
    });
  });

  describe('announcing', () => {
    it('allows DICOM, JPEG and PNG only, up to the size cap', async () => {
      const where = await visit();
      const path = `/patients/${where.patientId}/visits/${where.visitId}/xrays`;
      for (const body of [
        { contentType: 'image/gif', sizeBytes: 10 },
        { contentType: 'application/octet-stream', sizeBytes: 10 },
        { contentType: 'image/png', sizeBytes: MAX_XRAY_BYTES + 1 },
        { contentType: 'image/png', sizeBytes: 0 },
        { contentType: 'image/png', sizeBytes: 1.5 },
        { contentType: 'image/png', sizeBytes: 10, key: '../../etc/passwd' },
      ]) {
        const res = await call('POST', path, body);
        assert.equal(res.status, 422, JSON.stringify(body));
      }
      assert.equal((await call('POST', path, { contentType: 'image/png', sizeBytes: MAX_XRAY_BYTES })).status, 201);
    });

    it('answers 404 for a soft-deleted patient, before and after the upload was announced', async () => {
      const { xray, upload, patientId, visitId } = await announce('image/png', 1024);
      await send('PUT', upload.url, upload.headers, png(1024));
      assert.equal((await call('DELETE', `/patients/${patientId}`, undefined, staff)).status, 204);
      const again = await call('POST', `/patients/${patientId}/visits/${visitId}/xrays`, { contentType: 'image/png', sizeBytes: 10 });
      assert.equal(again.status, 404);
      assert.equal(again.body.error, 'patient_not_found');
      assert.equal((await call('POST', `/xrays/${xray.id}/complete`)).status, 404);
      assert.equal((await call('GET', `/xrays/${xray.id}/download`)).status, 404);
    });
  });

  describe('completing', () => {
    it('refuses an object that is not the announced file, and audits the refusal', async () => {
      const { xray, upload } = await announce('image/png', 1024);
      // Signed for image/png and 1024 bytes, S3 takes any bytes of that length: the file signature is ours to check.
      assert.equal((await send('PUT', upload.url, upload.headers, jpeg(1024))).status, 200);
      const res = await call('POST', `/xrays/${xray.id}/complete`);
      assert.equal(res.status, 409);
      assert.equal(res.body.error, 'upload_mismatch');
      const rows = await auditRows('xray.complete', xray.id);
      assert.deepEqual(rows.map((r) => [r.outcome, (r.details as { reason: string }).reason]), [['failure', 'file_signature']]);
    });

    it('binds downloads to the verified object: the upload URL replayed after complete never gets its bytes served', async () => {
      const verified = png(2048);
      const { xray, upload } = await announce('image/png', verified.length);
      assert.equal((await send('PUT', upload.url, upload.headers, verified)).status, 200);
      assert.equal((await call('POST', `/xrays/${xray.id}/complete`)).body.status, 'uploaded');
      // In AWS this second PUT is a 412 (If-None-Match: *, enforced by the bucket policy) and the
      // download names the verified version; s3rver keeps neither, so it takes the replay: the API must still refuse.
      const replacement = png(2048);
      assert.equal((await send('PUT', upload.url, upload.headers, replacement)).status, 200);
      const download = await call('GET', `/xrays/${xray.id}/download`);
      assert.equal(download.status, 409, JSON.stringify(download.body));
      assert.equal(download.body.error, 'xray_object_changed');
      assert.equal(download.body.url, undefined);
      const denied = (await auditRows('xray.download_url_issued', xray.id)).filter((r) => r.outcome === 'denied');
      assert.deepEqual(denied.map((r) => (r.details as { reason: string }).reason), ['object_changed']);
      assert.ok(api.logs.records('xray_object_changed').some((r) => r.xrayId === xray.id));
    });

    it('names the verified version in the download URL where the bucket keeps versions (AWS)', async () => {
      const storage = s3.storage();
      const pinned = new URL((await presignDownload(storage, { key: 'patients/p/visits/v/xrays/x', versionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY', fileName: 'x.png' })).url);
      assert.equal(pinned.searchParams.get('versionId'), '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY');
      const unversioned = new URL((await presignDownload(storage, { key: 'patients/p/visits/v/xrays/x', fileName: 'x.png' })).url);
      assert.equal(unversioned.searchParams.get('versionId'), null);
    });

    it('will not issue a download before the upload completed', async () => {
      const { xray } = await announce('image/png', 1024);
      const res = await call('GET', `/xrays/${xray.id}/download`);
      assert.equal(res.status, 409);
      assert.equal(res.body.error, 'xray_not_uploaded');
    });
  });

  describe('the trail', () => {
    it('audits metadata, upload URL, completion and download URL, ids only', async () => {
      const bytes = png(512);
      const { xray, upload, patientId, visitId } = await announce('image/png', bytes.length);
      await send('PUT', upload.url, upload.headers, bytes);
      await call('POST', `/xrays/${xray.id}/complete`);
      await call('GET', `/xrays/${xray.id}/download`);
      const { rows } = await sql(
        (await sharedDatabase()).ownerUrl,
        `select action, outcome, actor_id, actor_role, details from audit_trail where entity = 'xray' and entity_id = $1 order by occurred_at, id`,
        [xray.id],
      );
      assert.deepEqual(rows.map((r) => r.action), ['xray.create', 'xray.upload_url_issued', 'xray.complete', 'xray.download_url_issued']);
      for (const row of rows) {
        assert.equal(row.actor_id, doctor.id);
        assert.equal(row.actor_role, 'doctor');
        assert.equal(row.details.patientId, patientId);
        assert.equal(row.details.visitId, visitId);
        assert.doesNotMatch(JSON.stringify(row.details), /Rosalind|wrist|X-Amz|https?:/, 'no PHI and no URL in the trail');
      }
    });

    it('never logs a presigned URL', () => {
      assert.ok(allLogLines.length > 0);
      for (const line of allLogLines) assert.doesNotMatch(line, /X-Amz-Signature=[0-9a-f]{16}/i);
    });
  });
});
