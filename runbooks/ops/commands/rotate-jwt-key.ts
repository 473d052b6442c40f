import { GetSecretValueCommand, PutSecretValueCommand, UpdateSecretVersionStageCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ECSClient } from '@aws-sdk/client-ecs';
import { awsErrorName } from '../lib/aws.js';
import { defineCommand } from '../lib/command.js';
import { dryRunOption, sendChange } from '../lib/dry-run.js';
import type { OpsContext } from '../lib/context.js';
import { deployAndSettle, rolloutTimeoutMs, timeoutOption, type ServiceRef } from '../lib/ecs.js';
import { OpsError } from '../lib/errors.js';
import { loadOutputs, requireOutputs } from '../lib/outputs.js';
import { Progress, printSummary, type SummaryRow } from '../lib/report.js';
import { formatDuration, isoSeconds, parseDuration } from '../lib/time.js';
import { HMAC_SECRET_BYTES, keyAddedAt, newHmacKey, parseKeyList, stagedKey, type JwtKeyEntry } from '../../../infra/rotation/jwt-keys.js';
import { RotationError } from '../../../infra/rotation/protocol.js';

/**
 * A new key list is written under this label, not as AWSCURRENT, then made current with
 * UpdateSecretVersionStage naming the version read: that call fails when AWSCURRENT is attached to
 * another version (API reference, UpdateSecretVersionStage, RemoveFromVersionId:
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html),
 * so a concurrent rotation or hand edit makes this one fail instead of silently losing a key.
 */
export const ROTATION_VERSION_STAGE = 'DMS_JWT_ROTATION';
/** What Secrets Manager answers UpdateSecretVersionStage when RemoveFromVersionId no longer holds the label. */
const STALE_VERSION_ERRORS = new Set(['InvalidParameterException', 'InvalidRequestException']);

function parseKeys(secretString: string | undefined, secretArn: string): JwtKeyEntry[] {
  try {
    return parseKeyList(secretString ?? '');
  } catch (error) {
    // The value itself is never quoted: it is the signing secret.
    if (error instanceof RotationError) throw new OpsError(`secret ${secretArn}: ${error.message}; fix it by hand before rotating`);
    throw error;
  }
}

function describeKeys(keys: readonly JwtKeyEntry[]): string {
  return keys.map((key, index) => `${key.kid} (${key.alg}, ${index === 0 ? 'signs' : 'verifies'}${key.createdAt ? `, added ${key.createdAt}` : ''})`).join('; ');
}

interface Rotation {
  ctx: OpsContext;
  progress: Progress;
  secrets: SecretsManagerClient;
  secretArn: string;
  ecs: ECSClient;
  ref: ServiceRef;
  timeoutMs: number;
  dryRun: boolean;
  /** The AWSCURRENT version this rotation last read or wrote: the compare of compare-and-set. */
  versionId: string;
}

/**
 * Writes the key list as a new version and makes it current only if the current version is still
 * the one this rotation knows (compare-and-set), then redeploys so every task reads it at start.
 */
async function publish(rotation: Rotation, keys: readonly JwtKeyEntry[], why: string): Promise<void> {
  const { ctx, secrets, secretArn, dryRun } = rotation;
  rotation.progress.step(`writing ${keys.length} key(s) to ${secretArn}: ${why}`);
  const put = await sendChange(ctx, dryRun, {
    service: 'secretsmanager',
    command: new PutSecretValueCommand({ SecretId: secretArn, SecretString: JSON.stringify(keys), VersionStages: [ROTATION_VERSION_STAGE] }),
    shown: { SecretId: secretArn, SecretString: `<${describeKeys(keys)}; key material not shown>`, VersionStages: [ROTATION_VERSION_STAGE] },
    send: (command) => secrets.send(command),
    note: why,
  });
  if (put && !put.response.VersionId) throw new OpsError(`PutSecretValue on ${secretArn} returned no VersionId`);
  const written = put?.response.VersionId ?? '<VersionId that PutSecretValue returns>';
  try {
    await sendChange(ctx, dryRun, {
      service: 'secretsmanager',
      command: new UpdateSecretVersionStageCommand({ SecretId: secretArn, VersionStage: 'AWSCURRENT', MoveToVersionId: written, RemoveFromVersionId: rotation.versionId }),
      send: (command) => secrets.send(command),
      note: `make it current only if AWSCURRENT is still ${rotation.versionId}`,
    });
  } catch (error) {
    if (!STALE_VERSION_ERRORS.has(awsErrorName(error) ?? '')) throw error;
    throw new OpsError(
      `${secretArn} changed while this rotation ran (AWSCURRENT is no longer version ${rotation.versionId}): another rotation or a hand edit. ` +
        `Nothing was made current and no key was dropped; run rotate-jwt-key again, it starts from the keys now current`,
    );
  }
  rotation.versionId = written;
  await deployAndSettle(ctx, rotation.progress, rotation.ecs, rotation.ref, { forceNewDeployment: true }, rotation.timeoutMs, dryRun);
}

async function introduceKey(rotation: Rotation, keys: JwtKeyEntry[]): Promise<SummaryRow[]> {
  const resumed = stagedKey(keys);
  const key = resumed ?? newHmacKey(rotation.ctx.clock.now(), keys);
  if (resumed) {
    rotation.progress.step(`key ${key.kid} was staged by an interrupted rotation; promoting it`);
  } else {
    // Stage first: every task must verify the new key before any task signs with it, or a token
    // issued by a new task is refused by an old one while the deployment rolls.
    await publish(rotation, [...keys, key], `stage ${key.kid} (verifies only)`);
  }
  const promoted = [key, ...keys.filter((existing) => existing.kid !== key.kid)];
  await publish(rotation, promoted, `promote ${key.kid} to signing key`);
  return [
    ['service', `${rotation.ref.service} (cluster ${rotation.ref.cluster}) ${resumed ? 'redeployed (key was already staged)' : 'redeployed twice (stage, promote)'}`],
    ['phase', '1 of 2: new key signs, previous keys still verify'],
    ['new key', `${key.kid} (HS256, ${HMAC_SECRET_BYTES} random bytes; value not shown)`],
    ['keys now', describeKeys(promoted)],
    ['next', 'after the longest token lifetime (default 24h): npm run ops -- rotate-jwt-key --retire-previous'],
  ];
}

async function retirePrevious(rotation: Rotation, keys: JwtKeyEntry[], minAgeMs: number): Promise<SummaryRow[] | undefined> {
  const [signing] = keys;
  if (!signing || keys.length === 1) return undefined;
  if (stagedKey(keys)) throw new OpsError(`key ${keys.at(-1)?.kid} is staged but not signing yet: run rotate-jwt-key (without --retire-previous) to finish phase 1`);
  const added = keyAddedAt(signing);
  if (!added && minAgeMs > 0) {
    throw new OpsError(`cannot tell when ${signing.kid} was added (no createdAt, kid not k-yyyymmdd-…); once the longest token lifetime has passed, pass --min-age 0`);
  }
  const age = added ? rotation.ctx.clock.now().getTime() - added.getTime() : Infinity;
  if (added && age < minAgeMs) {
    throw new OpsError(
      `${signing.kid} has signed for ${formatDuration(Math.max(age, 0))}, less than --min-age ${formatDuration(minAgeMs)}: tokens of the previous key may still be live; retire after ${isoSeconds(new Date(added.getTime() + minAgeMs))}`,
    );
  }
  await publish(rotation, [signing], `retire ${keys.slice(1).map((key) => key.kid).join(', ')}`);
  return [
    ['service', `${rotation.ref.service} (cluster ${rotation.ref.cluster}) redeployed`],
    ['phase', '2 of 2: previous keys retired'],
    ['retired', keys.slice(1).map((key) => key.kid).join(', ')],
    ['keys now', describeKeys([signing])],
  ];
}

export const rotateJwtKey = defineCommand({
  name: 'rotate-jwt-key',
  summary: 'two-phase rotation of the API token signing key (Secrets Manager JWT_KEYS, then redeploy)',
  options: {
    'retire-previous': { type: 'boolean', description: 'phase 2: keep only the signing key, once old tokens have expired' },
    'min-age': { type: 'string', valueName: 'duration', description: 'phase 2 refuses until the signing key is this old: the longest token lifetime (default 24h)' },
    timeout: timeoutOption,
    'dry-run': dryRunOption,
  },
  details: [
    'Each key list is written as a new secret version (label DMS_JWT_ROTATION) and made AWSCURRENT only if the',
    'version this run read is still current (UpdateSecretVersionStage with RemoveFromVersionId): a concurrent',
    'rotation or hand edit makes it fail loudly (exit 1) instead of dropping a key.',
    'Phase 1 generates an HS256 key (32 random bytes, base64url, kid k-<yyyymmdd>-<random>, createdAt), adds it as a',
    'verify-only key and redeploys, then makes it the signing key (first in the list) and redeploys again, so no task',
    'ever meets a token signed by a key it does not know. Previous keys keep verifying. An interrupted phase 1 resumes.',
    'Phase 2 (--retire-previous) keeps only the signing key and redeploys, refusing while it is younger than --min-age.',
    'No key material is ever printed. Example: npm run ops -- rotate-jwt-key --stack production',
  ],
  async run({ options }, ctx) {
    const minAgeMs = parseDuration(options['min-age'] ?? '24h', 'min-age');
    const timeoutMs = rolloutTimeoutMs(options.timeout);
    const outputs = requireOutputs(await loadOutputs(options.stack, options.outputs, ctx), ['region', 'jwtKeysSecretArn', 'clusterName', 'serviceName']);
    const clients = ctx.aws(outputs.region);
    const progress = new Progress(ctx);
    progress.step(`reading ${outputs.jwtKeysSecretArn}`);
    const current = await clients.secrets().send(new GetSecretValueCommand({ SecretId: outputs.jwtKeysSecretArn }));
    const keys = parseKeys(current.SecretString, outputs.jwtKeysSecretArn);
    if (!current.VersionId) throw new OpsError(`GetSecretValue of ${outputs.jwtKeysSecretArn} returned no VersionId`);
    const rotation: Rotation = {
      ctx,
      progress,
      secrets: clients.secrets(),
      secretArn: outputs.jwtKeysSecretArn,
      ecs: clients.ecs(),
      ref: { cluster: outputs.clusterName, service: outputs.serviceName },
      timeoutMs,
      dryRun: options['dry-run'],
      versionId: current.VersionId,
    };
    const rows = options['retire-previous'] ? await retirePrevious(rotation, keys, minAgeMs) : await introduceKey(rotation, keys);
    printSummary(ctx, `rotate-jwt-key: ${options.stack}`, [
      ['secret', outputs.jwtKeysSecretArn],
      ...(rows ?? [['result', `only ${keys[0]?.kid} is left; nothing to retire, no change made`] as const]),
      ...(rows && rotation.dryRun ? [['dry run', 'the calls above were printed, none was sent'] as const] : []),
    ]);
    return 0;
  },
});
