import { defineCommand } from '../lib/command.js';
import { changeBlockList, dryRunOption, reasonOption } from '../lib/ip-block-list.js';

export const unblockIp = defineCommand({
  name: 'unblock-ip',
  summary: "remove an IPv4 or IPv6 network from the stack's WAF block list",
  positional: { name: 'cidr', description: 'the address or network as it was blocked (203.0.113.7 means 203.0.113.7/32)' },
  options: { reason: reasonOption, 'dry-run': dryRunOption },
  details: [
    'Removes exactly that network (same address and prefix) with the IP set lock token, retrying on a lost race.',
    'No width bound applies: a wide entry must stay removable. Unblocking what is not blocked changes nothing.',
    'Example: npm run ops -- unblock-ip 203.0.113.7 --stack production --reason "INC-142 closed"',
  ],
  run: ({ options, positional }, ctx) =>
    changeBlockList({ change: 'unblock', cidrText: positional ?? '', stack: options.stack, outputsFile: options.outputs, reason: options.reason, dryRun: options['dry-run'] }, ctx),
});
