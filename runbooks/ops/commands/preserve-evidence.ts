// Evidence of a breach, preserved before anyone cleans up: a manual snapshot of the database, the
// audit exports and the API, WAF and load balancer logs of the incident window, each copied into
// the stack's forensics bucket under S3 Object Lock legal hold, and a manifest of every item with
// the SHA-256 of the bytes written. The forensics bucket (infra/storage.ts) refuses any write that
// does not carry a legal hold, any delete, and any request that lifts a hold: what lands there stays
// until the account administrator changes the bucket policy on the compliance lead's word.
//
// Nothing the command copies is printed: progress and the report name keys, counts, sizes and
// hashes, never a log line or an audit row (both may hold PHI).
import { createHash } from 'node:crypto';
import { CreateDBSnapshotCommand, DescribeDBSnapshotsCommand, type DBSnapshot, type RDSClient } from '@aws-sdk/client-rds';
import { FilterLogEventsCommand, type CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type _Object, type S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { AUDIT_EXPORT_TIME_METADATA, EXPORT_PREFIX } from '../../../api/audit/export-naming.js';
import { ACCESS_LOG_PREFIX, FORENSICS_PREFIX } from '../../../infra/storage-layout.js';
import { awsErrorName } from '../lib/aws.js';
import { defineCommand } from '../lib/command.js';
import type { OpsContext } from '../lib/context.js';
import { dryRunOption, sendChange } from '../lib/dry-run.js';
import { describeError, OpsError, UsageError } from '../lib/errors.js';
import { accountIdOf, loadOutputs, requireOutputs, type StackOutputs } from '../lib/outputs.js';
import { Progress, printSummary, type SummaryRow } from '../lib/report.js';
import { isoSeconds, parseDuration } from '../lib/time.js';
import { waitFor } from '../lib/wait.js';

export const MANIFEST_FORMAT = 'dms-evidence-manifest/1';
/** Log excerpts are cut into parts of at most this many bytes: memory stays bounded whatever the traffic. */
export const LOG_PART_MAX_BYTES = 8 * 1024 * 1024;
const SNAPSHOT_POLL_MS = 30_000;
const MAX_WINDOW_MS = 31 * 86_400_000;
/** An ALB writes an access log file every 5 minutes, named by the end of the interval it covers. */
const ALB_LOG_INTERVAL_MS = 5 * 60_000;
const ARCHIVED_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

type ItemKind = 'audit-export' | 'api-log' | 'waf-log' | 'alb-log';

/** One object written to the forensics bucket. */
export interface ManifestItem {
  kind: ItemKind | 'manifest';
  key: string;
  versionId: string | null;
  sha256: string;
  bytes: number;
  /** Where the bytes came from: `s3://bucket/key` or `logs:<group> <from>..<to> (events a-b)`. */
  source: string;
  legalHold: 'ON';
}

/** Something of the window that is not (yet) in the forensics bucket, and why. */
export interface NotPreserved {
  kind: ItemKind | 'db-snapshot';
  source: string;
  reason: string;
}

export interface EvidenceManifest {
  format: typeof MANIFEST_FORMAT;
  incident: string;
  stack: string;
  window: { from: string; to: string };
  /** Who ran each run (the caller's ARN) and when: the chain of custody. */
  runs: { startedAt: string; finishedAt: string; by: string }[];
  snapshot: { id: string; arn: string | null; status: string; tags: Record<string, string> } | null;
  /** Log sources copied whole (a re-run skips them); a source cut short is copied again. */
  completeSources: string[];
  items: ManifestItem[];
  notPreserved: NotPreserved[];
  complete: boolean;
}

type EvidenceOutputs = Pick<
  StackOutputs,
  'region' | 'dbInstanceIdentifier' | 'auditBucketName' | 'forensicsBucketName' | 'accessLogBucketName' | 'logGroupName' | 'wafLogGroupName' | 'albArnSuffix' | 's3KmsKeyArn'
>;

/** `INC-2025-0042`: letters, digits, `.`, `_`, `-`; it becomes part of S3 keys and a snapshot id. */
export function parseIncident(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(text) || text.includes('..')) {
    throw new UsageError(`--incident "${text}" must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return text;
}

/** RDS snapshot ids: letters, digits and single hyphens, starting with a letter, not ending with a hyphen. */
export function snapshotIdFor(dbInstanceIdentifier: string, incident: string): string {
  const slug = incident.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return `${dbInstanceIdentifier}-incident-${slug}`.replace(/-{2,}/g, '-');
}

function parseInstant(text: string, flag: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) || Number.isNaN(Date.parse(text))) {
    throw new UsageError(`--${flag} must be ISO 8601 with a zone (2025-03-10T06:00:00Z), not "${text}"`);
  }
  return new Date(text);
}

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const sha256Base64 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('base64');

/** A run's state: what it wrote, what it could not, and how to write (or, under --dry-run, print). */
class Preservation {
  readonly items: ManifestItem[];
  readonly notPreserved: NotPreserved[] = [];
  readonly completeSources: string[];
  written = 0;

  constructor(
    readonly ctx: OpsContext,
    readonly progress: Progress,
    readonly s3: S3Client,
    readonly outputs: EvidenceOutputs,
    readonly incident: string,
    readonly dryRun: boolean,
    previous: EvidenceManifest | undefined,
  ) {
    this.items = [...(previous?.items.filter((item) => item.kind !== 'manifest') ?? [])];
    this.completeSources = [...(previous?.completeSources ?? [])];
  }

  key(path: string): string {
    return `${FORENSICS_PREFIX}${this.incident}/${path}`;
  }

  has(source: string): boolean {
    return this.items.some((item) => item.source === source);
  }

  /** Writes bytes under legal hold, with S3 checking the SHA-256 on arrival; records the item. */
  async put(kind: ManifestItem['kind'], path: string, body: Uint8Array, source: string, contentType: string): Promise<ManifestItem | undefined> {
    const key = this.key(path);
    const sha256 = sha256Hex(body);
    const sent = await sendChange(this.ctx, this.dryRun, {
      service: 's3',
      command: new PutObjectCommand({
        Bucket: this.outputs.forensicsBucketName,
        Key: key,
        Body: body,
        ContentType: contentType,
        ChecksumSHA256: sha256Base64(body),
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: this.outputs.s3KmsKeyArn,
        ObjectLockLegalHoldStatus: 'ON',
        Metadata: { 'dms-incident': this.incident, 'dms-sha256': sha256, 'dms-source': source },
      }),
      shown: { Bucket: this.outputs.forensicsBucketName, Key: key, Body: kind === 'manifest' ? '<the manifest of this run>' : `<the bytes of ${source}; not read in a dry run>`, ObjectLockLegalHoldStatus: 'ON', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: this.outputs.s3KmsKeyArn },
      send: (command) => this.s3.send(command),
    });
    if (kind !== 'manifest') this.written += 1;
    if (!sent) return undefined;
    const item: ManifestItem = { kind, key, versionId: sent.response.VersionId ?? null, sha256, bytes: body.byteLength, source, legalHold: 'ON' };
    if (kind !== 'manifest') this.items.push(item);
    return item;
  }

  /** GetObject of a source object, whole. */
  async read(bucket: string, key: string): Promise<Uint8Array> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!object.Body) throw new OpsError(`s3://${bucket}/${key} has no body`);
    return object.Body.transformToByteArray();
  }
}

async function listAll(s3: S3Client, bucket: string, prefix: string): Promise<_Object[]> {
  const objects: _Object[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    objects.push(...(page.Contents ?? []));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

async function readManifest(s3: S3Client, bucket: string, key: string): Promise<EvidenceManifest | undefined> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const manifest = JSON.parse(await object.Body!.transformToString()) as EvidenceManifest;
    if (manifest.format !== MANIFEST_FORMAT) throw new OpsError(`s3://${bucket}/${key} is not a ${MANIFEST_FORMAT} manifest`);
    return manifest;
  } catch (error) {
    if (awsErrorName(error) === 'NoSuchKey') return undefined;
    throw error;
  }
}

/** The manual snapshot of this incident: found (a re-run) or started now, tagged with the incident. */
async function startSnapshot(run: Preservation, rds: RDSClient, window: { from: Date; to: Date }): Promise<{ id: string; snapshot: DBSnapshot | undefined; tags: Record<string, string> }> {
  const id = snapshotIdFor(run.outputs.dbInstanceIdentifier, run.incident);
  const tags = { Purpose: 'incident-evidence', Incident: run.incident, 'dms:incident-window': `${isoSeconds(window.from)}/${isoSeconds(window.to)}` };
  try {
    const found = (await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }))).DBSnapshots?.[0];
    if (found) {
      run.progress.step(`snapshot ${id} exists (${found.Status}): kept as it is`);
      return { id, snapshot: found, tags };
    }
  } catch (error) {
    if (awsErrorName(error) !== 'DBSnapshotNotFoundFault' && awsErrorName(error) !== 'DBSnapshotNotFound') throw error;
  }
  run.progress.step(`snapshotting ${run.outputs.dbInstanceIdentifier} as ${id}`);
  const created = await sendChange(run.ctx, run.dryRun, {
    service: 'rds',
    command: new CreateDBSnapshotCommand({
      DBInstanceIdentifier: run.outputs.dbInstanceIdentifier,
      DBSnapshotIdentifier: id,
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    }),
    send: (command) => rds.send(command),
    note: 'the database as it is now; a manual snapshot stays until someone deletes it',
  });
  return { id, snapshot: created?.response.DBSnapshot, tags };
}

/** A file covers [first, last] of its rows' times when the exporter recorded them; older files did not. */
function exportOverlaps(metadata: Record<string, string> | undefined, from: Date, to: Date): boolean | undefined {
  const first = metadata?.[AUDIT_EXPORT_TIME_METADATA.first];
  const last = metadata?.[AUDIT_EXPORT_TIME_METADATA.last];
  if (!first || !last) return undefined;
  return Date.parse(first) <= to.getTime() && Date.parse(last) >= from.getTime();
}

/**
 * The audit exports holding rows of the window. A file is written after its rows, so one written
 * before the window began cannot hold any; of the rest, the exporter's time range (object metadata)
 * decides, and a file from before that metadata existed is kept (more evidence, never less).
 */
async function preserveAuditExports(run: Preservation, window: { from: Date; to: Date }): Promise<void> {
  const bucket = run.outputs.auditBucketName;
  const candidates = (await listAll(run.s3, bucket, EXPORT_PREFIX)).filter(
    (object) => object.Key?.endsWith('.ndjson') && object.LastModified !== undefined && object.LastModified >= window.from,
  );
  let kept = 0;
  for (const object of candidates) {
    const key = object.Key!;
    const source = `s3://${bucket}/${key}`;
    const head = await run.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    const overlaps = exportOverlaps(head.Metadata, window.from, window.to);
    if (overlaps === false) continue;
    kept += 1;
    if (run.has(source)) continue;
    const archived = ARCHIVED_CLASSES.has(head.StorageClass ?? object.StorageClass ?? '') && !/ongoing-request="false"/.test(head.Restore ?? '');
    if (archived) {
      const checksum = head.ChecksumSHA256 ? `; S3's SHA-256 ${Buffer.from(head.ChecksumSHA256, 'base64').toString('hex')}` : '';
      run.notPreserved.push({
        kind: 'audit-export',
        source,
        reason: `archived (${head.StorageClass ?? object.StorageClass}); still under the audit bucket's Object Lock${head.ObjectLockRetainUntilDate ? ` until ${isoSeconds(head.ObjectLockRetainUntilDate)}` : ''}${checksum}. Restore it (aws s3api restore-object --bucket ${bucket} --key ${key} --restore-request Days=7), then run this command again`,
      });
      continue;
    }
    const body = run.dryRun ? new Uint8Array(0) : await run.read(bucket, key);
    await run.put('audit-export', `audit-exports/${key.slice(EXPORT_PREFIX.length)}`, body, source, 'application/x-ndjson');
  }
  run.progress.step(`audit exports: ${kept} file(s) hold rows of the window`);
}

/** FilterLogEvents of the window, all pages, written as ndjson parts of at most LOG_PART_MAX_BYTES. */
async function preserveLogGroup(run: Preservation, logs: CloudWatchLogsClient, kind: 'api-log' | 'waf-log', logGroupName: string, window: { from: Date; to: Date }): Promise<void> {
  const source = `logs:${logGroupName} ${isoSeconds(window.from)}..${isoSeconds(window.to)}`;
  if (run.completeSources.includes(source)) return;
  const folder = kind === 'api-log' ? 'logs/api' : 'logs/waf';
  // A source cut short by a failure is copied again whole: the parts written before stay in the
  // manifest and the bucket (held), as earlier versions of the same keys.
  if (run.dryRun) {
    run.ctx.io.out(`dry run, not sent: s3 PutObject: ${folder}/part-NNNNN.ndjson for ${source}, up to ${LOG_PART_MAX_BYTES} bytes each, legal hold ON`);
    return;
  }
  let lines: Buffer[] = [];
  let bytes = 0;
  let events = 0;
  let firstOfPart = 1;
  let part = 0;
  const flush = async (): Promise<void> => {
    if (lines.length === 0) return;
    part += 1;
    await run.put(kind, `${folder}/part-${String(part).padStart(5, '0')}.ndjson`, Buffer.concat(lines), `${source} (events ${firstOfPart}-${events})`, 'application/x-ndjson');
    lines = [];
    bytes = 0;
    firstOfPart = events + 1;
  };
  let nextToken: string | undefined;
  do {
    const page = await logs.send(new FilterLogEventsCommand({ logGroupName, startTime: window.from.getTime(), endTime: window.to.getTime(), nextToken }));
    for (const event of page.events ?? []) {
      const line = Buffer.from(`${JSON.stringify({ timestamp: event.timestamp, ingestionTime: event.ingestionTime, logStreamName: event.logStreamName, eventId: event.eventId, message: event.message })}\n`);
      if (bytes + line.length > LOG_PART_MAX_BYTES) await flush();
      lines.push(line);
      bytes += line.length;
      events += 1;
    }
    nextToken = page.nextToken;
  } while (nextToken);
  await flush();
  run.completeSources.push(source);
  run.progress.step(`${logGroupName}: ${events} event(s) in ${part} part(s)`);
}

/** UTC days from `from` to `to`, as the `yyyy/mm/dd` the ALB writes its log files under. */
function utcDays(from: Date, to: Date): string[] {
  const days: string[] = [];
  const day = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  while (day <= to) {
    days.push(day.toISOString().slice(0, 10).replace(/-/g, '/'));
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return days;
}

/**
 * ALB access log files of the window: `<prefix>/AWSLogs/<account>/elasticloadbalancing/<region>/
 * yyyy/mm/dd/<account>_elasticloadbalancing_<region>_app.<name>.<id>_<end yyyymmddThhmmZ>_<ip>_<random>.log.gz`
 * (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html#access-log-file-format).
 * A file covers the five minutes before its end time.
 */
async function preserveAlbLogs(run: Preservation, window: { from: Date; to: Date }): Promise<void> {
  const { accessLogBucketName: bucket, albArnSuffix, region } = run.outputs;
  const account = accountIdOf(run.outputs.s3KmsKeyArn);
  const balancer = `_${albArnSuffix.replace(/\//g, '.')}_`;
  const end = new Date(window.to.getTime() + ALB_LOG_INTERVAL_MS);
  let files = 0;
  for (const day of utcDays(window.from, end)) {
    const prefix = `${ACCESS_LOG_PREFIX.alb}/AWSLogs/${account}/elasticloadbalancing/${region}/${day}/`;
    for (const object of await listAll(run.s3, bucket, prefix)) {
      const key = object.Key ?? '';
      const stamp = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_/.exec(key.slice(prefix.length));
      if (!key.includes(balancer) || !stamp) continue;
      const ends = Date.UTC(Number(stamp[1]), Number(stamp[2]) - 1, Number(stamp[3]), Number(stamp[4]), Number(stamp[5]));
      if (ends <= window.from.getTime() || ends - ALB_LOG_INTERVAL_MS > window.to.getTime()) continue;
      files += 1;
      const source = `s3://${bucket}/${key}`;
      if (run.has(source)) continue;
      const body = run.dryRun ? new Uint8Array(0) : await run.read(bucket, key);
      await run.put('alb-log', `logs/alb/${key.slice(prefix.length - day.length - 1)}`, body, source, 'application/gzip');
    }
  }
  run.progress.step(`ALB access logs: ${files} file(s) of the window`);
}

function summaryRows(manifest: EvidenceManifest, bucket: string, written: number, manifestItem: ManifestItem | undefined, failure: string | undefined, dryRun: boolean): SummaryRow[] {
  const count = (kind: ItemKind) => {
    const items = manifest.items.filter((item) => item.kind === kind);
    const missing = manifest.notPreserved.filter((item) => item.kind === kind).length;
    return `${items.length} object(s), ${items.reduce((sum, item) => sum + item.bytes, 0)} bytes${missing ? `; ${missing} NOT preserved` : ''}`;
  };
  const snapshot = manifest.snapshot ? `${manifest.snapshot.id} ${manifest.snapshot.status}${manifest.snapshot.arn ? ` (${manifest.snapshot.arn})` : ''}` : 'not taken';
  return [
    ['incident', manifest.incident],
    ['window', `${manifest.window.from} to ${manifest.window.to}`],
    ['forensics', `s3://${bucket}/${FORENSICS_PREFIX}${manifest.incident}/ (legal hold ON on every object)`],
    ['db snapshot', snapshot],
    ['audit exports', count('audit-export')],
    ['api logs', count('api-log')],
    ['waf logs', count('waf-log')],
    ['alb logs', count('alb-log')],
    [dryRun ? 'would write' : 'this run wrote', `${written} object(s)${dryRun ? ' (log parts not counted: they depend on the events)' : ''}`],
    ...manifest.notPreserved.map((item, index): SummaryRow => [`not preserved ${index + 1}`, `${item.kind} ${item.source}: ${item.reason}`]),
    ['manifest', manifestItem ? `${manifestItem.key} version ${manifestItem.versionId ?? '-'} sha256 ${manifestItem.sha256}` : 'not written'],
    ['result', dryRun ? 'dry run: nothing read from the sources, nothing written' : manifest.complete ? 'COMPLETE: record the manifest\'s version and sha256 in the timeline' : `INCOMPLETE${failure ? ` (${failure})` : ''}: run the same line again; it keeps what is preserved and adds the rest`],
  ];
}

export const preserveEvidence = defineCommand({
  name: 'preserve-evidence',
  summary: 'snapshot the database and copy the audit exports and API/WAF/ALB logs of an incident window under legal hold, with a SHA-256 manifest',
  options: {
    from: { type: 'string', valueName: 'iso', required: true, description: 'start of the incident window (ISO 8601 with a zone)' },
    to: { type: 'string', valueName: 'iso', required: true, description: 'end of the incident window (not in the future; at most 31 days after --from)' },
    incident: { type: 'string', valueName: 'id', required: true, description: 'incident id (letters, digits, . _ -): names the forensics folder and the snapshot' },
    timeout: { type: 'string', valueName: 'duration', description: 'how long to wait for the snapshot to be available (default 2h)' },
    'dry-run': dryRunOption,
  },
  details: [
    'Steps: sts GetCallerIdentity (who ran it, into the manifest); s3 GetObject of incidents/<id>/manifest.json in the',
    'forensics bucket (a re-run keeps what it lists; another window for the same id is refused); rds DescribeDBSnapshots',
    'and CreateDBSnapshot <primary>-incident-<id> tagged Purpose, Incident and the window; s3 ListObjectsV2 and',
    'HeadObject of audit-logs/ (files written since --from whose recorded time range meets the window, or that predate',
    'that record) and GetObject of each; logs FilterLogEvents of the API and WAF log groups (all pages); s3 ListObjectsV2',
    'of the ALB access logs of each day and GetObject of the files of the window. Each is written with s3 PutObject to',
    'incidents/<id>/… with ObjectLockLegalHoldStatus ON, SSE-KMS and its SHA-256 checksum; then the snapshot is awaited',
    '(rds DescribeDBSnapshots every 30 s) and the manifest (every item: key, version, SHA-256, bytes, source) is written',
    'the same way. A failure still writes the manifest of what was and was not preserved, and exits 1.',
    'Example: npm run ops -- preserve-evidence --stack production --incident INC-2025-0042 --from 2025-03-10T06:00:00Z --to 2025-03-10T09:00:00Z',
  ],
  async run({ options }, ctx) {
    const incident = parseIncident(options.incident);
    const from = parseInstant(options.from, 'from');
    const to = parseInstant(options.to, 'to');
    if (from >= to) throw new UsageError('--from must be before --to');
    if (to > ctx.clock.now()) throw new UsageError(`--to ${options.to} is in the future: logs of the window are still arriving`);
    if (to.getTime() - from.getTime() > MAX_WINDOW_MS) throw new UsageError('the window is longer than 31 days: preserve it as several incidents (INC-1a, INC-1b)');
    const timeoutMs = parseDuration(options.timeout ?? '2h', 'timeout');
    const window = { from, to };
    const outputs = requireOutputs(await loadOutputs(options.stack, options.outputs, ctx), [
      'region', 'dbInstanceIdentifier', 'auditBucketName', 'forensicsBucketName', 'accessLogBucketName', 'logGroupName', 'wafLogGroupName', 'albArnSuffix', 's3KmsKeyArn',
    ]);
    const clients = ctx.aws(outputs.region);
    const progress = new Progress(ctx);
    const dryRun = options['dry-run'];
    const startedAt = isoSeconds(ctx.clock.now());
    const by = (await clients.sts().send(new GetCallerIdentityCommand({}))).Arn ?? 'unknown';
    const manifestKey = `${FORENSICS_PREFIX}${incident}/manifest.json`;
    const previous = await readManifest(clients.s3(), outputs.forensicsBucketName, manifestKey);
    const windowText = { from: isoSeconds(from), to: isoSeconds(to) };
    if (previous && (previous.window.from !== windowText.from || previous.window.to !== windowText.to)) {
      throw new UsageError(`incident ${incident} was preserved for ${previous.window.from} to ${previous.window.to}; preserve another window under another --incident id (${incident}-2)`);
    }
    const run = new Preservation(ctx, progress, clients.s3(), outputs, incident, dryRun, previous);
    const rds = clients.rds();
    let snapshot: EvidenceManifest['snapshot'] = previous?.snapshot ?? null;
    const stages: { kind: NotPreserved['kind']; source: string; run: () => Promise<void> }[] = [
      {
        kind: 'db-snapshot',
        source: snapshotIdFor(outputs.dbInstanceIdentifier, incident),
        run: async () => {
          const started = await startSnapshot(run, rds, window);
          snapshot = { id: started.id, arn: started.snapshot?.DBSnapshotArn ?? null, status: started.snapshot?.Status ?? (dryRun ? 'not created (dry run)' : 'creating'), tags: started.tags };
        },
      },
      { kind: 'audit-export', source: `s3://${outputs.auditBucketName}/${EXPORT_PREFIX}`, run: () => preserveAuditExports(run, window) },
      { kind: 'api-log', source: `logs:${outputs.logGroupName}`, run: () => preserveLogGroup(run, clients.logs(), 'api-log', outputs.logGroupName, window) },
      { kind: 'waf-log', source: `logs:${outputs.wafLogGroupName}`, run: () => preserveLogGroup(run, clients.logs(), 'waf-log', outputs.wafLogGroupName, window) },
      { kind: 'alb-log', source: `s3://${outputs.accessLogBucketName}/${ACCESS_LOG_PREFIX.alb}/`, run: () => preserveAlbLogs(run, window) },
      {
        kind: 'db-snapshot',
        source: snapshotIdFor(outputs.dbInstanceIdentifier, incident),
        run: async () => {
          if (dryRun || !snapshot || snapshot.status === 'available') return;
          const { id } = snapshot;
          const done = await waitFor(ctx, progress, {
            what: `snapshot ${id} to be available`,
            intervalMs: SNAPSHOT_POLL_MS,
            timeoutMs,
            check: async () => {
              const found = (await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }))).DBSnapshots?.[0];
              if (found?.Status === 'available') return { done: true, value: found };
              if (found?.Status === 'failed' || found?.Status === 'deleted') throw new OpsError(`snapshot ${id} is ${found.Status}`);
              return { done: false, status: `${found?.Status ?? 'not found'}${found?.PercentProgress !== undefined ? ` ${found.PercentProgress}%` : ''}` };
            },
          });
          snapshot = { ...snapshot, arn: done.DBSnapshotArn ?? snapshot.arn, status: 'available' };
        },
      },
    ];
    let failure: string | undefined;
    for (const [index, stage] of stages.entries()) {
      try {
        await stage.run();
      } catch (error) {
        failure = describeError(error);
        ctx.io.err(`error: preserve-evidence stopped at ${stage.kind} ${stage.source}: ${failure}`);
        run.notPreserved.push({ kind: stage.kind, source: stage.source, reason: `failed: ${failure}` });
        for (const later of stages.slice(index + 1)) {
          if (!run.notPreserved.some((entry) => entry.source === later.source)) run.notPreserved.push({ kind: later.kind, source: later.source, reason: `not attempted: the run stopped at ${stage.kind}` });
        }
        break;
      }
    }
    const taken = snapshot as EvidenceManifest['snapshot'];
    if (!failure && !dryRun && taken && taken.status !== 'available') run.notPreserved.push({ kind: 'db-snapshot', source: taken.id, reason: `${taken.status}, not yet available` });
    const manifest: EvidenceManifest = {
      format: MANIFEST_FORMAT,
      incident,
      stack: options.stack,
      window: windowText,
      runs: [...(previous?.runs ?? []), { startedAt, finishedAt: isoSeconds(ctx.clock.now()), by }],
      snapshot: taken,
      completeSources: run.completeSources,
      items: run.items,
      notPreserved: run.notPreserved,
      complete: failure === undefined && run.notPreserved.length === 0,
    };
    let manifestItem: ManifestItem | undefined;
    try {
      manifestItem = await run.put('manifest', 'manifest.json', Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), 'this run', 'application/json');
    } catch (error) {
      failure = `${failure ? `${failure}; ` : ''}manifest not written: ${describeError(error)}`;
      ctx.io.err(`error: the manifest was not written (${describeError(error)}); the report below is all there is of this run`);
    }
    printSummary(ctx, `preserve-evidence: ${options.stack}`, [
      ...summaryRows(manifest, outputs.forensicsBucketName, run.written, manifestItem, failure, dryRun),
      ...(dryRun ? [['dry run', 'the calls above were printed, none was sent'] as const] : []),
    ]);
    return manifest.complete || dryRun ? 0 : 1;
  },
});
