import { clientKey } from '../../../api/http/client-key.js';
import { defineCommand, parseInteger } from '../lib/command.js';
import { parseStoredCidr } from '../lib/cidr.js';
import { eventList, runInsightsQuery } from '../lib/insights.js';
import { loadOutputs, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary, printTable } from '../lib/report.js';
import { formatDuration, isoSeconds, parseDuration } from '../lib/time.js';

/** Logs Insights returns at most this many rows of a `stats` query. */
const INSIGHTS_MAX_ROWS = 10_000;

/** CONTRACT §5: every way a login fails. */
export const LOGIN_FAILURE_EVENTS = ['auth_login_invalid_user', 'auth_login_bad_password', 'auth_login_locked', 'auth_login_rate_limited'] as const;

export const topOffenders = defineCommand({
  name: 'top-offenders',
  summary: 'clients (IPv4 addresses, IPv6 /64s) with the most failed logins (Logs Insights on the API log group)',
  options: {
    since: { type: 'string', valueName: 'duration', description: 'how far back to look: 15m, 1h, 1d (default 1h)' },
    limit: { type: 'string', valueName: 'n', description: 'how many clients to list (default 20, at most 1000)' },
  },
  details: [
    `Counts ${LOGIN_FAILURE_EVENTS.join(', ')} by the client IP field \`ip\`, then by client as the API's login`,
    'limit counts them (an IPv4 address, an IPv6 /64: one host picks any address in its /64), most first, and prints',
    "the block-ip command line for the top one. Check a client is not a clinic's shared office address before blocking it.",
    'Example: npm run ops -- top-offenders --stack production --since 1h',
  ],
  async run({ options }, ctx) {
    const sinceText = options.since ?? '1h';
    const sinceMs = parseDuration(sinceText, 'since');
    const limit = parseInteger(options.limit ?? '20', 'limit', 1, 1_000);
    const outputs = requireOutputs(await loadOutputs(options.stack, options.outputs, ctx), ['region', 'logGroupName']);
    const progress = new Progress(ctx);
    const end = ctx.clock.now();
    const start = new Date(end.getTime() - sinceMs);
    const queryString = [
      `filter event in ${eventList(LOGIN_FAILURE_EVENTS)} and ispresent(ip)`,
      'stats count(*) as failures by ip',
      'sort failures desc',
      `limit ${INSIGHTS_MAX_ROWS}`,
    ].join(' | ');
    progress.step(`querying ${outputs.logGroupName} for login failures since ${isoSeconds(start)}`);
    const rows = await runInsightsQuery(ctx, progress, ctx.aws(outputs.region).logs(), { logGroupName: outputs.logGroupName, queryString, start, end });
    const byClient = new Map<string, { client: string; failures: number; addresses: number }>();
    for (const row of rows) {
      if (!row.ip) continue;
      const client = clientKey(row.ip);
      const entry = byClient.get(client) ?? { client, failures: 0, addresses: 0 };
      entry.failures += Number(row.failures ?? 0);
      entry.addresses += 1;
      byClient.set(client, entry);
    }
    const offenders = [...byClient.values()].sort((a, b) => b.failures - a.failures).slice(0, limit);

    if (offenders.length > 0) {
      ctx.io.out(`Login failures by client, ${isoSeconds(start)} to ${isoSeconds(end)}:`);
      printTable(ctx, ['#', 'client', 'failures', 'addresses'], offenders.map((offender, index) => [index + 1, offender.client, offender.failures, offender.addresses]));
    }
    const top = offenders[0];
    const topCidr = top ? parseStoredCidr(top.client.includes('/') ? top.client : `${top.client}/32`) : undefined;
    const suggestion = top && topCidr
      ? `npm run ops -- block-ip ${topCidr.text} --stack ${options.stack} --reason "${top.failures} login failures in ${formatDuration(sinceMs)}"`
      : 'none';
    printSummary(ctx, `top-offenders: ${options.stack}`, [
      ['window', `last ${formatDuration(sinceMs)} (${isoSeconds(start)} to ${isoSeconds(end)})`],
      ['log group', outputs.logGroupName],
      ['clients listed', String(offenders.length)],
      ['failures (listed)', String(offenders.reduce((sum, offender) => sum + offender.failures, 0))],
      ['suggested', suggestion],
    ]);
    return 0;
  },
});
