/** What every S3 bucket of the stack carries: encryption, no public access, versioning, TLS-only and KMS-only policies. */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { PolicyStatement } from './iam.js';
import { inRegion } from './region.js';

/**
 * What a bucket holds (its `DataClassification` tag): `phi` buckets must be encrypted with a
 * customer-managed key; the audit trail counts as PHI (it says who saw which patient).
 */
export const DATA_CLASSIFICATION = { phi: 'phi', operational: 'operational' } as const;

/** The statement every bucket carries: requests over plain HTTP are refused. */
export function denyInsecureTransport(bucketArn: pulumi.Input<string>): PolicyStatement {
  return {
    Sid: 'DenyInsecureTransport',
    Effect: 'Deny',
    Principal: '*',
    Action: 's3:*',
    Resource: [bucketArn, pulumi.interpolate`${bucketArn}/*`],
    Condition: { Bool: { 'aws:SecureTransport': 'false' } },
  };
}

/**
 * Refuses every write that does not ask for SSE-KMS with the bucket's own key. A request's
 * `x-amz-server-side-encryption` header overrides the bucket default (AES256 would bypass the CMK),
 * and `aws:kms` without a key id means the AWS-managed `aws/s3` key
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html); so both
 * headers are required, the key id as the key's ARN, which the condition key compares
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html). No IfExists:
 * a write without the headers is refused too. The API, the audit export and presigned uploads send them.
 */
export function requireBucketKey(objects: pulumi.Input<string>, keyArn: pulumi.Input<string>): PolicyStatement[] {
  return [
    {
      Sid: 'DenyWritesWithoutSseKms',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:PutObject',
      Resource: objects,
      Condition: { StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
    },
    {
      Sid: 'DenyWritesWithAnotherKey',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:PutObject',
      Resource: objects,
      Condition: { StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': keyArn } },
    },
  ];
}

/**
 * The settings every bucket shares: default encryption, all four public-access blocks, bucket-owner
 * object ownership (ACLs off) and versioning. Returns the versioning resource (Object Lock needs it first).
 */
export function hardenBucket(
  name: string,
  bucket: aws.s3.Bucket,
  encryption: { algorithm: 'AES256' } | { algorithm: 'aws:kms'; key: aws.kms.Key },
  opts: pulumi.CustomResourceOptions,
  region?: string,
): aws.s3.BucketVersioning {
  const where = inRegion(region);
  new aws.s3.BucketServerSideEncryptionConfiguration(
    name,
    {
      bucket: bucket.id,
      ...where,
      rules: [
        encryption.algorithm === 'aws:kms'
          ? { applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: encryption.key.arn }, bucketKeyEnabled: true }
          : { applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } },
      ],
    },
    opts,
  );
  new aws.s3.BucketPublicAccessBlock(
    name,
    { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true, ...where },
    opts,
  );
  new aws.s3.BucketOwnershipControls(name, { bucket: bucket.id, rule: { objectOwnership: 'BucketOwnerEnforced' }, ...where }, opts);
  return new aws.s3.BucketVersioning(name, { bucket: bucket.id, versioningConfiguration: { status: 'Enabled' }, ...where }, opts);
}
