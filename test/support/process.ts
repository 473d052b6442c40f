import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { request, type TestApi } from './api.js';
import { eventually } from './postgres.js';

/** The API as a real child process (`api/main.ts`), its output collected line by line. */
export interface ApiProcess {
  child: ChildProcessWithoutNullStreams;
  stdout: string[];
  stderr: string[];
  /** The exit code (`null` when a signal ended it). */
  exited: Promise<number | null>;
  /** The parsed stdout lines of one event. */
  events(event: string): Record<string, unknown>[];
}

/** Whole lines only: a chunk may end in the middle of one. */
function linesOf(stream: NodeJS.ReadableStream): string[] {
  const lines: string[] = [];
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop()!;
    lines.push(...parts.filter(Boolean));
  });
  stream.on('end', () => {
    if (rest) lines.push(rest);
  });
  return lines;
}

/** tsx's loader and the API's entry point, by absolute location: a process may run in a directory of its own. */
const TSX_LOADER = import.meta.resolve('tsx');
const MAIN = fileURLToPath(new URL('../../api/main.ts', import.meta.url));
const DEV_ADMIN = fileURLToPath(new URL('../../api/dev-admin.ts', import.meta.url));

/** `npm run dev:admin-password` in `cwd`: its exit code and output. */
export function runDevAdminPassword(cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX_LOADER, DEV_ADMIN], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/**
 * `api/main.ts` as `npm start` runs it; in `cwd` when given, which is then where its `.data/`
 * (embedded PostgreSQL and S3, the lock, the S3 port) lives.
 */
export function startApiProcess(env: Record<string, string>, { cwd }: { cwd?: string } = {}): ApiProcess {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    ...(cwd ? { cwd } : {}),
  });
  const stdout = linesOf(child.stdout);
  const stderr = linesOf(child.stderr);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const events = (event: string) =>
    stdout.map((line) => JSON.parse(line) as Record<string, unknown>).filter((record) => record.event === event);
  return { child, stdout, stderr, exited, events };
}

/**
 * Resolves once the process has logged `startup`. A first start on embedded parts creates a
 * PostgreSQL cluster and applies every migration first: give it `timeoutMs` to match.
 */
export async function started(api: ApiProcess, { timeoutMs = 30_000 } = {}): Promise<void> {
  const up = eventually(() => {
    assert.ok(api.events('startup').length > 0, `no startup line yet; stderr: ${api.stderr.join(' ')}`);
    return Promise.resolve();
  }, { timeoutMs });
  // A process that exits instead says why at once, rather than at the deadline.
  const exited = api.exited.then((code) => {
    throw new Error(`the API exited (${code}) before starting: ${api.stderr.join(' ')}`);
  });
  await Promise.race([up, exited]);
  exited.catch(() => undefined);
}

/** The password of the development admin a first `npm start` printed (`dev_admin_created`). */
export function devAdminPassword(api: ApiProcess): string {
  const [created] = api.events('dev_admin_created');
  const match = / with (\S+) \(printed once/.exec(String(created?.detail ?? ''));
  assert.ok(match, `no dev_admin_created line: ${api.stdout.join('\n')}`);
  return match[1]!;
}

/** Requests to a process listening on `port`, in the shape the sign-in helpers take. */
export function processClient(port: number): Pick<TestApi, 'request'> {
  const base = `http://127.0.0.1:${port}`;
  return { request: (method, path, options) => request(base, method, path, options) };
}

