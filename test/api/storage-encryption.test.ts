// Every PHI write names SSE-KMS with the stack's key in AWS (the bucket policies refuse anything
// else), and AES256 on the embedded/test store, which has no KMS.
import assert from 'node:assert/strict';
import type { PutObjectCommandInput } from '@aws-sdk/client-s3';
import { createStorage, presignUpload, putXrayObject, type Storage } from '../../api/storage/s3.js';

const KEY_ARN = 'arn:aws:kms:us-east-2:123456789012:key/0b7a2f4e-93d1-4c55-9a0e-6f2d8c1b7e40';

function storage(kmsKeyArn?: string): Storage {
  return createStorage({
    s3: { forcePathStyle: false, region: 'us-east-2', xrayBucket: 'dms-test-xray', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }, ...(kmsKeyArn ? { kmsKeyArn } : {}) },
    presignTtlS: 90,
  });
}

/** The input of the next PutObject the client would send; nothing leaves the process. */
async function capturedPut(target: Storage, write: () => Promise<void>): Promise<PutObjectCommandInput> {
  let captured: PutObjectCommandInput | undefined;
  target.client.middlewareStack.add(
    () => async (args) => {
      captured = args.input as PutObjectCommandInput;
      return { output: { $metadata: {} } as never, response: {} };
    },
    { step: 'initialize', name: 'capturePut', priority: 'high' },
  );
  await write();
  assert.ok(captured, 'a PutObject was sent');
  return captured;
}

describe('storage: PHI objects are encrypted with the stack key', () => {
  it('signs presigned uploads with aws:kms and the key ARN, and tells the client to send both headers', async () => {
    const upload = await presignUpload(storage(KEY_ARN), { key: 'patients/p/visits/v/xrays/x.png', contentType: 'image/png', sizeBytes: 1234 });
    assert.equal(upload.headers['x-amz-server-side-encryption'], 'aws:kms');
    assert.equal(upload.headers['x-amz-server-side-encryption-aws-kms-key-id'], KEY_ARN);
    const signed = new URL(upload.url).searchParams.get('X-Amz-SignedHeaders') ?? '';
    assert.ok(signed.split(';').includes('x-amz-server-side-encryption'), signed);
    assert.ok(signed.split(';').includes('x-amz-server-side-encryption-aws-kms-key-id'), signed);
  });

  it('writes prescription documents with aws:kms and the key ARN', async () => {
    const target = storage(KEY_ARN);
    const put = await capturedPut(target, () => putXrayObject(target, { key: 'patients/p/visits/v/rx/r.json', body: '{}', contentType: 'application/json' }));
    assert.equal(put.ServerSideEncryption, 'aws:kms');
    assert.equal(put.SSEKMSKeyId, KEY_ARN);
  });

  it('falls back to AES256 on a store without KMS (embedded, tests)', async () => {
    const target = storage();
    const upload = await presignUpload(target, { key: 'patients/p/visits/v/xrays/x.png', contentType: 'image/png', sizeBytes: 10 });
    assert.deepEqual(Object.keys(upload.headers).filter((name) => name.startsWith('x-amz-server-side-encryption')), ['x-amz-server-side-encryption']);
    assert.equal(upload.headers['x-amz-server-side-encryption'], 'AES256');
    const put = await capturedPut(target, () => putXrayObject(target, { key: 'patients/p/visits/v/rx/r.json', body: '{}', contentType: 'application/json' }));
    assert.equal(put.ServerSideEncryption, 'AES256');
    assert.equal(put.SSEKMSKeyId, undefined);
  });
});
