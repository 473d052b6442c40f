import { processContext } from './lib/context.js';
import { startSession } from './lib/session.js';
import { runOps } from './registry.js';

process.exitCode = await runOps(process.argv.slice(2), processContext(startSession()));
