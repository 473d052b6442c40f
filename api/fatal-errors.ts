import type { Logger } from './logger.js';

/** What the process does on an error nothing else caught: `process` itself, or a stand-in in tests. */
export interface ProcessHooks {
  on(event: 'unhandledRejection' | 'uncaughtException', listener: (error: unknown) => void): unknown;
  exit(code: number): void;
}

/**
 * A promise rejected outside any request (a timer, a listener, a pool event) or an exception thrown
 * from a callback: Node would print a bare stack trace to stderr, which no log metric counts, and
 * exit. Instead, one JSON line `process_fatal_error` (origin, error name and message, stack) and
 * exit 1 once it is written: the process state after such an error cannot be trusted, and ECS
 * starts a replacement task. Only the first error is logged; a second one while exiting adds nothing.
 */
export function exitOnFatalErrors(log: Logger, hooks: ProcessHooks = process): void {
  let exiting = false;
  const fatal = (origin: 'unhandledRejection' | 'uncaughtException') => (error: unknown) => {
    if (exiting) return;
    exiting = true;
    log.error('process_fatal_error', {
      origin,
      ...(error instanceof Error ? { errorName: error.name, errorMessage: error.message, stack: error.stack } : { thrownType: typeof error }),
    });
    // The stdout transport writes whatever is pending when the process exits.
    hooks.exit(1);
  };
  hooks.on('unhandledRejection', fatal('unhandledRejection'));
  hooks.on('uncaughtException', fatal('uncaughtException'));
}
