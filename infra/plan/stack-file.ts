/**
 * Reads `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to the program: a flat map of
 * `namespace:key` to values. `secure:` values cannot be decrypted offline; each is replaced by a
 * stand-in of the right shape and listed, so the plan says which values it did not see.
 */
import { load } from 'js-yaml';
import { existsSync, readFileSync } from 'node:fs';
import { REPO_ROOT } from '../service.js';

export { REPO_ROOT };

export interface StackFile {
  /** Config keys (`aws:region`, `dms:network`, ...) to their values. */
  config: Record<string, unknown>;
  /** Paths of `secure:` values replaced by offline stand-ins (`dms:monitoring.primaryOnCall.phone`). */
  standIns: string[];
}

/**
 * Stand-ins by the name of the secret's key (reserved example values, nobody's real data);
 * anything else becomes an opaque string.
 */
const STAND_INS: Readonly<Record<string, string>> = {
  phone: '+15550100000',
  name: 'Offline Stand-in',
  email: 'oncall@example.com',
  url: 'https://paging.example.com/v2/enqueue',
};

export function loadStackFile(stack: string, root = REPO_ROOT): StackFile {
  const path = `${root}/Pulumi.${stack}.yaml`;
  if (!/^[a-z][a-z0-9-]*$/.test(stack) || !existsSync(path)) {
    throw new Error(`no stack file Pulumi.${stack}.yaml in ${root}`);
  }
  const document = load(readFileSync(path, 'utf8'), { filename: path });
  const config = (isRecord(document) && isRecord(document['config']) ? document['config'] : {}) as Record<string, unknown>;
  const standIns: string[] = [];
  const decode = (value: unknown, path: string, leaf: string): unknown => {
    if (isRecord(value) && typeof value['secure'] === 'string' && Object.keys(value).length === 1) {
      standIns.push(path);
      return STAND_INS[leaf] ?? 'offline-plan-stand-in';
    }
    if (Array.isArray(value)) return value.map((item, index) => decode(item, `${path}[${index}]`, leaf));
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, decode(item, `${path}.${key}`, key)]));
    return value;
  };
  return { config: Object.fromEntries(Object.entries(config).map(([key, value]) => [key, decode(value, key, key)])), standIns };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
