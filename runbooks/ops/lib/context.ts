import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { defaultAwsClients, type AwsClientFactory } from './aws.js';
import type { Session } from './session.js';

/** Where a command writes: results and summaries to `out` (stdout), progress and errors to `err` (stderr). */
export interface OpsIO {
  out(line: string): void;
  err(line: string): void;
}

/** Time as the commands see it; tests inject a clock whose sleep advances time at once. */
export interface Clock {
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Runs the Pulumi CLI with the given arguments and resolves with its stdout. */
export type PulumiRunner = (args: readonly string[]) => Promise<string>;

/** Runs a local program and resolves with its stdout; rejects when it is missing or fails. */
export type ProgramRunner = (file: string, args: readonly string[]) => Promise<string>;
/** The NS records public DNS answers for a name. */
export type NsResolver = (name: string) => Promise<string[]>;

/** What `preflight` touches besides AWS: the local Docker and public DNS. */
export interface LocalProbes {
  run: ProgramRunner;
  resolveNs: NsResolver;
}

/** Everything a command touches outside its own code, so tests can replace each piece. */
export interface OpsContext {
  io: OpsIO;
  env: Readonly<Record<string, string | undefined>>;
  clock: Clock;
  aws: AwsClientFactory;
  pulumi: PulumiRunner;
  /** Aborted on an interruption (a signal, a closed stdout): long waits stop and the drill still cleans up. */
  signal: AbortSignal;
  /** Local programs and public DNS (`preflight`); absent: the machine's own. */
  probes?: LocalProbes;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

const execFileAsync = promisify(execFile);

export const pulumiCli: PulumiRunner = async (args) => {
  const { stdout } = await execFileAsync('pulumi', [...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
};

/** The real process: its session's output and interruption, the system clock, real AWS and Pulumi. */
export function processContext({ io, signal }: Session): OpsContext {
  return {
    io,
    env: process.env,
    clock: systemClock,
    aws: defaultAwsClients,
    pulumi: pulumiCli,
    signal,
  };
}
