/**
 * The X-ray bucket's CORS rule for the web client: the AWS bucket (infra/storage.ts) and the
 * embedded store of `npm start` (api/embedded.ts) are both configured from it, so a browser meets
 * the same rule in development as in production.
 *
 * - PUT: the presigned upload. Its preflight names `content-type`, `if-none-match` and the
 *   `x-amz-server-side-encryption*` headers; never `content-length`, which a browser sets itself
 *   from the body (a forbidden request header: https://fetch.spec.whatwg.org/#forbidden-request-header).
 * - GET, HEAD: the presigned download, fetched by the page.
 * - ETag exposed: what a client may compare with the record's once `complete` verified it.
 * Header names match case-insensitively in S3 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ManageCorsUsing.html).
 */
export const XRAY_BROWSER_CORS = {
  allowedMethods: ['PUT', 'GET', 'HEAD'],
  allowedHeaders: ['content-type', 'if-none-match', 'x-amz-*'],
  exposeHeaders: ['ETag'],
  maxAgeSeconds: 600,
} as const;

/** The rule as S3's `PutBucketCors` XML (what s3rver is configured with). */
export function corsConfigurationXml(origins: readonly string[]): string {
  const element = (name: string, values: readonly (string | number)[]) => values.map((value) => `<${name}>${String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;')}</${name}>`).join('');
  return [
    '<CORSConfiguration><CORSRule>',
    element('AllowedOrigin', origins),
    element('AllowedMethod', XRAY_BROWSER_CORS.allowedMethods),
    element('AllowedHeader', XRAY_BROWSER_CORS.allowedHeaders),
    element('ExposeHeader', XRAY_BROWSER_CORS.exposeHeaders),
    element('MaxAgeSeconds', [XRAY_BROWSER_CORS.maxAgeSeconds]),
    '</CORSRule></CORSConfiguration>',
  ].join('');
}
