import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  InvalidObjectState,
  ListObjectsV2Command,
  NotFound,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from '../config.js';
import { unavailable } from '../http/errors.js';

/**
 * Server-side encryption every X-ray, prescription and audit object is written with. In AWS it is
 * SSE-KMS with the stack's customer-managed key, named explicitly: an `x-amz-server-side-encryption`
 * header overrides the bucket default, and `aws:kms` without a key id means the AWS-managed `aws/s3`
 * key (https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html), so the
 * bucket policies refuse any other. Embedded and test stores have no KMS: they get `AES256`.
 */
export function serverSideEncryption(storage: Pick<Storage, 'kmsKeyArn'>): { ServerSideEncryption: 'aws:kms'; SSEKMSKeyId: string } | { ServerSideEncryption: 'AES256' } {
  return storage.kmsKeyArn ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: storage.kmsKeyArn } : { ServerSideEncryption: 'AES256' };
}

/** The same as request headers (what a presigned upload's signature covers). */
function encryptionHeaders(storage: Pick<Storage, 'kmsKeyArn'>): Record<string, string> {
  const sse = serverSideEncryption(storage);
  return {
    'x-amz-server-side-encryption': sse.ServerSideEncryption,
    ...('SSEKMSKeyId' in sse ? { 'x-amz-server-side-encryption-aws-kms-key-id': sse.SSEKMSKeyId } : {}),
  };
}

/** What `complete` accepts when the store reports an object's encryption (AWS always does). */
const ENCRYPTED = new Set(['AES256', 'aws:kms', 'aws:kms:dsse']);

export interface Storage {
  client: S3Client;
  xrayBucket?: string;
  auditBucket?: string;
  /** ARN of the buckets' KMS key (`S3_KMS_KEY_ARN`); unset for embedded and test stores. */
  kmsKeyArn?: string;
  presignTtlS: number;
}

/** The S3 client of the process: AWS by default, or an S3-compatible endpoint (embedded, tests). */
export function createStorage(config: Pick<Config, 's3' | 'presignTtlS'>): Storage {
  const { endpoint, forcePathStyle, region, credentials, xrayBucket, auditBucket, kmsKeyArn } = config.s3;
  const client = new S3Client({
    region: region ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle,
    ...(credentials ? { credentials } : {}),
    // A checksum of the (empty) body would otherwise be baked into presigned PUT URLs and refuse every upload.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
  if (forcePathStyle) {
    // Path-style `/<bucket>/` and `/<bucket>` name the same bucket; s3rver (the embedded and test
    // store) checks signatures over the latter only, so bucket-level calls (listing) use it.
    client.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as { path?: unknown };
        if (typeof request.path === 'string' && /^\/[^/]+\/$/.test(request.path)) request.path = request.path.slice(0, -1);
        return next(args);
      },
      { step: 'build', name: 'bucketPathWithoutTrailingSlash' },
    );
  }
  return { client, xrayBucket, auditBucket, ...(kmsKeyArn ? { kmsKeyArn } : {}), presignTtlS: config.presignTtlS };
}

/** A bucket the process was configured with; without one (a test API without S3) the route is unavailable. */
export function bucketOf(storage: Storage, which: 'xray' | 'audit'): string {
  const bucket = which === 'xray' ? storage.xrayBucket : storage.auditBucket;
  if (!bucket) throw unavailable();
  return bucket;
}

export interface PresignedUpload {
  method: 'PUT';
  url: string;
  /** Every header the signature covers: the client sends exactly these (HTTP clients set Content-Length from the body). */
  headers: Record<string, string>;
  expiresAt: string;
}

/**
 * A PUT URL for exactly one object: the signature covers the content type, the exact length, the
 * encryption headers and `If-None-Match: *`, and lives `presignTtlS` seconds. `now` is when it was signed.
 *
 * `If-None-Match: *` makes it a create-only write: once an object is at the key, S3 answers a second
 * PUT with 412 Precondition Failed, so the URL cannot replace an X-ray after `complete` verified it
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html; SigV4-signed
 * requests only, which a presigned URL is). The X-ray bucket's policy refuses X-ray PUTs without it.
 */
export async function presignUpload(
  storage: Storage,
  { key, contentType, sizeBytes }: { key: string; contentType: string; sizeBytes: number },
  now = new Date(),
): Promise<PresignedUpload> {
  const command = new PutObjectCommand({
    Bucket: bucketOf(storage, 'xray'),
    Key: key,
    ContentType: contentType,
    ContentLength: sizeBytes,
    IfNoneMatch: '*',
    ...serverSideEncryption(storage),
  });
  const url = await getSignedUrl(storage.client, command, {
    expiresIn: storage.presignTtlS,
    signingDate: now,
    // The presigner leaves these unsigned by default: sign them explicitly.
    signableHeaders: new Set(['content-type', 'content-length', 'if-none-match']),
  });
  return {
    method: 'PUT',
    url,
    headers: { 'content-type': contentType, 'content-length': String(sizeBytes), 'if-none-match': '*', ...encryptionHeaders(storage) },
    expiresAt: new Date(now.getTime() + storage.presignTtlS * 1000).toISOString(),
  };
}

/** A GET URL for one object (one version of it, where the bucket keeps versions), served as a download. */
export async function presignDownload(
  storage: Storage,
  { key, versionId, fileName }: { key: string; versionId?: string; fileName: string },
  now = new Date(),
): Promise<{ url: string; expiresAt: string }> {
  const command = new GetObjectCommand({
    Bucket: bucketOf(storage, 'xray'),
    Key: key,
    ...(versionId ? { VersionId: versionId } : {}),
    ResponseContentDisposition: `attachment; filename="${fileName.replace(/[^\w.-]/g, '_')}"`,
  });
  const url = await getSignedUrl(storage.client, command, { expiresIn: storage.presignTtlS, signingDate: now });
  return { url, expiresAt: new Date(now.getTime() + storage.presignTtlS * 1000).toISOString() };
}

export interface StoredObject {
  sizeBytes: number;
  contentType?: string;
  /** `undefined` where the store does not report it (S3-compatible test servers). */
  encryption?: string;
  etag?: string;
  /** Set in a versioned bucket: the version this describes. */
  versionId?: string;
}

function isMissing(error: unknown): boolean {
  return error instanceof NotFound || error instanceof NoSuchKey || (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404);
}

/** What the store holds at `key` (at `versionId`, when given), or `undefined` when nothing is there. */
export async function headObject(storage: Storage, bucket: string, key: string, versionId?: string): Promise<StoredObject | undefined> {
  try {
    const head = await storage.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
    return {
      sizeBytes: head.ContentLength ?? 0, contentType: head.ContentType, encryption: head.ServerSideEncryption,
      etag: head.ETag, ...(head.VersionId && head.VersionId !== 'null' ? { versionId: head.VersionId } : {}),
    };
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** True when the store reports no encryption or one of the allowed kinds. */
export function encryptionAccepted(object: StoredObject): boolean {
  return object.encryption === undefined || ENCRYPTED.has(object.encryption);
}

/** The first `length` bytes of an object or one version of it (a ranged GET: enough to check a file's signature). */
export async function readHead(storage: Storage, bucket: string, key: string, length: number, versionId?: string): Promise<Buffer> {
  const object = await storage.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${length - 1}`, ...(versionId ? { VersionId: versionId } : {}) }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

/** What the store keeps about an object without reading its body. */
export interface ObjectIntegrity {
  sizeBytes: number;
  /** Hex SHA-256 of the whole object, as S3 stored it from the upload's checksum; `undefined` when none was kept. */
  sha256?: string;
  /** `STANDARD` when S3 names none. */
  storageClass: string;
}

/**
 * An object's size, checksum and storage class, or `undefined` when nothing is there. HEAD works
 * in every storage class, archived ones too; with checksum mode S3 returns the SHA-256 it verified
 * and kept at upload (needs kms:Decrypt for a KMS-encrypted object). Source:
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html (ChecksumMode).
 */
export async function objectIntegrity(storage: Storage, bucket: string, key: string): Promise<ObjectIntegrity | undefined> {
  try {
    const head = await storage.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    return {
      sizeBytes: head.ContentLength ?? 0,
      ...(head.ChecksumSHA256 ? { sha256: Buffer.from(head.ChecksumSHA256, 'base64').toString('hex') } : {}),
      storageClass: head.StorageClass ?? 'STANDARD',
    };
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/**
 * A GET of an object in S3 Glacier Flexible Retrieval or Deep Archive answers InvalidObjectState
 * until it is restored. Source: https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html.
 */
export function isArchived(error: unknown): boolean {
  return error instanceof InvalidObjectState || (error instanceof S3ServiceException && error.name === 'InvalidObjectState');
}

/** The whole object, or `undefined` when it is not there (an archived object throws: see `isArchived`). */
export async function readObject(storage: Storage, bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const object = await storage.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await object.Body!.transformToByteArray());
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** A server-written X-ray bucket object (a prescription document), encrypted like uploads. */
export async function putXrayObject(storage: Storage, { key, body, contentType }: { key: string; body: string; contentType: string }): Promise<void> {
  await storage.client.send(
    new PutObjectCommand({ Bucket: bucketOf(storage, 'xray'), Key: key, Body: body, ContentType: contentType, ...serverSideEncryption(storage) }),
  );
}

export async function deleteObject(storage: Storage, bucket: string, key: string): Promise<void> {
  await storage.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** Every key under `prefix`, in key order. */
export async function listKeys(storage: Storage, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await storage.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((object) => object.Key!).filter(Boolean));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}
