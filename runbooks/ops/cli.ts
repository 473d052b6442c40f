import { processContext } from './lib/context.js';
import { runOps } from './registry.js';

// Ctrl-C aborts long waits so commands clean up (the drill deletes its instance); a second Ctrl-C exits at once.
const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  process.stderr.write('\ninterrupted: cleaning up (Ctrl-C again to exit now)\n');
  interrupt.abort(new Error('interrupted by the operator'));
});

process.exitCode = await runOps(process.argv.slice(2), processContext(interrupt.signal));
