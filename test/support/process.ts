import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import assert from 'node:assert/strict';
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

export function startApiProcess(env: Record<string, string>): ApiProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
  });
  const stdout = linesOf(child.stdout);
  const stderr = linesOf(child.stderr);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const events = (event: string) =>
    stdout.map((line) => JSON.parse(line) as Record<string, unknown>).filter((record) => record.event === event);
  return { child, stdout, stderr, exited, events };
}

/** Resolves once the process has logged `startup`. */
export async function started(api: ApiProcess): Promise<void> {
  await eventually(() => {
    assert.ok(api.events('startup').length > 0, `no startup line yet; stderr: ${api.stderr.join(' ')}`);
    return Promise.resolve();
  }, { timeoutMs: 30_000 });
}

/** Requests to a process listening on `port`, in the shape the sign-in helpers take. */
export function processClient(port: number): Pick<TestApi, 'request'> {
  const base = `http://127.0.0.1:${port}`;
  return { request: (method, path, options) => request(base, method, path, options) };
}

