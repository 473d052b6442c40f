import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from '@20minutes/s3rver';
import type { Config } from '../../api/config.js';
import { createStorage, type Storage } from '../../api/storage/s3.js';
import { startTestApi, type TestApi } from './api.js';
import { signedIn, UNLIMITED, type SignedIn } from './auth.js';
import { freePort } from './postgres.js';

/** The buckets of the run's store, named like the production ones. */
export const XRAY_BUCKET = 'dms-test-xray';
export const AUDIT_BUCKET = 'dms-test-audit';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3 {
  endpoint: string;
  /** `config.s3` for an API or a command talking to this store. */
  s3: Config['s3'];
  storage(presignTtlS?: number): Storage;
  /** What a lifecycle transition (GLACIER) or a restore (STANDARD) does to an object's storage class. */
  setStorageClass(bucket: string, key: string, storageClass: 'GLACIER' | 'DEEP_ARCHIVE' | 'STANDARD'): void;
}

/** Storage classes whose objects a GET cannot read until restored. */
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/**
 * Two behaviours of S3 that s3rver lacks, so tests meet them as production does:
 * - a GET of an object in an archive class answers 403 InvalidObjectState (restore first);
 * - HEAD/GET with `x-amz-checksum-mode: ENABLED` report the object's full SHA-256 (what S3 keeps
 *   from an upload sent with a SHA-256 checksum), here computed from the stored bytes.
 * Sources: https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html.
 */
function awsObjectBehaviour(server: S3rver) {
  return async (ctx: import('koa').Context, next: () => Promise<void>): Promise<void> => {
    const [, bucket, ...keyParts] = ctx.path.split('/');
    const key = decodeURIComponent(keyParts.join('/'));
    // The SDK names the operation in `x-id`; any other parameter is a subresource (?acl, ?tagging).
    const isObjectRead = (ctx.method === 'GET' || ctx.method === 'HEAD') && bucket && key && Object.keys(ctx.query).every((name) => name === 'x-id');
    if (!isObjectRead) return next();
    let metadata: Record<string, string> | undefined;
    try {
      metadata = JSON.parse(readFileSync(server.store.getResourcePath(bucket, key, 'metadata.json'), 'utf8')) as Record<string, string>;
    } catch {
      return next();
    }
    const storageClass = metadata['x-amz-storage-class'];
    if (ctx.method === 'GET' && storageClass && ARCHIVE_CLASSES.has(storageClass)) {
      ctx.status = 403;
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's storage class</Message><StorageClass>${storageClass}</StorageClass></Error>`;
      return;
    }
    await next();
    if (ctx.get('x-amz-checksum-mode') === 'ENABLED' && ctx.status === 200) {
      ctx.set('x-amz-checksum-sha256', createHash('sha256').update(readFileSync(server.store.getResourcePath(bucket, key, 'object'))).digest('base64'));
    }
  };
}

let shared: Promise<TestS3> | undefined;

/**
 * One real S3-compatible server per run (`@20minutes/s3rver`): it checks SigV4 signatures,
 * signed headers and presigned expiry, so a refused upload in a test is refused for the reason S3 would.
 */
export function sharedS3(): Promise<TestS3> {
  shared ??= (async () => {
    const directory = mkdtempSync(join(tmpdir(), 'dms-s3-'));
    process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
    const port = await freePort();
    const server = new S3rver({
      address: '127.0.0.1',
      port,
      silent: true,
      directory,
      configureBuckets: [XRAY_BUCKET, AUDIT_BUCKET].map((name) => ({ name, configs: [] })),
    });
    server.middleware.unshift(awsObjectBehaviour(server));
    await server.run();
    const endpoint = `http://127.0.0.1:${port}`;
    const s3: Config['s3'] = {
      endpoint, forcePathStyle: true, region: 'us-east-1', xrayBucket: XRAY_BUCKET, auditBucket: AUDIT_BUCKET, credentials: CREDENTIALS,
    };
    const setStorageClass = (bucket: string, key: string, storageClass: string) => {
      const path = server.store.getResourcePath(bucket, key, 'metadata.json');
      writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), 'x-amz-storage-class': storageClass }));
    };
    return { endpoint, s3, storage: (presignTtlS = 90) => createStorage({ s3, presignTtlS }), setStorageClass };
  })();
  return shared;
}

/**
 * The real API with the run's S3 store, and limits high enough that a whole test file of requests
 * from 127.0.0.1, by the same few users, never meets them (the rate-limit tests prove the limits).
 */
export async function startRecordsApi(env: Record<string, string> = {}): Promise<TestApi> {
  const { s3 } = await sharedS3();
  return startTestApi({ env: { ...UNLIMITED, ...env }, config: { s3 } });
}

/** The records API and one signed-in user of each role: the cast of most record tests. */
export interface Clinic {
  api: TestApi;
  staff: SignedIn;
  doctor: SignedIn;
  admin: SignedIn;
  auditor: SignedIn;
}

export async function startClinic(env: Record<string, string> = {}): Promise<Clinic> {
  const api = await startRecordsApi(env);
  const [staff, doctor, admin, auditor] = await Promise.all([signedIn(api, 'staff'), signedIn(api, 'doctor'), signedIn(api, 'admin'), signedIn(api, 'auditor')]);
  return { api, staff, doctor, admin, auditor };
}

/** What S3 answered a client that used a presigned URL (sent with exactly the signed headers). */
export async function sendPresigned(method: 'PUT' | 'GET', url: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
