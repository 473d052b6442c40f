/** The invocation itself is wrong (unknown flag, malformed value, refused input): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/** The operation was attempted and did not succeed, or the world is not in a state that allows it: exit 1. */
export class OpsError extends Error {
  override readonly name = 'OpsError';
  readonly exitCode = 1;
}

/** The operator's session ended under the command (a signal, a closed stdout): exit 1 after clean-up. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
  readonly exitCode = 1;
}

/** One line for the operator: AWS SDK errors keep their service error name (AccessDenied, ThrottlingException, …). */
export function describeError(error: unknown): string {
  if (error instanceof UsageError || error instanceof OpsError || error instanceof InterruptedError) return error.message;
  if (error instanceof Error) {
    const message = error.message.split('\n')[0] ?? '';
    const named = error.name && error.name !== 'Error' && !message.startsWith(error.name) ? `${error.name}: ${message}` : message;
    // fetch hides the reason (ECONNREFUSED, certificate, DNS) in `cause`.
    return error.cause instanceof Error ? `${named} (${error.cause.message.split('\n')[0]})` : named;
  }
  return String(error);
}

export function exitCodeOf(error: unknown): number {
  return error instanceof UsageError ? 2 : 1;
}
