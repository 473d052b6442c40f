// Shared harness for the ops command tests: runs a command line in-process with captured
// stdout/stderr, a clock whose sleeps advance time at once, and aws-sdk-client-mock stubs on the
// real SDK client classes (the commands build real clients; only `send` is stubbed).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { BudgetsClient } from '@aws-sdk/client-budgets';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { ECSClient } from '@aws-sdk/client-ecs';
import { IAMClient } from '@aws-sdk/client-iam';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { STSClient } from '@aws-sdk/client-sts';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { defaultAwsClients } from '../../runbooks/ops/lib/aws.js';
import type { Clock, OpsContext, PulumiRunner } from '../../runbooks/ops/lib/context.js';
import { runOps } from '../../runbooks/ops/registry.js';

export const FIXTURE = fileURLToPath(new URL('./fixtures/production-outputs.json', import.meta.url));
export const fixtureOutputs = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
/** The fake clock's start: 2025-03-10 09:15 UTC. */
export const T0 = new Date('2025-03-10T09:15:00Z');

export interface FakeClock extends Clock {
  /** Every sleep asked for, in ms. */
  slept: number[];
}

/** Time stands still except when a command sleeps, which advances it at once. */
export function fakeClock(start: Date = T0): FakeClock {
  let now = start.getTime();
  const slept: number[] = [];
  return {
    slept,
    now: () => new Date(now),
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      slept.push(ms);
      now += ms;
      await Promise.resolve();
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  clock?: Clock;
  signal?: AbortSignal;
  pulumi?: PulumiRunner;
}

/** `npm run ops -- <argv>` in-process, as the CLI entry runs it. */
export async function runCli(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const ctx: OpsContext = {
    io: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
    env: options.env ?? {},
    clock: options.clock ?? fakeClock(),
    aws: defaultAwsClients,
    pulumi: options.pulumi ?? (() => Promise.reject(Object.assign(new Error('spawn pulumi ENOENT'), { code: 'ENOENT' }))),
    signal: options.signal ?? new AbortController().signal,
  };
  const code = await runOps(argv, ctx);
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/** A copy of the production fixture with some outputs replaced (undefined removes one), as a file. */
export function outputsFile(overrides: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'dms-ops-')), 'outputs.json');
  writeFileSync(path, JSON.stringify({ ...fixtureOutputs, ...overrides }));
  return path;
}

export const STACK_ARGS = ['--stack', 'production', '--outputs', FIXTURE] as const;

export interface AwsMocks {
  rds: AwsClientStub<RDSClient>;
  s3: AwsClientStub<S3Client>;
  ecs: AwsClientStub<ECSClient>;
  waf: AwsClientStub<WAFV2Client>;
  cloudwatch: AwsClientStub<CloudWatchClient>;
  logs: AwsClientStub<CloudWatchLogsClient>;
  secrets: AwsClientStub<SecretsManagerClient>;
  budgets: AwsClientStub<BudgetsClient>;
  autoscaling: AwsClientStub<ApplicationAutoScalingClient>;
  sts: AwsClientStub<STSClient>;
  iam: AwsClientStub<IAMClient>;
}

/** Stubs on every SDK client class of this process (until restored). */
export function mockAws(): AwsMocks {
  return {
    rds: mockClient(RDSClient),
    s3: mockClient(S3Client),
    ecs: mockClient(ECSClient),
    waf: mockClient(WAFV2Client),
    cloudwatch: mockClient(CloudWatchClient),
    logs: mockClient(CloudWatchLogsClient),
    secrets: mockClient(SecretsManagerClient),
    budgets: mockClient(BudgetsClient),
    autoscaling: mockClient(ApplicationAutoScalingClient),
    sts: mockClient(STSClient),
    iam: mockClient(IAMClient),
  };
}

/** Fresh stubs on every SDK client class for each test (mocha hooks), restored after it. */
export function useAwsMocks(): AwsMocks {
  const mocks = {} as AwsMocks;
  beforeEach(() => {
    Object.assign(mocks, mockAws());
  });
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.restore();
  });
  return mocks;
}

/** Every SDK call of every client, in the order they were sent: operation name and input. */
export function callsInOrder(mocks: AwsMocks): { operation: string; input: Record<string, unknown> }[] {
  return Object.values(mocks)
    .flatMap((mock) => mock.calls())
    .sort((a, b) => a.callId - b.callId)
    .map((call) => ({ operation: call.args[0].constructor.name.replace(/Command$/, ''), input: call.args[0].input as Record<string, unknown> }));
}

/** Every SDK call of every client, in the order they were sent, as operation names. */
export function operationsInOrder(mocks: AwsMocks): string[] {
  return callsInOrder(mocks).map((call) => call.operation);
}

export function totalCalls(mocks: AwsMocks): number {
  return Object.values(mocks).reduce((sum, mock) => sum + mock.calls().length, 0);
}

export type Handler = (request: IncomingMessage, response: ServerResponse, body: string) => void;

/** A real HTTP server on 127.0.0.1 (fetch goes over the wire); closed by the returned function. */
export async function localServer(handler: Handler): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => handler(request, response, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
