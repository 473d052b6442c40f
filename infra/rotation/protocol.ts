/**
 * The Secrets Manager rotation protocol every rotation function of the stack follows: Secrets Manager
 * invokes the function four times per rotation (createSecret, setSecret, testSecret, finishSecret)
 * with the version id of the new value; what each step does to the resource is the strategy's
 * (`db-login.ts`, `jwt-keys.ts`, `redis-auth.ts`), the bookkeeping around it is here.
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html
 */
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  UpdateSecretVersionStageCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';

export const ROTATION_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

/** What Secrets Manager sends the function (RotationToken is only for cross-account rotation). */
export interface RotationEvent {
  SecretId: string;
  ClientRequestToken: string;
  Step: RotationStep;
}

/** The current value and when that version was written (some strategies decide by its age). */
export interface CurrentValue {
  value: string;
  createdAt: Date;
}

/** What one kind of secret does at each step; every value passed in and out is the secret string. */
export interface RotationStrategy {
  /** The next value. Must not touch the resource: a failed rotation leaves only an unused AWSPENDING version. */
  create(current: CurrentValue): Promise<string> | string;
  /** Makes the resource accept the pending value. */
  set(pending: string, current: string): Promise<void>;
  /** Proves the pending value works against the resource, as its users will use it. */
  test(pending: string): Promise<void>;
  /**
   * Runs after the pending value became AWSCURRENT (and again if a retried finishSecret finds it
   * already current): running consumers pick it up, the old value is retired where it can be.
   */
  finish(current: string): Promise<void>;
}

/** A refusal of the rotation with a reason an operator can act on (never containing a secret value). */
export class RotationError extends Error {
  override name = 'RotationError';
}

/** One JSON line per step: the secret's name and the step, never a value. */
export type RotationLog = (fields: Record<string, string>) => void;

export async function rotate(secrets: SecretsManagerClient, event: RotationEvent, strategy: RotationStrategy, log: RotationLog): Promise<void> {
  const { SecretId, ClientRequestToken: token, Step } = event;
  if (!(ROTATION_STEPS as readonly string[]).includes(Step)) throw new RotationError(`unknown rotation step ${String(Step)}`);
  const metadata = await secrets.send(new DescribeSecretCommand({ SecretId }));
  const name = metadata.Name ?? SecretId;
  if (!metadata.RotationEnabled) throw new RotationError(`${name}: rotation is not enabled`);
  const stages = metadata.VersionIdsToStages ?? {};
  const tokenStages = stages[token];
  if (!tokenStages) throw new RotationError(`${name}: version ${token} has no stage; this rotation was superseded`);
  const alreadyCurrent = tokenStages.includes('AWSCURRENT');
  if (!alreadyCurrent && !tokenStages.includes('AWSPENDING')) throw new RotationError(`${name}: version ${token} is not AWSPENDING`);
  if (alreadyCurrent && Step !== 'finishSecret') {
    log({ secret: name, step: Step, outcome: 'already current' });
    return;
  }

  const pending = async (): Promise<string> => {
    // By version id alone: finishSecret reads it after AWSCURRENT moved to it.
    const answer = await secrets.send(new GetSecretValueCommand({ SecretId, VersionId: token }));
    if (answer.SecretString === undefined) throw new RotationError(`${name}: version ${token} holds no string`);
    return answer.SecretString;
  };
  const current = async (): Promise<CurrentValue> => {
    const answer = await secrets.send(new GetSecretValueCommand({ SecretId, VersionStage: 'AWSCURRENT' }));
    if (answer.SecretString === undefined) throw new RotationError(`${name}: the current version holds no string`);
    return { value: answer.SecretString, createdAt: answer.CreatedDate ?? new Date(0) };
  };

  switch (Step) {
    case 'createSecret': {
      try {
        await secrets.send(new GetSecretValueCommand({ SecretId, VersionId: token, VersionStage: 'AWSPENDING' }));
        log({ secret: name, step: Step, outcome: 'pending value exists' });
        return;
      } catch (error) {
        if (!(error instanceof ResourceNotFoundException)) throw error;
      }
      const next = await strategy.create(await current());
      await secrets.send(new PutSecretValueCommand({ SecretId, ClientRequestToken: token, SecretString: next, VersionStages: ['AWSPENDING'] }));
      break;
    }
    case 'setSecret':
      await strategy.set(await pending(), (await current()).value);
      break;
    case 'testSecret':
      await strategy.test(await pending());
      break;
    case 'finishSecret': {
      if (!alreadyCurrent) {
        const currentVersion = Object.entries(stages).find(([, labels]) => labels.includes('AWSCURRENT'))?.[0];
        await secrets.send(
          new UpdateSecretVersionStageCommand({ SecretId, VersionStage: 'AWSCURRENT', MoveToVersionId: token, ...(currentVersion ? { RemoveFromVersionId: currentVersion } : {}) }),
        );
      }
      await strategy.finish(await pending());
      break;
    }
  }
  log({ secret: name, step: Step, outcome: 'done' });
}
