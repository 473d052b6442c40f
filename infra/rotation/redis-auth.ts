/**
 * Rotation of the Valkey AUTH token in REDIS_URL (`rediss://:<token>@<host>:6379`), with
 * ElastiCache's two-token overlap: setSecret adds the new token next to the old one (ROTATE), so
 * running tasks keep connecting with the old token and new tasks with the new one; finishSecret
 * redeploys the API, waits until no task of the old deployment is left, and only then keeps the new
 * token alone (SET).
 * https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth.html#auth-modifyng-token
 */
import { randomBytes } from 'node:crypto';
import { RotationError, type RotationStrategy } from './protocol.js';

export type AuthTokenUpdateStrategy = 'ROTATE' | 'SET';

export interface RedisAuthDeps {
  /** ModifyReplicationGroup with the token and strategy, applied immediately. */
  modifyAuthToken(token: string, strategy: AuthTokenUpdateStrategy): Promise<void>;
  /** Resolves once the replication group is `available` again (a token change is a modification). */
  waitAvailable(): Promise<void>;
  /** Connects with the URL (TLS, AUTH) and answers PING. */
  ping(url: string): Promise<void>;
  /** Forces a new deployment of the API and resolves when it is the only one left. */
  redeployAndSettle(): Promise<void>;
}

/**
 * 32 random bytes as hex: 64 characters, within ElastiCache's 16-128 printable characters and free
 * of the characters it refuses (`"`, `/`, `@`) and of any a URL would have to escape.
 */
export const newAuthToken = (): string => randomBytes(32).toString('hex');

function tokenOf(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RotationError('the Redis URL secret is not a URL');
  }
  if (url.protocol !== 'rediss:') throw new RotationError(`the Redis URL secret is ${url.protocol}//, not rediss:// (TLS)`);
  const token = decodeURIComponent(url.password);
  if (!token) throw new RotationError('the Redis URL secret holds no AUTH token');
  return token;
}

export function redisAuthRotation(deps: RedisAuthDeps): RotationStrategy {
  return {
    create(current) {
      tokenOf(current.value);
      const url = new URL(current.value);
      url.password = newAuthToken();
      return url.toString();
    },
    async set(pending) {
      await deps.waitAvailable();
      await deps.modifyAuthToken(tokenOf(pending), 'ROTATE');
      await deps.waitAvailable();
    },
    async test(pending) {
      tokenOf(pending);
      await deps.ping(pending);
    },
    async finish(current) {
      await deps.redeployAndSettle();
      await deps.modifyAuthToken(tokenOf(current), 'SET');
    },
  };
}
