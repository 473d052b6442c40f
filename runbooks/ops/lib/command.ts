import { parseArgs } from 'node:util';
import type { OpsContext } from './context.js';
import { UsageError } from './errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Placeholder shown in help, e.g. `--since <duration>`. */
  valueName?: string;
  required?: boolean;
}

type OptionSpecs = Record<string, OptionSpec>;

type OptionValues<O extends OptionSpecs> = {
  [K in keyof O]: O[K]['type'] extends 'boolean' ? boolean : O[K]['required'] extends true ? string : string | undefined;
};

/** Options every command takes: the stack, and where its outputs come from. */
const COMMON_OPTIONS = {
  stack: { type: 'string', valueName: 'name', required: true, description: 'Pulumi stack (e.g. production, or org/dms/production)' },
  outputs: {
    type: 'string',
    valueName: 'file.json',
    description: 'read stack outputs from this JSON file instead of `pulumi stack output --json --show-secrets`',
  },
} as const satisfies OptionSpecs;

export type CommandInput<O extends OptionSpecs> = {
  options: OptionValues<O & typeof COMMON_OPTIONS>;
  positional: string | undefined;
};

export interface CommandDefinition<O extends OptionSpecs> {
  name: string;
  summary: string;
  /** `block-ip <cidr>`: one required positional argument, when the command takes one. */
  positional?: { name: string; description: string };
  options: O;
  /** Further help lines: what the command does step by step, an example. */
  details: readonly string[];
  run(input: CommandInput<O>, ctx: OpsContext): Promise<number>;
}

/** A registered command: what `npm run ops -- <name>` runs, and the flags it accepts (for the runbook checks). */
export interface OpsCommand {
  name: string;
  summary: string;
  flags: readonly string[];
  help(): string;
  execute(argv: readonly string[], ctx: OpsContext): Promise<number>;
}

function usageLine(name: string, positional: CommandDefinition<OptionSpecs>['positional'], options: OptionSpecs): string {
  const parts = [`npm run ops -- ${name}`];
  if (positional) parts.push(`<${positional.name}>`);
  for (const [flag, spec] of Object.entries(options)) {
    const text = spec.type === 'string' ? `--${flag} <${spec.valueName ?? 'value'}>` : `--${flag}`;
    parts.push(spec.required ? text : `[${text}]`);
  }
  return parts.join(' ');
}

export function defineCommand<O extends OptionSpecs>(definition: CommandDefinition<O>): OpsCommand {
  const options: OptionSpecs = { ...COMMON_OPTIONS, ...definition.options };
  const help = (): string => {
    const lines = [`${definition.name}: ${definition.summary}`, '', `usage: ${usageLine(definition.name, definition.positional, options)}`, ''];
    if (definition.positional) lines.push(`  <${definition.positional.name}>`.padEnd(28) + definition.positional.description);
    for (const [flag, spec] of Object.entries(options)) {
      const left = spec.type === 'string' ? `--${flag} <${spec.valueName ?? 'value'}>` : `--${flag}`;
      lines.push(`  ${left}`.padEnd(28) + spec.description);
    }
    lines.push(`  --help`.padEnd(28) + 'show this help');
    lines.push('', ...definition.details);
    return lines.join('\n');
  };

  return {
    name: definition.name,
    summary: definition.summary,
    flags: [...Object.keys(options), 'help'],
    help,
    async execute(argv, ctx) {
      const parsed = parseCommandLine(definition.name, argv, options, definition.positional !== undefined);
      if (parsed.help) {
        ctx.io.out(help());
        return 0;
      }
      for (const [flag, spec] of Object.entries(options)) {
        if (spec.required && parsed.values[flag] === undefined) throw new UsageError(`${definition.name} needs --${flag} <${spec.valueName ?? 'value'}>`);
      }
      if (definition.positional && parsed.positional === undefined) {
        throw new UsageError(`${definition.name} needs <${definition.positional.name}>: ${definition.positional.description}`);
      }
      validateStackName(parsed.values.stack as string);
      return definition.run({ options: parsed.values as CommandInput<O>['options'], positional: parsed.positional }, ctx);
    },
  };
}

function parseCommandLine(
  name: string,
  argv: readonly string[],
  options: OptionSpecs,
  takesPositional: boolean,
): { values: Record<string, string | boolean | undefined>; positional: string | undefined; help: boolean } {
  const config = Object.fromEntries(Object.entries(options).map(([flag, spec]) => [flag, { type: spec.type }]));
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...config, help: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (error) {
    // node's messages are long and mention parseArgs internals; keep the part that names the flag.
    const message = error instanceof Error ? (error.message.split('\n')[0] ?? '').replace(/\. To specify a positional.*$/, '') : String(error);
    throw new UsageError(`${name}: ${message}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return { values, positional: undefined, help: true };
  const allowed = takesPositional ? 1 : 0;
  if (positionals.length > allowed) throw new UsageError(`${name}: unexpected argument "${positionals[allowed]}"`);
  return { values, positional: positionals[0], help: false };
}

function validateStackName(stack: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*){0,2}$/.test(stack)) {
    throw new UsageError(`--stack "${stack}" is not a Pulumi stack name ([org/][project/]stack of letters, digits, ".", "_", "-")`);
  }
}

/** The stack's own name (`production` of `acme/dms/production`): what resource names embed. */
export function stackShortName(stack: string): string {
  return stack.split('/').at(-1) ?? stack;
}

/** A whole number within [min, max], or a usage error naming the flag. */
export function parseInteger(text: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--${flag} must be a whole number, not "${text}"`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${flag} must be between ${min} and ${max}, not ${value}`);
  return value;
}
