/**
 * `npm run plan -- --stack <name> [--json] [--cost [--assume name=value …]]`: the program run offline
 * under the runtime mocks, no AWS credentials and no Pulumi CLI, printed for a security reviewer
 * (`cdk synth` for this stack); with `--cost`, its monthly cost estimate (infra/cost/).
 */
import { pathToFileURL } from 'node:url';
import { estimateCost, formatEstimate, loadPrices } from './cost/estimate.js';
import { refreshPriceFile } from './cost/refresh-prices.js';
import { usageWith } from './cost/usage.js';
import dmsStack from './index.js';
import { runStack, type StackRun } from './plan/run.js';
import { formatPlan } from './plan/print.js';
import { loadStackFile } from './plan/stack-file.js';
import { checkPolicies } from './policy/harness.js';

export interface PlanResource {
  type: string;
  name: string;
  /** Logical name of the component the resource belongs to. */
  parent?: string;
  /** Inputs as the engine would receive them; secret values are `[secret]`. */
  inputs: Record<string, unknown>;
}

export interface Plan {
  resources: PlanResource[];
  outputs: Record<string, unknown>;
}

/** Plans `stack` from its `Pulumi.<stack>.yaml`. */
export async function planStack(stack: string): Promise<Plan> {
  return toPlan(await runPlan(stack));
}

/** Plans `stack` with the given config instead of its stack file's (tests vary one setting). */
export async function planWithConfig(stack: string, config: Readonly<Record<string, unknown>>): Promise<Plan> {
  return toPlan(await runPlan(stack, config));
}

/**
 * The full recording (ids, outputs, dependencies) the policy harness needs; `config` replaces the
 * stack file's (tests vary one setting of it).
 */
export function runPlan(stack: string, config: Readonly<Record<string, unknown>> = loadStackFile(stack).config): Promise<StackRun> {
  return runStack(stack, config, dmsStack);
}

export function toPlan(run: StackRun): Plan {
  return {
    resources: run.resources.map(({ type, name, parent, inputs }) => ({ type, name, ...(parent ? { parent } : {}), inputs })),
    outputs: run.outputs,
  };
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--refresh-prices')) {
    const region = argv[argv.indexOf('--region') + 1];
    if (!argv.includes('--region') || !region) {
      process.stderr.write('usage: npm run plan -- --refresh-prices --region <region>\n');
      return 2;
    }
    return refreshPriceFile(loadPrices(), region);
  }
  const stackIndex = argv.indexOf('--stack');
  const stack = stackIndex >= 0 ? argv[stackIndex + 1] : undefined;
  if (!stack) {
    process.stderr.write('usage: npm run plan -- --stack <name> [--json] [--cost [--assume name=value ...]]\n');
    return 2;
  }
  const started = performance.now();
  const stackFile = loadStackFile(stack);
  const run = await runPlan(stack, stackFile.config);
  const plan = toPlan(run);
  if (argv.includes('--cost')) {
    const assumptions = argv.flatMap((arg, i) => (argv[i - 1] === '--assume' ? [arg] : []));
    const estimate = estimateCost(run, { region: String(stackFile.config['aws:region']), prices: loadPrices(), usage: usageWith(assumptions) });
    const violations = await checkPolicies(run.resources);
    if (argv.includes('--json')) process.stdout.write(`${JSON.stringify({ stack, ...estimate, policyViolations: violations }, null, 2)}\n`);
    else {
      process.stdout.write(formatEstimate(stack, estimate));
      process.stdout.write(violations.length === 0 ? 'Policy pack: no violations.\n' : `Policy pack: ${violations.length} violation(s); run without --cost to see them.\n`);
    }
    return violations.length === 0 ? 0 : 1;
  }
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    return 0;
  }
  const violations = await checkPolicies(run.resources);
  process.stdout.write(formatPlan(stack, plan, violations, performance.now() - started, stackFile.standIns));
  return violations.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // exitCode, not exit(): a large plan written to a pipe must drain before the process ends.
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`plan failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
