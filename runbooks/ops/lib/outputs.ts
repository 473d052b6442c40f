import { readFile } from 'node:fs/promises';
import type { OpsContext } from './context.js';
import { OpsError, UsageError } from './errors.js';

/** The stack outputs the ops commands read (names fixed by the platform brief), by shape. */
const OUTPUT_SHAPES = {
  apiUrl: 'url',
  albArnSuffix: 'string',
  clusterName: 'string',
  serviceName: 'string',
  taskDefinitionFamily: 'string',
  logGroupName: 'string',
  dbInstanceIdentifier: 'string',
  dbReplicaIdentifier: 'string',
  dbFailovers: 'count',
  dbSubnetGroupName: 'string',
  dbSecurityGroupId: 'string',
  dbParameterGroupName: 'string',
  dbKmsKeyArn: 'arn',
  dbInstanceClass: 'string',
  wafWebAclArn: 'arn',
  wafIpSetIds: 'ipSetIds',
  privateSubnetIds: 'stringList',
  region: 'string',
  jwtKeysSecretArn: 'arn',
  drillVerifyTaskDefinitionArn: 'arn',
  serviceSecurityGroupId: 'string',
  minTaskCount: 'count',
  maxTaskCount: 'count',
  budgetName: 'string',
  escalationStateMachineArn: 'arn',
  auditBucketName: 'string',
  forensicsBucketName: 'string',
  accessLogBucketName: 'string',
  wafLogGroupName: 'string',
  s3KmsKeyArn: 'arn',
  drRegion: 'string',
  drBackupVaultName: 'string',
  drKmsKeyArn: 'arn',
  xrayReplicaBucketName: 'string',
  drClusterName: 'string',
  drVerifyExecutionRoleArn: 'arn',
  drVerifyLogGroupName: 'string',
} as const;

type Shapes = typeof OUTPUT_SHAPES;
type ShapeType = {
  url: string;
  string: string;
  arn: string;
  stringList: string[];
  count: number;
  ipSetIds: { v4: string; v6: string };
};

export type OutputName = keyof Shapes;
export type StackOutputs = { [K in OutputName]: ShapeType[Shapes[K]] };

const SHAPE_TEXT: Record<keyof ShapeType, string> = {
  url: 'an http(s) URL',
  string: 'a non-empty string',
  arn: 'an ARN',
  stringList: 'a non-empty list of strings',
  count: 'a whole number',
  ipSetIds: 'an object { v4, v6 } of IP set ids',
};

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

function coerce(shape: keyof ShapeType, value: unknown): unknown {
  switch (shape) {
    case 'string':
      return nonEmptyString(value) ? value : undefined;
    case 'url':
      return nonEmptyString(value) && /^https?:\/\/[^\s/]+/.test(value) ? value.replace(/\/+$/, '') : undefined;
    case 'arn':
      return nonEmptyString(value) && /^arn:aws[\w-]*:[\w-]+:[\w-]*:\d{12}:.+/.test(value) ? value : undefined;
    case 'stringList':
      return Array.isArray(value) && value.length > 0 && value.every(nonEmptyString) ? value : undefined;
    case 'count': {
      const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
      return typeof number === 'number' && Number.isInteger(number) && number >= 0 ? number : undefined;
    }
    case 'ipSetIds': {
      const ids = value as { v4?: unknown; v6?: unknown } | null;
      return typeof ids === 'object' && ids !== null && nonEmptyString(ids.v4) && nonEmptyString(ids.v6) ? { v4: ids.v4, v6: ids.v6 } : undefined;
    }
  }
}

/** A stack's raw outputs and where they came from (for error messages). */
export interface OutputsSource {
  raw: Record<string, unknown>;
  source: string;
}

/** `--outputs <file>` when given, otherwise `pulumi stack output --json --show-secrets -s <stack>`. */
export async function loadOutputs(stack: string, outputsFile: string | undefined, ctx: OpsContext): Promise<OutputsSource> {
  if (outputsFile !== undefined) {
    let text: string;
    try {
      text = await readFile(outputsFile, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UsageError(`--outputs ${outputsFile}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? 'error'})`}`);
    }
    return { raw: parseOutputsJson(text, outputsFile), source: outputsFile };
  }
  const source = `pulumi stack output -s ${stack}`;
  let stdout: string;
  try {
    stdout = await ctx.pulumi(['stack', 'output', '--json', '--show-secrets', '-s', stack]);
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') {
      throw new OpsError(`the pulumi CLI is not installed here: pass --outputs <file.json> (saved with \`pulumi stack output --json -s ${stack}\`)`);
    }
    const reason = (failure.stderr ?? '').trim().split('\n').at(-1) || failure.message.split('\n')[0];
    throw new OpsError(`${source} failed: ${reason}`);
  }
  return { raw: parseOutputsJson(stdout, source), source };
}

function parseOutputsJson(text: string, source: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Never echo the text: with --show-secrets it may hold secret outputs.
    throw new OpsError(`stack outputs from ${source} are not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new OpsError(`stack outputs from ${source} are not a JSON object`);
  return parsed as Record<string, unknown>;
}

/** The named outputs, checked for presence and shape; one error names every missing or malformed one. */
export function requireOutputs<K extends OutputName>(loaded: OutputsSource, names: readonly K[]): Pick<StackOutputs, K> {
  const missing: string[] = [];
  const malformed: string[] = [];
  const picked: Partial<Record<OutputName, unknown>> = {};
  for (const name of names) {
    const value = loaded.raw[name];
    if (value === undefined || value === null) {
      missing.push(name);
      continue;
    }
    const coerced = coerce(OUTPUT_SHAPES[name], value);
    if (coerced === undefined) malformed.push(`${name} (expected ${SHAPE_TEXT[OUTPUT_SHAPES[name]]})`);
    else picked[name] = coerced;
  }
  const problems = [
    ...(missing.length > 0 ? [`missing ${missing.join(', ')}`] : []),
    ...(malformed.length > 0 ? [`malformed ${malformed.join(', ')}`] : []),
  ];
  if (problems.length > 0) throw new OpsError(`stack outputs from ${loaded.source}: ${problems.join('; ')}`);
  return picked as Pick<StackOutputs, K>;
}

/** An output a stack may leave out (e.g. `dbReplicaIdentifier` without a replica): undefined when absent or empty. */
export function optionalOutput<K extends OutputName>(loaded: OutputsSource, name: K): StackOutputs[K] | undefined {
  const value = loaded.raw[name];
  if (value === undefined || value === null || value === '') return undefined;
  return requireOutputs(loaded, [name])[name];
}

/** The account id inside an ARN output (Budgets needs it; no STS call for it). */
export function accountIdOf(arn: string): string {
  return arn.split(':')[4] ?? '';
}
