import { isIPv6 } from 'node:net';
import { defineCommand, parseInteger } from '../lib/command.js';
import { parseStoredCidr } from '../lib/cidr.js';
import { eventList, runInsightsQuery } from '../lib/insights.js';
import { loadOutputs, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary, printTable } from '../lib/report.js';
import { formatDuration, isoSeconds, parseDuration } from '../lib/time.js';

/** CONTRACT §5: every way a login fails. */
export const LOGIN_FAILURE_EVENTS = ['auth_login_invalid_user', 'auth_login_bad_password', 'auth_login_locked', 'auth_login_rate_limited'] as const;

export const topOffenders = defineCommand({
  name: 'top-offenders',
  summary: 'client IPs with the most failed logins (Logs Insights on the API log group)',
  options: {
    since: { type: 'string', valueName: 'duration', description: 'how far back to look: 15m, 1h, 1d (default 1h)' },
    limit: { type: 'string', valueName: 'n', description: 'how many IPs to list (default 20, at most 1000)' },
  },
  details: [
    `Counts ${LOGIN_FAILURE_EVENTS.join(', ')} by the client IP field \`ip\`, most first, and prints the block-ip`,
    'command line for the top one. Check an IP is not a clinic\'s shared office address before blocking it.',
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
      `limit ${limit}`,
    ].join(' | ');
    progress.step(`querying ${outputs.logGroupName} for login failures since ${isoSeconds(start)}`);
    const rows = await runInsightsQuery(ctx, progress, ctx.aws(outputs.region).logs(), { logGroupName: outputs.logGroupName, queryString, start, end });
    const offenders = rows
      .map((row) => ({ ip: row.ip ?? '', failures: Number(row.failures ?? 0) }))
      .sort((a, b) => b.failures - a.failures);

    if (offenders.length > 0) {
      ctx.io.out(`Login failures by client IP, ${isoSeconds(start)} to ${isoSeconds(end)}:`);
      printTable(ctx, ['#', 'ip', 'failures'], offenders.map((offender, index) => [index + 1, offender.ip, offender.failures]));
    }
    const top = offenders[0];
    const topCidr = top ? parseStoredCidr(`${top.ip}/${isIPv6(top.ip) ? 128 : 32}`) : undefined;
    const suggestion = top && topCidr
      ? `npm run ops -- block-ip ${topCidr.text} --stack ${options.stack} --reason "${top.failures} login failures in ${formatDuration(sinceMs)}"`
      : 'none';
    printSummary(ctx, `top-offenders: ${options.stack}`, [
      ['window', `last ${formatDuration(sinceMs)} (${isoSeconds(start)} to ${isoSeconds(end)})`],
      ['log group', outputs.logGroupName],
      ['ips listed', String(offenders.length)],
      ['failures (listed)', String(offenders.reduce((sum, offender) => sum + offender.failures, 0))],
      ['suggested', suggestion],
    ]);
    return 0;
  },
});
