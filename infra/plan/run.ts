/**
 * Runs the Pulumi program in-process under the runtime mocks and records what it registers.
 *
 * The Pulumi runtime keeps its state in a process-wide store. Each run resets it (`setMocks`
 * calls `resetOptions`, a new stack resource is created, the config map is replaced), waits for
 * every outstanding registration, and runs are queued so two never overlap. That makes a run
 * repeatable in one process, for both stacks, as often as the tests need.
 */
import * as pulumi from '@pulumi/pulumi';
import { createMocks } from './mocks.js';

/** One registered resource, inputs as the engine received them. */
export interface RecordedResource {
  urn: string;
  type: string;
  name: string;
  /** Logical name of the parent component (absent for the stack's direct children). */
  parent?: string;
  /** Inputs with secret values replaced by `[secret]`. */
  inputs: Record<string, unknown>;
  /** Physical id the mocks assigned. */
  id: string;
  /** Outputs (inputs plus what the provider computes); keys whose input was secret are masked. */
  outputs: Record<string, unknown>;
  /** Input property name to the URNs of the resources it was computed from. */
  propertyDependencies: Record<string, string[]>;
  /** URNs the resource waits for (explicit `dependsOn` and input dependencies). */
  dependencies: string[];
  /** Properties `pulumi up` leaves alone once created. */
  ignoreChanges: string[];
  /** `pulumi destroy` refuses while the resource is protected. */
  protect: boolean;
  /** `pulumi destroy` forgets the resource but leaves it in AWS. */
  retainOnDelete: boolean;
}

export interface StackRun {
  resources: RecordedResource[];
  /** Stack outputs, secret ones masked. */
  outputs: Record<string, unknown>;
}

/** A program in Pulumi's sense: returns the stack outputs. */
export type Program = () => Record<string, unknown> | Promise<Record<string, unknown>>;

export const SECRET_MASK = '[secret]';

const SIG_KEY = pulumi.runtime.specialSigKey;
const SIGNATURES = {
  secret: pulumi.runtime.specialSecretSig,
  resource: pulumi.runtime.specialResourceSig,
  asset: pulumi.runtime.specialAssetSig,
  archive: pulumi.runtime.specialArchiveSig,
  output: pulumi.runtime.specialOutputValueSig,
};

/** The slice of the protobuf request/response and mock monitor the recorder reads. */
interface Struct {
  toJavaScript(): Record<string, unknown>;
}
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getObject(): Struct | undefined;
  getDependenciesList(): string[];
  getIgnorechangesList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getPropertydependenciesMap(): { forEach(visit: (dependencies: { getUrnsList(): string[] }, property: string) => void): void };
}
interface RegisterResponse {
  getUrn(): string;
  getId(): string;
  getObject(): Struct | undefined;
}
type Callback = (error: unknown, response: RegisterResponse | undefined) => void;
interface MockMonitorLike {
  registerResource(request: RegisterRequest, callback: Callback): Promise<void>;
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `program` for `stack` with `config` (keys `namespace:key`, structured values as objects).
 * Rejects with the program's error (a `ConfigError` for bad config) or a failed registration.
 */
export function runStack(stack: string, config: Readonly<Record<string, unknown>>, program: Program): Promise<StackRun> {
  const run = queue.then(() => runOnce(stack, config, program));
  queue = run.catch(() => undefined);
  return run;
}

async function runOnce(stack: string, config: Readonly<Record<string, unknown>>, program: Program): Promise<StackRun> {
  const region = typeof config['aws:region'] === 'string' ? config['aws:region'] : 'us-east-1';
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)])),
    [],
  );
  await pulumi.runtime.setMocks(createMocks(region), 'dms', stack, false);

  const registered: { request: RegisterRequest; response?: RegisterResponse }[] = [];
  const failures: unknown[] = [];
  // The mock monitor hands mocks neither the parent nor the secret markers; the raw request has both.
  const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitorLike;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) => {
    const entry: { request: RegisterRequest; response?: RegisterResponse } = { request };
    registered.push(entry);
    return register(request, (error, response) => {
      if (error) failures.push(error);
      else if (response) entry.response = response;
      callback(error, response);
    });
  };

  let programOutputs: Record<string, unknown> = {};
  let resolved: Record<string, unknown> | undefined;
  try {
    resolved = await pulumi.runtime.runInPulumiStack(async () => {
      programOutputs = await program();
      return programOutputs;
    });
  } finally {
    // Drain every registration still in flight, so none of this run lands in the next one.
    await pulumi.runtime.disconnect().catch(() => undefined);
  }
  if (failures.length > 0) throw failures[0];

  const names = new Map(registered.map(({ request, response }) => [response?.getUrn(), request.getName()]));
  const resources: RecordedResource[] = [];
  for (const { request, response } of registered) {
    const type = request.getType();
    if (type === 'pulumi:pulumi:Stack' || type.startsWith('pulumi:providers:') || !response) continue;
    const parentName = names.get(request.getParent());
    const parentIsStack = request.getParent().includes('::pulumi:pulumi:Stack::');
    const inputs = decode(request.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
    const outputs = decode(response.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
    // Mocks echo inputs back unwrapped: a value secret on the way in stays masked on the way out.
    for (const [key, value] of Object.entries(inputs)) if (value === SECRET_MASK) outputs[key] = SECRET_MASK;
    const propertyDependencies: Record<string, string[]> = {};
    request.getPropertydependenciesMap().forEach((dependencies, property) => {
      propertyDependencies[property] = dependencies.getUrnsList();
    });
    resources.push({
      urn: response.getUrn(),
      type,
      name: request.getName(),
      ...(parentName && !parentIsStack ? { parent: parentName } : {}),
      inputs,
      id: response.getId(),
      outputs,
      propertyDependencies,
      dependencies: request.getDependenciesList(),
      ignoreChanges: request.getIgnorechangesList(),
      protect: request.getProtect() === true,
      retainOnDelete: request.getRetainondelete() === true,
    });
  }
  return { resources, outputs: await maskSecretOutputs(programOutputs, resolved ?? {}) };
}

/** Turns the wire form of inputs back into plain values: secrets masked, references as ids, assets named. */
function decode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  switch (record[SIG_KEY]) {
    case undefined:
      return Object.fromEntries(Object.entries(record).map(([key, item]) => [key, decode(item)]));
    case SIGNATURES.secret:
      return SECRET_MASK;
    case SIGNATURES.resource:
      return record['id'] ?? record['urn'];
    case SIGNATURES.asset:
      return '[asset]';
    case SIGNATURES.archive:
      return '[archive]';
    case SIGNATURES.output:
      return record['secret'] === true ? SECRET_MASK : decode(record['value']);
    default:
      return '[unrecognised value]';
  }
}

/** Resolved stack outputs, with every output that carries a secret anywhere inside masked. */
async function maskSecretOutputs(program: Record<string, unknown>, resolved: Record<string, unknown>): Promise<Record<string, unknown>> {
  const masked: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resolved)) {
    masked[key] = (await containsSecret(program[key])) ? SECRET_MASK : value;
  }
  return masked;
}

async function containsSecret(value: unknown): Promise<boolean> {
  if (pulumi.Output.isInstance(value)) return pulumi.isSecret(value);
  if (Array.isArray(value)) return (await Promise.all(value.map(containsSecret))).some(Boolean);
  if (typeof value === 'object' && value !== null) return (await Promise.all(Object.values(value).map(containsSecret))).some(Boolean);
  return false;
}
