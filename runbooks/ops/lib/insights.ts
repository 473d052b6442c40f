import { GetQueryResultsCommand, StartQueryCommand, StopQueryCommand, type CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { OpsContext } from './context.js';
import { OpsError } from './errors.js';
import type { Progress } from './report.js';
import { waitFor } from './wait.js';

const POLL_MS = 1_000;
const QUERY_TIMEOUT_MS = 3 * 60_000;

export interface InsightsQuery {
  logGroupName: string;
  queryString: string;
  start: Date;
  end: Date;
}

/** The contract's event names as an Insights `in [...]` list. */
export function eventList(events: readonly string[]): string {
  return `[${events.map((event) => JSON.stringify(event)).join(', ')}]`;
}

/** Runs a Logs Insights query to completion (StartQuery, then GetQueryResults until Complete); rows as field → value. */
export async function runInsightsQuery(ctx: OpsContext, progress: Progress, logs: CloudWatchLogsClient, query: InsightsQuery): Promise<Record<string, string>[]> {
  const started = await logs.send(
    new StartQueryCommand({
      logGroupName: query.logGroupName,
      startTime: Math.floor(query.start.getTime() / 1000),
      endTime: Math.ceil(query.end.getTime() / 1000),
      queryString: query.queryString,
    }),
  );
  const queryId = started.queryId;
  if (!queryId) throw new OpsError('StartQuery returned no query id');
  try {
    return await waitFor(ctx, progress, {
      what: `Logs Insights query on ${query.logGroupName}`,
      intervalMs: POLL_MS,
      timeoutMs: QUERY_TIMEOUT_MS,
      check: async () => {
        const response = await logs.send(new GetQueryResultsCommand({ queryId }));
        if (response.status === 'Complete') {
          const rows = (response.results ?? []).map((fields) =>
            Object.fromEntries(fields.filter((field) => field.field && field.field !== '@ptr').map((field) => [field.field ?? '', field.value ?? ''])),
          );
          return { done: true, value: rows };
        }
        if (response.status === 'Scheduled' || response.status === 'Running') return { done: false, status: response.status };
        throw new OpsError(`Logs Insights query on ${query.logGroupName} ended ${response.status ?? 'without a status'}`);
      },
    });
  } catch (error) {
    // A query left running keeps counting against the account's concurrent query limit.
    try {
      await logs.send(new StopQueryCommand({ queryId }));
    } catch {
      // Already ended: nothing to stop.
    }
    throw error;
  }
}
