import assert from 'node:assert/strict';
import { IDLE, layerOfUrl, timeByLayer, type CpuProfile } from '../../bench/profile-layers.js';

const ROOT = 'file:///work/dms';
/** A profile whose samples are `[nodeId, µs]` pairs, one after another. */
function profileOf(nodes: CpuProfile['nodes'], samples: [number, number][]): CpuProfile {
  // timeDeltas[i] is the time before sample i: each sample's own time is the next delta.
  return { nodes, samples: samples.map(([id]) => id), timeDeltas: [0, ...samples.map(([, micros]) => micros)] };
}
const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url }, children });

describe('bench/profile-layers: a CPU profile\'s self time by layer', () => {
  it('names the layer of each script: ours by folder, dependencies by package, node by module', () => {
    assert.equal(layerOfUrl(`${ROOT}/api/audit/access.ts`), 'api: audit (access records, sequencer)');
    assert.equal(layerOfUrl(`${ROOT}/api/auth/tokens.ts`), 'api: auth (tokens, sessions) + jsonwebtoken');
    assert.equal(layerOfUrl(`${ROOT}/api/records/patients.ts`), 'api: middleware, routes, records, http');
    assert.equal(layerOfUrl(`${ROOT}/node_modules/@mikro-orm/core/EntityManager.js`), 'mikro-orm + kysely');
    assert.equal(layerOfUrl(`${ROOT}/node_modules/pg-protocol/dist/parser.js`), 'pg driver');
    assert.equal(layerOfUrl(`${ROOT}/node_modules/koa/lib/application.js`), 'koa + router');
    assert.equal(layerOfUrl('node:internal/stream_base_commons'), 'node: socket writes and reads (net, streams)');
    assert.equal(layerOfUrl('node:_http_outgoing'), 'node: http (parser, headers)');
    assert.equal(layerOfUrl(''), undefined);
  });

  it('charges a builtin to its nearest caller with a script, and GC and idle to their own', () => {
    const profile = profileOf([
      frame(1, '(root)', '', [2, 5, 6]),
      frame(2, 'log', `${ROOT}/node_modules/winston/lib/winston/logger.js`, [3]),
      frame(3, 'stringify', '', [4]),
      frame(4, 'writeUtf8String', ''),
      frame(5, '(garbage collector)', ''),
      frame(6, 'findOne', `${ROOT}/node_modules/@mikro-orm/core/EntityManager.js`),
    ], [[3, 300_000], [4, 200_000], [5, 100_000], [6, 400_000]]);
    const { totals, seconds } = timeByLayer(profile);
    assert.equal(seconds, 1);
    assert.deepEqual(Object.fromEntries(totals), { 'api: logging + winston': 500_000, GC: 100_000, 'mikro-orm + kysely': 400_000 });
  });

  it('counts only the seconds under load, unless asked for all of them', () => {
    const profile = profileOf([frame(1, '(root)', '', [2, 3]), frame(2, '(idle)', ''), frame(3, 'respond', `${ROOT}/node_modules/koa/lib/application.js`)], [
      [2, 1_000_000], // a second of waiting: start-up, or the baseline's turn
      [3, 600_000], [2, 400_000], // a second under load
    ]);
    assert.deepEqual(Object.fromEntries(timeByLayer(profile).totals), { 'koa + router': 600_000, [IDLE]: 400_000 });
    assert.equal(timeByLayer(profile, { allSeconds: true }).totals.get(IDLE), 1_400_000);
  });
});
