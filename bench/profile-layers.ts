import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `npx tsx bench/profile-layers.ts [file.cpuprofile] [--all]`: where the API's CPU time goes, by layer.
 * Reads a V8 CPU profile (`npm run bench -- --only hot --profile` leaves one in .profiles/; without
 * an argument the newest there) and attributes each sample's self time to the layer of the frame
 * it was taken in, by the frame's script URL. A frame without a URL (a builtin such as
 * JSON.stringify or a native binding) is charged to the nearest caller that has one: the time
 * JSON.stringify spends for winston is logging's.
 */

interface CallFrame {
  functionName: string;
  url: string;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Layers in the order the table prints them; the first rule that matches a URL wins. */
const URL_LAYERS: [layer: string, pattern: RegExp][] = [
  ['api: audit (access records, sequencer)', /\/api\/audit\//],
  ['api: auth (tokens, sessions) + jsonwebtoken', /\/api\/auth\/|\/node_modules\/(jsonwebtoken|jws|jwa)\//],
  ['api: rate limits', /\/api\/ratelimit\//],
  ['api: logging + winston', /\/api\/logger\.[jt]s|\/node_modules\/(winston|winston-transport|logform|triple-beam|safe-stable-stringify|fast-safe-stringify|@colors|colors)\//],
  ['api: middleware, routes, records, http', /\/api\//],
  ['koa + router', /\/node_modules\/(koa|@koa|koa-compose|koa-ratelimit|path-to-regexp|http-errors|statuses|on-finished|content-type|type-is|mime-types|accepts|negotiator|vary|cookies|keygrip|delegates|depd|fresh|encodeurl|escape-html|destroy)\//],
  ['mikro-orm + kysely', /\/node_modules\/(@mikro-orm|kysely|dataloader|reflect-metadata)\//],
  ['pg driver', /\/node_modules\/(pg|pg-protocol|pg-pool|pg-types|pg-connection-string|postgres-array|postgres-date|postgres-interval|postgres-bytea|pgpass)\//],
  ['ioredis', /\/node_modules\/(ioredis|redis-parser|redis-errors|denque|cluster-key-slot|standard-as-callback)\//],
  ['opentelemetry', /\/node_modules\/@opentelemetry\//],
  ['tsx loader', /\/node_modules\/(tsx|esbuild|get-tsconfig)\//],
  ['other dependencies', /\/node_modules\//],
  ['node: socket writes and reads (net, streams)', /^node:(net|internal\/stream_base_commons|internal\/streams\/|stream)/],
  ['node: http (parser, headers)', /^node:(_http_|http|internal\/http)/],
  ['node: timers, promises, events, other internals', /^node:/],
];

export const IDLE = 'idle (waiting on I/O)';

/** V8's own pseudo-frames: not code, but where the process was when sampled. */
const PSEUDO_LAYERS = new Map([
  ['(garbage collector)', 'GC'],
  ['(idle)', IDLE],
  ['(program)', 'V8 (compiling, runtime outside JS)'],
  ['(root)', 'V8 (compiling, runtime outside JS)'],
]);

export const UNATTRIBUTED = 'native, no JS caller';

export function layerOfUrl(url: string): string | undefined {
  if (!url) return undefined;
  return URL_LAYERS.find(([, pattern]) => pattern.test(url))?.[0] ?? 'other (our scripts outside api/)';
}

/** A second of the profile counts as under load when the process was idle for less than this share of it. */
export const LOADED_IDLE_SHARE = 0.9;

/**
 * Self time (µs) per layer, over the seconds of the profile in which the process was under load
 * (idle under {@link LOADED_IDLE_SHARE} of the second): a bench run's API also sits idle through
 * start-up, sign-in and the baseline's turns, which would otherwise drown the table in idle time.
 * `allSeconds` counts the whole profile.
 */
export function timeByLayer(profile: CpuProfile, { allSeconds = false } = {}): { totals: Map<string, number>; seconds: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const layers = new Map<number, string>();
  const layerOf = (id: number): string => {
    const known = layers.get(id);
    if (known) return known;
    const frame = byId.get(id)!.callFrame;
    const parent = parentOf.get(id);
    const layer = PSEUDO_LAYERS.get(frame.functionName) ?? layerOfUrl(frame.url) ?? (parent === undefined ? UNATTRIBUTED : layerOf(parent));
    layers.set(id, layer);
    return layer;
  };
  // timeDeltas[i] is the time before sample i; the time until the next one is the better estimate of sample i's.
  const bySecond = new Map<number, Map<string, number>>();
  let at = 0;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    const micros = Math.max(profile.timeDeltas[i + 1] ?? 0, 0);
    const second = Math.floor(at / 1e6);
    const totals = bySecond.get(second) ?? new Map<string, number>();
    const layer = layerOf(id);
    totals.set(layer, (totals.get(layer) ?? 0) + micros);
    bySecond.set(second, totals);
  });
  const totals = new Map<string, number>();
  let seconds = 0;
  for (const second of bySecond.values()) {
    const all = [...second.values()].reduce((sum, micros) => sum + micros, 0);
    if (!allSeconds && (second.get(IDLE) ?? 0) >= LOADED_IDLE_SHARE * all) continue;
    seconds += 1;
    for (const [layer, micros] of second) totals.set(layer, (totals.get(layer) ?? 0) + micros);
  }
  return { totals, seconds };
}

/** The table, largest layer first, with each layer's share of the whole profile and of the busy (not idle) time. */
export function layerTable(totals: Map<string, number>): string {
  const all = [...totals.values()].reduce((sum, micros) => sum + micros, 0);
  const idle = totals.get(IDLE) ?? 0;
  const busy = all - idle;
  const rows = [...totals.entries()].sort((a, b) => b[1] - a[1]);
  const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');
  const lines = ['| layer | self time (ms) | of all | of busy |', '|---|---:|---:|---:|'];
  for (const [layer, micros] of rows) {
    lines.push(`| ${layer} | ${(micros / 1000).toFixed(0)} | ${pct(micros, all)} | ${layer === IDLE ? '' : pct(micros, busy)} |`);
  }
  lines.push(`| total | ${(all / 1000).toFixed(0)} | 100% | busy ${pct(busy, all)} |`);
  return lines.join('\n');
}

function newestProfile(directory: string): string {
  const files = readdirSync(directory).filter((name) => name.endsWith('.cpuprofile')).map((name) => join(directory, name));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${directory}: run npm run bench -- --only hot --profile`);
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const allSeconds = process.argv.includes('--all');
  const file = process.argv.slice(2).find((arg) => !arg.startsWith('--')) ?? newestProfile('.profiles');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { totals, seconds } = timeByLayer(profile, { allSeconds });
  const scope = allSeconds ? 'the whole profile' : `the ${seconds} s under load (idle under ${LOADED_IDLE_SHARE * 100}% of the second; --all for the whole profile)`;
  process.stdout.write(`${file}: ${scope}\n\n${layerTable(totals)}\n`);
}
