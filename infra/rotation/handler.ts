/**
 * The rotation functions' entry point (bundled by `bundle.ts`): one function per secret, told by
 * ROTATION_KIND which strategy it runs and by the other variables what it rotates. AWS SDK v3 comes
 * with the Node.js 22 runtime; pg and ioredis are bundled.
 */
import { ECSClient, UpdateServiceCommand, waitUntilServicesStable } from '@aws-sdk/client-ecs';
import { ElastiCacheClient, ModifyReplicationGroupCommand, waitUntilReplicationGroupAvailable } from '@aws-sdk/client-elasticache';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Redis } from 'ioredis';
import pg from 'pg';
import { databaseLoginRotation, type Queryable } from './db-login.js';
import { jwtKeysRotation } from './jwt-keys.js';
import { rotate, RotationError, type RotationEvent, type RotationStrategy } from './protocol.js';
import { redisAuthRotation } from './redis-auth.js';

export const ROTATION_KINDS = ['db-login', 'jwt-keys', 'redis-auth'] as const;
export type RotationKind = (typeof ROTATION_KINDS)[number];

/** Seconds kept back from a wait for the rest of the step and its log line. */
const WAIT_MARGIN_S = 60;

interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

function variable(name: string): string {
  const value = process.env[name];
  if (!value) throw new RotationError(`the rotation function has no ${name}`);
  return value;
}

const waitSeconds = (context: LambdaContext) => Math.max(30, Math.floor(context.getRemainingTimeInMillis() / 1000) - WAIT_MARGIN_S);

function serviceRedeploy(ecs: ECSClient, context: LambdaContext, settle: boolean): () => Promise<void> {
  return async () => {
    const cluster = variable('CLUSTER');
    const service = variable('SERVICE');
    await ecs.send(new UpdateServiceCommand({ cluster, service, forceNewDeployment: true }));
    // Stable: one deployment left, at its desired count (the old tasks are gone).
    if (settle) await waitUntilServicesStable({ client: ecs, maxWaitTime: waitSeconds(context), minDelay: 15, maxDelay: 30 }, { cluster, services: [service] });
  };
}

/** pg with TLS verified against the RDS CA (NODE_EXTRA_CA_CERTS=/var/runtime/ca-cert.pem in the function). */
async function connectDatabase(user: string, password: string): Promise<Queryable> {
  const host = variable('DB_HOST');
  const client = new pg.Client({ host, port: Number(variable('DB_PORT')), database: variable('DB_NAME'), user, password, ssl: { rejectUnauthorized: true, servername: host }, connectionTimeoutMillis: 10_000 });
  await client.connect();
  return client;
}

async function pingRedis(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 10_000, retryStrategy: () => null });
  // A refused connection rejects connect(); without a listener ioredis would also report it as unhandled.
  client.on('error', () => {});
  try {
    await client.connect();
    const answer = await client.ping();
    if (answer !== 'PONG') throw new RotationError(`the cache answered PING with ${answer}`);
  } finally {
    client.disconnect();
  }
}

function strategyFor(kind: RotationKind, secrets: SecretsManagerClient, context: LambdaContext): RotationStrategy {
  const ecs = new ECSClient({});
  switch (kind) {
    case 'db-login': {
      const role = variable('DB_ROLE');
      if (role !== 'dms_app' && role !== 'dms_audit_export') throw new RotationError(`DB_ROLE ${role} is not a login role of the program`);
      return databaseLoginRotation({
        role,
        async master() {
          const answer = await secrets.send(new GetSecretValueCommand({ SecretId: variable('MASTER_SECRET_ARN') }));
          const { username, password } = JSON.parse(answer.SecretString ?? '{}') as { username?: string; password?: string };
          if (!username || !password) throw new RotationError('the master user secret holds no username and password');
          return { username, password };
        },
        connect: connectDatabase,
        ...(process.env['SERVICE'] ? { redeploy: serviceRedeploy(ecs, context, false) } : {}),
      });
    }
    case 'jwt-keys':
      return jwtKeysRotation({ now: () => new Date(), redeploy: serviceRedeploy(ecs, context, false) });
    case 'redis-auth': {
      const elasticache = new ElastiCacheClient({});
      const ReplicationGroupId = variable('REPLICATION_GROUP_ID');
      return redisAuthRotation({
        async modifyAuthToken(AuthToken, AuthTokenUpdateStrategy) {
          await elasticache.send(new ModifyReplicationGroupCommand({ ReplicationGroupId, AuthToken, AuthTokenUpdateStrategy, ApplyImmediately: true }));
        },
        async waitAvailable() {
          await waitUntilReplicationGroupAvailable({ client: elasticache, maxWaitTime: waitSeconds(context), minDelay: 15, maxDelay: 30 }, { ReplicationGroupId });
        },
        ping: pingRedis,
        redeployAndSettle: serviceRedeploy(ecs, context, true),
      });
    }
  }
}

export async function handler(event: RotationEvent, context: LambdaContext): Promise<void> {
  const kind = variable('ROTATION_KIND');
  if (!(ROTATION_KINDS as readonly string[]).includes(kind)) throw new RotationError(`ROTATION_KIND ${kind} is not one of ${ROTATION_KINDS.join(', ')}`);
  const secrets = new SecretsManagerClient({});
  await rotate(secrets, event, strategyFor(kind as RotationKind, secrets, context), (fields) => console.log(JSON.stringify({ rotation: kind, ...fields })));
}
