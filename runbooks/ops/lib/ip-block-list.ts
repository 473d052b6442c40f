import { GetIPSetCommand, UpdateIPSetCommand, WAFOptimisticLockException } from '@aws-sdk/client-wafv2';
import { parseInteger, stackShortName, type OptionSpec } from './command.js';
import type { OpsContext } from './context.js';
import { dryRunOption, sendChange } from './dry-run.js';
import { OpsError, UsageError } from './errors.js';
import { parseCidr, parseStoredCidr, sameNetwork, type Cidr } from './cidr.js';
import { loadOutputs, requireOutputs } from './outputs.js';
import { Progress, printSummary, type SummaryRow } from './report.js';

/** Widest range `block-ip` accepts unless `--max-prefix` says otherwise. */
export const DEFAULT_MAX_PREFIX = { 4: 16, 6: 48 } as const;
/** WAF's hard limit on addresses per IP set. */
const IP_SET_CAPACITY = 10_000;
/** Attempts when another writer updates the set between our read and our write. */
const LOCK_ATTEMPTS = 5;
const LOCK_RETRY_BASE_MS = 500;

export { dryRunOption };

export const reasonOption = {
  type: 'string',
  valueName: 'text',
  description: 'why (incident, ticket): recorded in the summary for the incident log',
} as const satisfies OptionSpec;

export interface BlockListRequest {
  change: 'block' | 'unblock';
  cidrText: string;
  stack: string;
  outputsFile: string | undefined;
  reason: string | undefined;
  /** block only: the narrowest prefix length allowed (a larger number is a narrower range). */
  maxPrefixText?: string | undefined;
  /** Read the set, print the UpdateIPSet that would be sent, send nothing. */
  dryRun: boolean;
}

function checkWidth(cidr: Cidr, maxPrefixText: string | undefined): void {
  // WAF takes every CIDR range except /0 (AWS WAF Developer Guide, IP set match rule statement:
  // https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-ipset-match.html).
  if (cidr.prefix === 0) throw new UsageError(`${cidr.text} is every address: WAF does not accept /0 in an IP set; block narrower ranges`);
  const bound = maxPrefixText === undefined ? DEFAULT_MAX_PREFIX[cidr.family] : parseInteger(maxPrefixText, 'max-prefix', 1, cidr.family === 4 ? 32 : 128);
  if (cidr.prefix < bound) {
    throw new UsageError(
      `${cidr.text} is wider than the /${bound} bound for IPv${cidr.family}; block narrower ranges, or pass --max-prefix ${cidr.prefix} if this range is really meant`,
    );
  }
}

/** Adds or removes one network in the stack's WAF block list (the v4 or v6 IP set), idempotently. */
export async function changeBlockList(request: BlockListRequest, ctx: OpsContext): Promise<number> {
  const cidr = parseCidr(request.cidrText);
  if (request.change === 'block') checkWidth(cidr, request.maxPrefixText);
  const outputs = requireOutputs(await loadOutputs(request.stack, request.outputsFile, ctx), ['region', 'wafIpSetIds']);
  const waf = ctx.aws(outputs.region).wafv2();
  const progress = new Progress(ctx);
  const ipSet = {
    Name: `dms-blocked-ips-${stackShortName(request.stack)}-v${cidr.family}`,
    Scope: 'REGIONAL' as const,
    Id: cidr.family === 4 ? outputs.wafIpSetIds.v4 : outputs.wafIpSetIds.v6,
  };

  const summary = (result: string, entries: number): void => {
    const rows: SummaryRow[] = [
      ['action', request.change],
      ['network', cidr.text === request.cidrText.trim() ? cidr.text : `${cidr.text} (from ${request.cidrText.trim()})`],
      ['ip set', `${ipSet.Name} (${ipSet.Id}, ${ipSet.Scope})`],
      ['reason', request.reason ?? '(none given)'],
      ['operator', ctx.env.USER ?? ctx.env.LOGNAME ?? '(unknown)'],
      ['result', result],
      ['entries now', String(entries)],
    ];
    printSummary(ctx, `${request.change}-ip: ${request.stack}`, rows);
  };

  for (let attempt = 1; attempt <= LOCK_ATTEMPTS; attempt++) {
    progress.step(`reading ${ipSet.Name}`);
    const current = await waf.send(new GetIPSetCommand(ipSet));
    const addresses = current.IPSet?.Addresses ?? [];
    if (!current.LockToken) throw new OpsError(`GetIPSet returned no lock token for ${ipSet.Name}`);
    const existing = addresses.find((address) => {
      const stored = parseStoredCidr(address);
      return stored !== undefined && sameNetwork(stored, cidr);
    });
    if (request.change === 'block' && existing !== undefined) {
      summary(`already blocked (as ${existing}); no change made`, addresses.length);
      return 0;
    }
    if (request.change === 'unblock' && existing === undefined) {
      summary('not in the block list; no change made', addresses.length);
      return 0;
    }
    const next = request.change === 'block' ? [...addresses, cidr.text] : addresses.filter((address) => address !== existing);
    if (next.length > IP_SET_CAPACITY) throw new OpsError(`${ipSet.Name} already holds ${addresses.length} entries, WAF's limit is ${IP_SET_CAPACITY}`);
    try {
      progress.step(`${request.change === 'block' ? 'adding' : 'removing'} ${cidr.text} (attempt ${attempt})`);
      // UpdateIPSet replaces every setting, so the description is sent back unchanged.
      const sent = await sendChange(ctx, request.dryRun, {
        service: 'wafv2',
        command: new UpdateIPSetCommand({ ...ipSet, Addresses: next, LockToken: current.LockToken, Description: current.IPSet?.Description }),
        send: (command) => waf.send(command),
      });
      if (!sent) {
        summary('dry run: not sent', addresses.length);
        return 0;
      }
      summary(`${request.change === 'block' ? 'blocked' : 'unblocked'}; WAF applies it within about a minute`, next.length);
      return 0;
    } catch (error) {
      if (!(error instanceof WAFOptimisticLockException)) throw error;
      progress.step(`${ipSet.Name} changed while we were updating it; reading it again`);
      await ctx.clock.sleep(LOCK_RETRY_BASE_MS * attempt, ctx.signal);
    }
  }
  throw new OpsError(`${ipSet.Name} kept changing under us (${LOCK_ATTEMPTS} attempts lost the lock token race); try again`);
}
