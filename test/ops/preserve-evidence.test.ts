import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { CreateDBSnapshotCommand, DBSnapshotNotFoundFault, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, NoSuchKey, PutObjectCommand, type PutObjectCommandInput } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { sdkStreamMixin } from '@smithy/util-stream';
import { LOG_PART_MAX_BYTES, MANIFEST_FORMAT, type EvidenceManifest } from '../../runbooks/ops/commands/preserve-evidence.js';
import { fakeClock, fixtureOutputs, operationsInOrder, runCli, STACK_ARGS, useAwsMocks, type AwsMocks } from './support.js';

const INCIDENT = 'INC-2025-0042';
const FROM = '2025-03-10T06:00:00Z';
const TO = '2025-03-10T09:00:00Z';
const WINDOW = ['--incident', INCIDENT, '--from', FROM, '--to', TO];
const AUDIT = String(fixtureOutputs['auditBucketName']);
const FORENSICS = String(fixtureOutputs['forensicsBucketName']);
const ACCESS_LOGS = String(fixtureOutputs['accessLogBucketName']);
const KEY_ARN = String(fixtureOutputs['s3KmsKeyArn']);
const SNAPSHOT = 'dms-production-incident-inc-2025-0042';
const SNAPSHOT_ARN = `arn:aws:rds:eu-west-1:123456789012:snapshot:${SNAPSHOT}`;
/** A value that stands for PHI in every source: it must never reach the command's output. */
const PHI = 'Jane Q. Patient, born 1961-04-02';
const ALB_DAY = 'alb/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2025/03/10/';
const ALB_FILE = (end: string, balancer = 'app.dms-production-alb.50dc6c495c0c9188') => `${ALB_DAY}123456789012_elasticloadbalancing_eu-west-1_${balancer}_${end}_10.0.1.5_abc123.log.gz`;

/** Each source object's bytes, by `bucket/key`. */
const SOURCES: Record<string, string> = {
  [`${AUDIT}/audit-logs/00000000000000000101-00000000000000000200.ndjson`]: `{"kind":"header"}\n{"kind":"row","details":"${PHI}"}\n`,
  [`${AUDIT}/audit-logs/00000000000000000201-00000000000000000300.ndjson`]: `{"kind":"header","legacy":true,"details":"${PHI}"}\n`,
  [`${ACCESS_LOGS}/${ALB_FILE('20250310T0605Z')}`]: `h2 2025-03-10T06:04:59Z app/dms-production-alb GET /patients/1 ${PHI}\n`,
  [`${ACCESS_LOGS}/${ALB_FILE('20250310T0900Z')}`]: `h2 2025-03-10T08:59:00Z app/dms-production-alb GET /visits/7\n`,
};
const sha256 = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');
const body = (text: string) => sdkStreamMixin(Readable.from([Buffer.from(text)]));

function putInputs(aws: AwsMocks): PutObjectCommandInput[] {
  return aws.s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
}
const bytesOf = (input: PutObjectCommandInput) => Buffer.from(input.Body as Uint8Array);
function manifestOf(aws: AwsMocks): EvidenceManifest {
  const written = putInputs(aws).filter((input) => input.Key === `incidents/${INCIDENT}/manifest.json`).at(-1);
  assert.ok(written, 'a manifest was written');
  return JSON.parse(bytesOf(written).toString('utf8')) as EvidenceManifest;
}

/** An incident window with two exports of it, one before and one after it, API and WAF logs, ALB files. */
function stackWithEvidence(aws: AwsMocks, previous?: EvidenceManifest): void {
  aws.sts.on(GetCallerIdentityCommand).resolves({ Arn: 'arn:aws:sts::123456789012:assumed-role/dms-production-operator/oncall' });
  aws.s3.on(GetObjectCommand).callsFake((input: { Bucket: string; Key: string }) => {
    if (input.Key === `incidents/${INCIDENT}/manifest.json`) {
      if (!previous) throw new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} });
      return { Body: body(JSON.stringify(previous)) };
    }
    const text = SOURCES[`${input.Bucket}/${input.Key}`];
    if (text === undefined) throw new Error(`unexpected GetObject ${input.Bucket}/${input.Key}`);
    return { Body: body(text) };
  });
  aws.rds.on(DescribeDBSnapshotsCommand)
    .rejectsOnce(new DBSnapshotNotFoundFault({ message: 'not found', $metadata: {} }))
    .resolvesOnce({ DBSnapshots: [{ DBSnapshotIdentifier: SNAPSHOT, Status: 'creating', PercentProgress: 40 }] })
    .resolves({ DBSnapshots: [{ DBSnapshotIdentifier: SNAPSHOT, DBSnapshotArn: SNAPSHOT_ARN, Status: 'available' }] });
  aws.rds.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: { DBSnapshotIdentifier: SNAPSHOT, DBSnapshotArn: SNAPSHOT_ARN, Status: 'creating' } });
  aws.s3.on(ListObjectsV2Command, { Bucket: AUDIT }).resolves({
    Contents: [
      { Key: 'audit-logs/00000000000000000001-00000000000000000100.ndjson', LastModified: new Date('2025-03-10T05:00:00Z') },
      { Key: 'audit-logs/00000000000000000101-00000000000000000200.ndjson', LastModified: new Date('2025-03-10T07:00:00Z') },
      { Key: 'audit-logs/00000000000000000201-00000000000000000300.ndjson', LastModified: new Date('2025-03-10T08:00:00Z') },
      { Key: 'audit-logs/00000000000000000301-00000000000000000400.ndjson', LastModified: new Date('2025-03-10T10:00:00Z') },
    ],
  });
  aws.s3.on(HeadObjectCommand, { Key: 'audit-logs/00000000000000000101-00000000000000000200.ndjson' }).resolves({
    StorageClass: 'STANDARD', Metadata: { 'first-occurred-at': '2025-03-10T05:30:00.000Z', 'last-occurred-at': '2025-03-10T06:59:00.000Z' },
  });
  // Exported before the exporter recorded time ranges: kept, since it may hold rows of the window.
  aws.s3.on(HeadObjectCommand, { Key: 'audit-logs/00000000000000000201-00000000000000000300.ndjson' }).resolves({ Metadata: {} });
  aws.s3.on(HeadObjectCommand, { Key: 'audit-logs/00000000000000000301-00000000000000000400.ndjson' }).resolves({
    Metadata: { 'first-occurred-at': '2025-03-10T09:00:01.000Z', 'last-occurred-at': '2025-03-10T09:59:00.000Z' },
  });
  aws.logs.on(FilterLogEventsCommand, { logGroupName: '/dms/production/api' })
    .resolvesOnce({ events: [{ timestamp: 1, ingestionTime: 2, logStreamName: 'api/a', eventId: 'e1', message: `{"event":"http_access","details":"${PHI}"}` }], nextToken: 'page-2' })
    .resolves({ events: [{ timestamp: 3, ingestionTime: 4, logStreamName: 'api/b', eventId: 'e2', message: '{"event":"audit"}' }] });
  aws.logs.on(FilterLogEventsCommand, { logGroupName: 'aws-waf-logs-dms-production' }).resolves({ events: [{ timestamp: 5, logStreamName: 'waf', eventId: 'w1', message: '{"action":"BLOCK"}' }] });
  aws.s3.on(ListObjectsV2Command, { Bucket: ACCESS_LOGS }).resolves({
    Contents: [
      { Key: ALB_FILE('20250310T0600Z') }, // covers 05:55-06:00: before the window
      { Key: ALB_FILE('20250310T0605Z') },
      { Key: ALB_FILE('20250310T0900Z') },
      { Key: ALB_FILE('20250310T0910Z') }, // covers 09:05-09:10: after it
      { Key: ALB_FILE('20250310T0700Z', 'app.dms-staging-alb.0000000000000000') },
    ],
  });
  let version = 0;
  aws.s3.on(PutObjectCommand).callsFake(() => ({ VersionId: `v${++version}` }));
}

describe('ops preserve-evidence: the incident window copied under legal hold, with a SHA-256 manifest', () => {
  const aws = useAwsMocks();
  const clock = () => fakeClock(new Date('2025-03-10T12:00:00Z'));
  const args = (...more: string[]) => ['preserve-evidence', ...STACK_ARGS, ...WINDOW, ...more];

  it('snapshots the primary, copies the exports, log excerpts and ALB files of the window, then writes the manifest', async () => {
    stackWithEvidence(aws);
    const run = await runCli(args(), { clock: clock() });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(operationsInOrder(aws), [
      'GetCallerIdentity', 'GetObject',
      'DescribeDBSnapshots', 'CreateDBSnapshot',
      'ListObjectsV2', 'HeadObject', 'GetObject', 'PutObject', 'HeadObject', 'GetObject', 'PutObject', 'HeadObject',
      'FilterLogEvents', 'FilterLogEvents', 'PutObject',
      'FilterLogEvents', 'PutObject',
      'ListObjectsV2', 'GetObject', 'PutObject', 'GetObject', 'PutObject',
      'DescribeDBSnapshots', 'DescribeDBSnapshots',
      'PutObject',
    ]);
    assert.deepEqual(aws.rds.commandCalls(CreateDBSnapshotCommand)[0]?.args[0].input, {
      DBInstanceIdentifier: 'dms-production',
      DBSnapshotIdentifier: SNAPSHOT,
      Tags: [{ Key: 'Purpose', Value: 'incident-evidence' }, { Key: 'Incident', Value: INCIDENT }, { Key: 'dms:incident-window', Value: `${FROM}/${TO}` }],
    });
    assert.deepEqual(aws.logs.commandCalls(FilterLogEventsCommand)[0]?.args[0].input, {
      logGroupName: '/dms/production/api', startTime: Date.parse(FROM), endTime: Date.parse(TO), nextToken: undefined,
    });

    for (const input of putInputs(aws)) {
      assert.equal(input.Bucket, FORENSICS);
      assert.equal(input.ObjectLockLegalHoldStatus, 'ON', `${input.Key} is under legal hold`);
      assert.equal(input.ServerSideEncryption, 'aws:kms');
      assert.equal(input.SSEKMSKeyId, KEY_ARN);
      assert.equal(input.ChecksumSHA256, createHash('sha256').update(bytesOf(input)).digest('base64'), `${input.Key}: S3 checks the bytes on arrival`);
      assert.ok(input.Key?.startsWith(`incidents/${INCIDENT}/`));
    }

    const manifest = manifestOf(aws);
    assert.equal(manifest.format, MANIFEST_FORMAT);
    assert.deepEqual(manifest.window, { from: FROM, to: TO });
    assert.equal(manifest.complete, true);
    assert.deepEqual(manifest.notPreserved, []);
    assert.deepEqual(manifest.snapshot, { id: SNAPSHOT, arn: SNAPSHOT_ARN, status: 'available', tags: { Purpose: 'incident-evidence', Incident: INCIDENT, 'dms:incident-window': `${FROM}/${TO}` } });
    assert.equal(manifest.runs[0]?.by, 'arn:aws:sts::123456789012:assumed-role/dms-production-operator/oncall');
    const copied = manifest.items.filter((item) => item.source.startsWith('s3://'));
    assert.deepEqual(copied.map((item) => item.source).sort(), Object.keys(SOURCES).map((source) => `s3://${source}`).sort(), 'exactly the exports and ALB files of the window');
    for (const item of copied) {
      const source = SOURCES[item.source.slice('s3://'.length)]!;
      assert.equal(item.sha256, sha256(source), `${item.key}: the hash of the source's bytes`);
      assert.equal(item.bytes, Buffer.byteLength(source));
      assert.equal(item.legalHold, 'ON');
    }
    for (const item of manifest.items) {
      const written = putInputs(aws).find((input) => input.Key === item.key);
      assert.ok(written, `${item.key} was written`);
      assert.equal(item.sha256, sha256(bytesOf(written)), `${item.key}: the manifest hashes the bytes written`);
      assert.match(item.versionId ?? '', /^v\d+$/);
    }
    const apiLog = manifest.items.filter((item) => item.kind === 'api-log');
    assert.equal(apiLog.length, 1);
    assert.equal(bytesOf(putInputs(aws).find((input) => input.Key === apiLog[0]!.key)!).toString('utf8').trim().split('\n').length, 2, 'both pages of events');
    assert.match(apiLog[0]!.source, /^logs:\/dms\/production\/api 2025-03-10T06:00:00Z\.\.2025-03-10T09:00:00Z \(events 1-2\)$/);
    assert.equal(manifest.items.filter((item) => item.kind === 'waf-log').length, 1);

    const manifestWrite = putInputs(aws).at(-1)!;
    assert.match(run.stdout, new RegExp(`manifest\\s+incidents/${INCIDENT}/manifest\\.json version v\\d+ sha256 ${sha256(bytesOf(manifestWrite))}`));
    assert.match(run.stdout, /db snapshot\s+dms-production-incident-inc-2025-0042 available/);
    assert.match(run.stdout, /audit exports\s+2 object\(s\)/);
    assert.match(run.stdout, /alb logs\s+2 object\(s\)/);
    assert.match(run.stdout, /result\s+COMPLETE/);
    assert.ok(!run.stdout.includes('Jane') && !run.stderr.includes('Jane'), 'no PHI from the sources reaches the output');
  });

  it('cuts a log excerpt into parts of bounded size', async () => {
    stackWithEvidence(aws);
    const big = 'x'.repeat(1024 * 1024);
    aws.logs.on(FilterLogEventsCommand, { logGroupName: '/dms/production/api' }).resolves({
      events: Array.from({ length: 12 }, (_, i) => ({ timestamp: i, logStreamName: 'api/a', eventId: `e${i}`, message: big })),
    });
    const run = await runCli(args(), { clock: clock() });
    assert.equal(run.code, 0, run.stderr);
    const parts = manifestOf(aws).items.filter((item) => item.kind === 'api-log');
    assert.deepEqual(parts.map((item) => item.key.split('/').at(-1)), ['part-00001.ndjson', 'part-00002.ndjson']);
    assert.ok(parts.every((item) => item.bytes <= LOG_PART_MAX_BYTES));
    assert.match(parts[1]!.source, /\(events 8-12\)$/);
  });

  it('--dry-run reads the listings, prints every write and the snapshot, and sends none', async () => {
    stackWithEvidence(aws);
    const run = await runCli(args('--dry-run'), { clock: clock() });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(aws.s3.commandCalls(PutObjectCommand).length + aws.rds.commandCalls(CreateDBSnapshotCommand).length, 0);
    assert.equal(aws.logs.commandCalls(FilterLogEventsCommand).length, 0, 'no log events are read');
    assert.deepEqual(aws.s3.commandCalls(GetObjectCommand).map((call) => call.args[0].input.Key), [`incidents/${INCIDENT}/manifest.json`], 'no source object is read');
    assert.match(run.stdout, /dry run, not sent: rds CreateDBSnapshot/);
    const writes = run.stdout.match(/dry run, not sent: s3 PutObject/g) ?? [];
    assert.equal(writes.length, 2 + 2 + 2 + 1, 'two exports, two log groups, two ALB files, the manifest');
    for (const path of ['audit-exports/00000000000000000101-00000000000000000200.ndjson', 'logs/api/part-NNNNN.ndjson', 'logs/waf/part-NNNNN.ndjson', 'logs/alb/2025/03/10/', 'manifest.json']) {
      assert.ok(run.stdout.includes(path), `the dry run names ${path}`);
    }
    assert.match(run.stdout, /"ObjectLockLegalHoldStatus": "ON"/);
  });

  it('a failure midway still writes the manifest: what was preserved, what failed, what was not attempted; exit 1', async () => {
    stackWithEvidence(aws);
    aws.logs.on(FilterLogEventsCommand, { logGroupName: 'aws-waf-logs-dms-production' }).rejects(Object.assign(new Error('User is not authorized to perform logs:FilterLogEvents'), { name: 'AccessDeniedException', $metadata: {} }));
    const run = await runCli(args(), { clock: clock() });
    assert.equal(run.code, 1);
    const manifest = manifestOf(aws);
    assert.equal(manifest.complete, false);
    assert.deepEqual(manifest.items.map((item) => item.kind).sort(), ['api-log', 'audit-export', 'audit-export']);
    assert.deepEqual(manifest.notPreserved.map((entry) => [entry.kind, entry.reason.split(':')[0]]), [
      ['waf-log', 'failed'],
      ['alb-log', 'not attempted'],
      ['db-snapshot', 'not attempted'],
    ]);
    assert.equal(putInputs(aws).at(-1)?.ObjectLockLegalHoldStatus, 'ON');
    assert.match(run.stdout, /not preserved 1\s+waf-log logs:aws-waf-logs-dms-production: failed: AccessDeniedException/);
    assert.match(run.stdout, /result\s+INCOMPLETE/);
    assert.match(run.stderr, /^error: preserve-evidence stopped at waf-log/m);
  });

  it('a re-run with the same incident keeps what is preserved and writes only the manifest; another window is refused', async () => {
    stackWithEvidence(aws);
    const first = await runCli(args(), { clock: clock() });
    assert.equal(first.code, 0, first.stderr);
    const previous = manifestOf(aws);
    for (const mock of Object.values(aws)) mock.reset();
    stackWithEvidence(aws, previous);
    aws.rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: SNAPSHOT, DBSnapshotArn: SNAPSHOT_ARN, Status: 'available' }] });
    const again = await runCli(args(), { clock: clock() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(aws.rds.commandCalls(CreateDBSnapshotCommand).length, 0);
    assert.equal(aws.logs.commandCalls(FilterLogEventsCommand).length, 0);
    assert.deepEqual(putInputs(aws).map((input) => input.Key), [`incidents/${INCIDENT}/manifest.json`]);
    const manifest = manifestOf(aws);
    assert.deepEqual(manifest.items, previous.items);
    assert.equal(manifest.runs.length, 2);

    const other = await runCli(['preserve-evidence', ...STACK_ARGS, '--incident', INCIDENT, '--from', '2025-03-09T00:00:00Z', '--to', TO], { clock: clock() });
    assert.equal(other.code, 2);
    assert.match(other.stderr, /was preserved for 2025-03-10T06:00:00Z to 2025-03-10T09:00:00Z; preserve another window under another --incident id/);
  });

  it('lists an archived export as not preserved, with how to restore it, and exits 1', async () => {
    stackWithEvidence(aws);
    aws.s3.on(HeadObjectCommand, { Key: 'audit-logs/00000000000000000101-00000000000000000200.ndjson' }).resolves({
      StorageClass: 'GLACIER',
      ChecksumSHA256: createHash('sha256').update('x').digest('base64'),
      ObjectLockRetainUntilDate: new Date('2031-03-10T07:00:00Z'),
      Metadata: { 'first-occurred-at': '2025-03-10T05:30:00.000Z', 'last-occurred-at': '2025-03-10T06:59:00.000Z' },
    });
    const run = await runCli(args(), { clock: clock() });
    assert.equal(run.code, 1);
    const [entry] = manifestOf(aws).notPreserved;
    assert.equal(entry?.kind, 'audit-export');
    assert.match(entry?.reason ?? '', /archived \(GLACIER\); still under the audit bucket's Object Lock until 2031-03-10T07:00:00Z; S3's SHA-256 [0-9a-f]{64}\. Restore it \(aws s3api restore-object --bucket \S+ --key audit-logs\/00000000000000000101-00000000000000000200\.ndjson --restore-request Days=7\)/);
  });

  it('refuses a malformed incident id, a window that ends in the future or runs backwards', async () => {
    for (const [flags, message] of [
      [['--incident', '../x', '--from', FROM, '--to', TO], /--incident "\.\.\/x" must be/],
      [['--incident', INCIDENT, '--from', FROM, '--to', '2025-03-10T13:00:00Z'], /is in the future/],
      [['--incident', INCIDENT, '--from', TO, '--to', FROM], /--from must be before --to/],
      [['--incident', INCIDENT, '--from', '2025-03-10 06:00', '--to', TO], /ISO 8601 with a zone/],
    ] as const) {
      const run = await runCli(['preserve-evidence', ...STACK_ARGS, ...flags], { clock: clock() });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
    }
    assert.equal(operationsInOrder(aws).length, 0);
  });
});
