import { defineCommand } from '../lib/command.js';
import { changeBlockList, DEFAULT_MAX_PREFIX, dryRunOption, reasonOption } from '../lib/ip-block-list.js';

export const blockIp = defineCommand({
  name: 'block-ip',
  summary: "add an IPv4 or IPv6 network to the stack's WAF block list",
  positional: { name: 'cidr', description: 'address or network: 203.0.113.7, 198.51.100.0/24, 2001:db8::/48' },
  options: {
    reason: reasonOption,
    'max-prefix': {
      type: 'string',
      valueName: 'bits',
      description: `widest range allowed, as a prefix length, 1 or more (default /${DEFAULT_MAX_PREFIX[4]} for IPv4, /${DEFAULT_MAX_PREFIX[6]} for IPv6; WAF refuses /0)`,
    },
    'dry-run': dryRunOption,
  },
  details: [
    'Reads the IP set dms-blocked-ips-<stack>-v4 (or -v6) with its lock token, adds the network and writes it back,',
    're-reading and retrying when another writer wins the race. A bare address becomes /32 (/128); a network with',
    'host bits set is refused. Blocking a network already covered by the same entry changes nothing.',
    'Example: npm run ops -- block-ip 203.0.113.7 --stack production --reason "INC-142 credential stuffing"',
  ],
  run: ({ options, positional }, ctx) =>
    changeBlockList(
      { change: 'block', cidrText: positional ?? '', stack: options.stack, outputsFile: options.outputs, reason: options.reason, maxPrefixText: options['max-prefix'], dryRun: options['dry-run'] },
      ctx,
    ),
});
