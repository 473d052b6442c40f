// `--dry-run` for the commands that change something: they read what they need as usual (the
// change depends on it: the IP set's entries, the service's count, the secret's keys), and every
// call that would change something is printed with its parameters instead of sent.
import type { OptionSpec } from './command.js';
import type { OpsContext } from './context.js';
import { formatParameters } from './report.js';

export const dryRunOption = {
  type: 'boolean',
  description: 'read what the command needs, then print every call that would change something, with its parameters, and send none',
} as const satisfies OptionSpec;

/** A change call: the SDK command, its service for the printout, and how to send it. */
export interface ChangeCall<C extends { input: object }, R> {
  service: string;
  command: C;
  send: (command: C) => Promise<R>;
  /** Why this call, in the printout (`stage k-… (verifies only)`). */
  note?: string;
  /** What to print instead of the input when it holds a secret (key material is never printed). */
  shown?: object;
}

/** Sends `change` and resolves with its response, or under --dry-run prints it and resolves undefined. */
export async function sendChange<C extends { input: object }, R>(ctx: OpsContext, dryRun: boolean, change: ChangeCall<C, R>): Promise<{ response: R } | undefined> {
  if (!dryRun) return { response: await change.send(change.command) };
  const name = change.command.constructor.name.replace(/Command$/, '');
  ctx.io.out(`dry run, not sent: ${change.service} ${name}${change.note ? `: ${change.note}` : ''}`);
  for (const line of formatParameters(change.shown ?? change.command.input).split('\n')) ctx.io.out(`   ${line}`);
  return undefined;
}
