import type { OpsContext } from './context.js';
import { OpsError } from './errors.js';
import type { Progress } from './report.js';
import { formatDuration } from './time.js';

export type PollResult<T> = { done: true; value: T } | { done: false; status: string };

export interface WaitOptions<T> {
  /** What is awaited, for progress and the timeout message: "dms-drill-… to be available". */
  what: string;
  intervalMs: number;
  timeoutMs: number;
  /** Wait this long before the first look (a change the API has not reflected yet). */
  initialDelayMs?: number;
  /** One look; throw to stop waiting at once (a terminal failure state). */
  check(): Promise<PollResult<T>>;
}

/** How often an unchanged status is repeated, so a long wait still shows it is alive. */
const HEARTBEAT_MS = 5 * 60_000;

/** Polls like the SDK's `waitUntil…` helpers, but on the injected clock and with a progress line per change. */
export async function waitFor<T>(ctx: OpsContext, progress: Progress, options: WaitOptions<T>): Promise<T> {
  const started = ctx.clock.now().getTime();
  let lastStatus: string | undefined;
  let lastPrinted = started;
  if (options.initialDelayMs) await ctx.clock.sleep(options.initialDelayMs, ctx.signal);
  for (;;) {
    const result = await options.check();
    if (result.done) return result.value;
    const now = ctx.clock.now().getTime();
    if (result.status !== lastStatus || now - lastPrinted >= HEARTBEAT_MS) {
      progress.step(`waiting for ${options.what}: ${result.status} (${formatDuration(now - started)})`);
      lastStatus = result.status;
      lastPrinted = now;
    }
    if (now - started + options.intervalMs > options.timeoutMs) {
      throw new OpsError(`gave up after ${formatDuration(options.timeoutMs)} waiting for ${options.what} (last status: ${result.status})`);
    }
    await ctx.clock.sleep(options.intervalMs, ctx.signal);
  }
}
