// `aws <service> <command> --flag …` in the runbooks and docs, held against the AWS SDK's own
// model: the @aws-sdk/client-* packages carry each operation's name and its input members
// (the command's schema), and each waiter's operation. The CLI's kebab-case names are the SDK's
// PascalCase names with hyphens between the words, so both compare lower-cased without hyphens.
import { readFileSync } from 'node:fs';
import { commandLines, commandWords, inlineCodeSpans, type Runbooks } from './runbook-refs.js';

/** CLI service name to the client package with the same API (`logs` is client-cloudwatch-logs). */
export const CLI_SERVICE_PACKAGES = JSON.parse(readFileSync(new URL('./aws-cli-services.json', import.meta.url), 'utf8')) as Record<string, string>;
/** The CLI's own options, which no operation declares. */
export const CLI_GLOBAL_OPTIONS: readonly string[] = (
  JSON.parse(readFileSync(new URL('./aws-cli-global-options.json', import.meta.url), 'utf8')) as { options: string[] }
).options;

export interface AwsCliCall {
  file: string;
  line: number;
  service: string;
  /** The operation (`describe-db-instances`), or `wait <waiter>` (`wait db-instance-available`). */
  command: string;
  flags: string[];
}

/** What the SDK says of one `service command`: the operation and its input members, or why it cannot say. */
export type AwsCliOperation =
  | { operation: string; members: readonly string[] }
  | { unknown: string }
  | { unverifiable: string };

export const cliKey = (service: string, command: string) => `${service} ${command}`;
const bare = (name: string) => name.replace(/-/g, '').toLowerCase();

/**
 * The text with each `$(…)` replaced by a word: a command nested in another's argument is found
 * on its own, and its flags are not taken for the outer command's.
 */
function withoutSubstitutions(text: string): string {
  let out = '';
  let depth = 0;
  for (let index = 0; index < text.length; index++) {
    if (text.startsWith('$(', index)) {
      if (depth === 0) out += 'SUBSTITUTION';
      depth++;
      index++;
    } else if (depth > 0 && text[index] === '(') {
      depth++;
    } else if (depth > 0 && text[index] === ')') {
      depth--;
    } else if (depth === 0) {
      out += text[index];
    }
  }
  return out;
}

/** The `$(…)` bodies of a text, outermost first, so nested commands are read too. */
function substitutions(text: string): string[] {
  const bodies: string[] = [];
  for (let start = text.indexOf('$('); start !== -1; start = text.indexOf('$(', start + 2)) {
    let depth = 0;
    for (let index = start + 1; index < text.length; index++) {
      if (text[index] === '(') depth++;
      else if (text[index] === ')' && --depth === 0) {
        bodies.push(text.slice(start + 2, index));
        break;
      }
    }
  }
  return bodies;
}

/**
 * Every `aws <service> <command>` in a code block or an inline code span, with the `--flags` it
 * passes (continuation lines joined). A `wait` command's waiter is part of its command.
 */
export function awsCliCalls(documents: Runbooks): AwsCliCall[] {
  const calls: AwsCliCall[] = [];
  for (const [file, markdown] of documents) {
    for (const line of commandLines(markdown)) {
      const texts = (line.inFence ? [line.text] : inlineCodeSpans(line.text)).flatMap((text) => [text, ...substitutions(text)]);
      for (const text of texts) {
        for (const words of commandWords(withoutSubstitutions(text), /(?<![\w$/.-])aws(?=\s+[a-z])/g)) {
          const [service, operation, waiter] = words;
          if (!service || !operation || !/^[a-z][a-z0-9-]*$/.test(service) || !/^[a-z][a-z0-9-]*$/.test(operation)) continue;
          const command = operation === 'wait' && waiter && /^[a-z][a-z0-9-]*$/.test(waiter) ? `wait ${waiter}` : operation;
          const flags = words.filter((word) => word.startsWith('--')).map((word) => word.slice(2).split('=')[0] ?? '');
          calls.push({ file, line: line.number, service, command, flags });
        }
      }
    }
  }
  return calls;
}

interface SchemaCommand {
  schema?: unknown[];
}
type CommandClass = new (input: object) => SchemaCommand;

/** Input members of a command, read from its schema (`[3, namespace, name, traits, members, …]`). */
function inputMembers(command: SchemaCommand): string[] | undefined {
  const input = command.schema?.[4];
  const structure = typeof input === 'function' ? (input as () => unknown)() : input;
  const members = Array.isArray(structure) ? structure[4] : undefined;
  return Array.isArray(members) && members.every((member) => typeof member === 'string') ? members : undefined;
}

/** The command a waiter polls with: it is run against a client that records the first command and stops. */
async function waiterCommand(waiter: (config: object, input: object) => Promise<unknown>): Promise<SchemaCommand | undefined> {
  const stop = new AbortController();
  let sent: SchemaCommand | undefined;
  const client = {
    config: {},
    send: async (command: SchemaCommand) => {
      sent ??= command;
      stop.abort();
      throw new Error('recorded');
    },
  };
  await waiter({ client, minDelay: 1, maxDelay: 1, maxWaitTime: 2, abortSignal: stop.signal }, {}).catch(() => undefined);
  return sent;
}

async function resolveOperation(service: string, command: string): Promise<AwsCliOperation> {
  const packageName = CLI_SERVICE_PACKAGES[service];
  if (!packageName) return { unverifiable: `no @aws-sdk client package is mapped for the CLI service "${service}" (test/support/aws-cli-services.json)` };
  let sdk: Record<string, unknown>;
  try {
    sdk = (await import(packageName)) as Record<string, unknown>;
  } catch {
    return { unverifiable: `${packageName} is not installed (add it as a devDependency)` };
  }
  const exportNamed = (prefix: string, name: string, suffix: string) =>
    Object.keys(sdk).find((key) => key.startsWith(prefix) && key.endsWith(suffix) && bare(key.slice(prefix.length, key.length - suffix.length)) === bare(name));
  if (command.startsWith('wait ')) {
    const waiterName = command.slice('wait '.length);
    const found = exportNamed('waitUntil', waiterName, '');
    if (!found) return { unknown: `${packageName} has no waiter for "${waiterName}"` };
    const polled = await waiterCommand(sdk[found] as (config: object, input: object) => Promise<unknown>);
    const members = polled && inputMembers(polled);
    if (!members) return { unverifiable: `cannot read the operation ${found} polls` };
    return { operation: `${found} (${polled.constructor.name.replace(/Command$/, '')})`, members };
  }
  const found = exportNamed('', command, 'Command');
  if (!found) return { unknown: `${packageName} has no operation "${command}"` };
  const members = inputMembers(new (sdk[found] as CommandClass)({}));
  if (!members) return { unverifiable: `${packageName} ${found} carries no input schema` };
  return { operation: found.replace(/Command$/, ''), members };
}

/** The SDK's answer for each distinct `service command` of `calls`. */
export async function sdkOperations(calls: readonly AwsCliCall[]): Promise<Map<string, AwsCliOperation>> {
  const operations = new Map<string, AwsCliOperation>();
  for (const call of calls) {
    const key = cliKey(call.service, call.command);
    if (!operations.has(key)) operations.set(key, await resolveOperation(call.service, call.command));
  }
  return operations;
}

/** A flag names an input member: `--db-instance-identifier` is DBInstanceIdentifier, `--no-x` the boolean X. */
function takesFlag(members: readonly string[], flag: string): boolean {
  const names = new Set(members.map(bare));
  return names.has(bare(flag)) || (flag.startsWith('no-') && names.has(bare(flag.slice(3))));
}

/**
 * Every `aws <service> <command>` is an operation (or waiter) of that service's SDK client, and
 * every `--flag` it passes is one of the CLI's global options or an input member of the
 * operation. A service the SDK packages here cannot answer for is a problem too: unverifiable.
 */
export function checkAwsCliCalls(calls: readonly AwsCliCall[], operations: ReadonlyMap<string, AwsCliOperation>): string[] {
  const problems: string[] = [];
  for (const call of calls) {
    const at = `${call.file}:${call.line}: aws ${call.service} ${call.command}`;
    const operation = operations.get(cliKey(call.service, call.command)) ?? { unverifiable: 'not looked up' };
    if ('unverifiable' in operation) {
      problems.push(`${at}: cannot be verified: ${operation.unverifiable}`);
      continue;
    }
    if ('unknown' in operation) {
      problems.push(`${at}: no such command: ${operation.unknown}`);
      continue;
    }
    for (const flag of call.flags) {
      if (CLI_GLOBAL_OPTIONS.includes(flag) || takesFlag(operation.members, flag)) continue;
      problems.push(`${at}: --${flag} is no input of ${operation.operation}`);
    }
  }
  return problems;
}
