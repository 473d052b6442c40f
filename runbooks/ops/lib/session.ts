// The ops CLI as a process: how an operator's session can end under a running command, and how
// the command still gets to clean up. Ctrl-C reaches every process of the terminal's foreground
// group (npm, tsx, node, `tee`); closing the terminal sends SIGHUP; a CI runner or `kill` sends
// SIGTERM; and when the process reading stdout (`| tee`) is gone, the next write fails with EPIPE
// (EIO on a hung-up terminal). Each of these becomes ONE abort of the command's signal: waits stop,
// the drill stops its verify task and deletes its instance, exactly once. Output to a closed pipe
// is dropped instead of crashing node before the clean-up is sent.
import type { OpsIO } from './context.js';
import { InterruptedError } from './errors.js';

/** The signals that end an operator's session: Ctrl-C, a closed terminal, `kill`/a CI runner. */
export const SESSION_SIGNALS = ['SIGINT', 'SIGHUP', 'SIGTERM'] as const;
export type SessionSignal = (typeof SESSION_SIGNALS)[number];

export interface Session {
  io: OpsIO;
  /** Aborted once, by the first signal or the first failed write; its reason says which. */
  signal: AbortSignal;
}

/** A line writer that stops writing (and says so once, through `onClosed`) when its stream breaks. */
function lineWriter(stream: NodeJS.WriteStream, onClosed: (error: NodeJS.ErrnoException) => void): { write(line: string): boolean } {
  let open = true;
  const close = (error: NodeJS.ErrnoException): void => {
    if (!open) return;
    open = false;
    onClosed(error);
  };
  // Without a listener, EPIPE on a pipe whose reader exited is an uncaught exception: node dies
  // with a stack trace before the clean-up call is sent.
  stream.on('error', close);
  return {
    write(line) {
      if (!open || stream.destroyed) return false;
      try {
        stream.write(`${line}\n`);
        return true;
      } catch (error) {
        close(error as NodeJS.ErrnoException);
        return false;
      }
    },
  };
}

/**
 * Installs the handlers of one CLI run. The first interruption aborts; later ones (npm and tsx
 * relay Ctrl-C to their child, so one keypress can arrive twice) only say the clean-up is running:
 * exiting then would leave a restored copy of patient data behind.
 */
export function startSession(proc: NodeJS.Process = process): Session {
  const controller = new AbortController();
  const interrupt = (reason: string): void => {
    if (controller.signal.aborted) return;
    controller.abort(new InterruptedError(reason));
  };
  const stdout = lineWriter(proc.stdout, (error) => interrupt(`stdout closed (${error.code ?? error.message})`));
  const stderr = lineWriter(proc.stderr, (error) => interrupt(`stderr closed (${error.code ?? error.message})`));
  const io: OpsIO = {
    // A report whose stdout is gone still reaches the operator through stderr when that is open.
    out: (line) => void (stdout.write(line) || stderr.write(line)),
    err: (line) => void stderr.write(line),
  };
  for (const name of SESSION_SIGNALS) {
    proc.on(name, () => {
      if (controller.signal.aborted) {
        io.err(`${name}: still cleaning up; waiting for it to finish (kill -KILL ${proc.pid} abandons it: then run drill-sweep)`);
        return;
      }
      io.err(`\ninterrupted (${name}): cleaning up before exit`);
      interrupt(`interrupted by ${name}`);
    });
  }
  return { io, signal: controller.signal };
}
