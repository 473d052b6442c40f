import type { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { AuditRetentionError, exportAudit, purgeAudit, verifyWithExports } from './audit/exports.js';
import { accessesToPatient, heavyUsers, heavyUsersQuery, patientsSeenBy, windowOf } from './audit/accesses.js';
import { verifyDatabaseChain } from './audit/verify.js';
import { HttpError } from './http/errors.js';
import { MAX_LIMIT } from './http/pagination.js';
import { accepted, uuid } from './http/validation.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { APP_ROLE, EXPORTER_ROLE, appPasswordProblem, ensureLoginRole } from './db/app-role.js';
import { migrations } from './db/migrations/index.js';
import { createOrm, migrate, type Orm } from './db/orm.js';
import { createLogger, type Logger } from './logger.js';
import { createStorage, type Storage } from './storage/s3.js';

/**
 * One-off commands (`node dist/api/cli.js <command>`, `npm run <command>`): each prints exactly one
 * JSON line on stdout (`ok` says whether it succeeded, and the exit code agrees) and logs to stderr.
 */
interface CommandContext {
  orm: Orm;
  config: Config;
  env: Record<string, string | undefined>;
  flags: string[];
  log: Logger;
  storage: Storage;
}

type Result = { ok: boolean } & Record<string, unknown>;

/** Tables whose row counts the DR drill compares with the source. */
const COUNTED_TABLES = ['users', 'patients', 'visits', 'xrays', 'prescriptions', 'medicines', 'rx_presets', 'audit_logs', 'audit_exports'] as const;

export const COMMANDS: Record<string, (context: CommandContext) => Promise<Result>> = {
  /**
   * Runs as the database owner; with DB_APP_PASSWORD it also creates or updates the API's login
   * role, and with DB_EXPORTER_PASSWORD the audit exporter's (the only role that may record exports and purge).
   */
  async migrate({ orm, env, log }) {
    const logins = [
      { variable: 'DB_APP_PASSWORD', role: APP_ROLE, group: 'dms_api' },
      { variable: 'DB_EXPORTER_PASSWORD', role: EXPORTER_ROLE, group: 'dms_audit_exporter' },
    ] as const;
    const given = logins.flatMap((login) => {
      const password = env[login.variable];
      if (password === undefined) return [];
      const problem = appPasswordProblem(password);
      if (problem) throw new ConfigError(login.variable, problem);
      return [{ ...login, password }];
    });
    const applied = await migrate(orm);
    for (const login of given) await ensureLoginRole(orm.em.fork(), login);
    const rolesUpdated = given.map((login) => login.role);
    log.info('migrations_applied', { migrations: applied, appRoleUpdated: rolesUpdated.includes(APP_ROLE), rolesUpdated });
    return { ok: true, applied, appRoleUpdated: rolesUpdated.includes(APP_ROLE), rolesUpdated };
  },

  /**
   * The rows in the database, as `GET /admin/audit/verify` checks them (the service's credentials
   * suffice); `--with-exports`: the chain from genesis, every export file in the bucket first.
   */
  async 'audit:verify'({ orm, flags, storage, log }) {
    const em = orm.em.fork();
    const report = flags.includes('--with-exports') ? await verifyWithExports(em, storage) : await verifyDatabaseChain(em);
    if (!report.ok) log.error('audit_chain_broken', { firstBroken: report.firstBroken, checked: report.checked });
    return { ...report };
  },

  async 'audit:export'({ orm, storage }) {
    return { ok: true, ...(await exportAudit(orm.em.fork(), storage)) };
  },

  async 'audit:purge'({ orm, storage, config }) {
    return { ok: true, hotDays: config.auditHotDays, ...(await purgeAudit(orm.em.fork(), storage, config.auditHotDays)) };
  },

  /**
   * The access records' questions, as `GET /admin/audit/accesses/…` answers them, every page:
   * `--patient=<id>` (every access to a patient), `--user=<id>` (every patient a user saw, by kind)
   * or `--min-patients=<n>` (users above n distinct patients), each with `--from=` and `--to=`.
   */
  async 'audit:accesses'({ orm, flags }) {
    const values = Object.fromEntries(flags.map((flag) => flag.replace(/^--/, '').split(/=(.*)/s).slice(0, 2)));
    const asked = ['patient', 'user', 'min-patients'].filter((name) => values[name] !== undefined);
    if (asked.length !== 1) return { ok: false, error: 'usage', message: 'give exactly one of --patient=, --user=, --min-patients=' };
    const em = orm.em.fork();
    try {
      if (values['min-patients'] !== undefined) {
        const question = heavyUsersQuery({ from: values.from, to: values.to, minPatients: values['min-patients'] });
        return { ok: true, users: await heavyUsers(em, question.window, question.minPatients) };
      }
      const window = windowOf({ from: values.from, to: values.to });
      const id = accepted(uuid(), values.patient ?? values.user);
      if (!id) return { ok: false, error: 'usage', fields: { [asked[0]!]: 'must be a UUID' } };
      const items: unknown[] = [];
      for (let cursor: unknown = undefined, first = true; first || cursor; first = false) {
        const page = values.patient
          ? await accessesToPatient(em, id, window, { limit: MAX_LIMIT, ...(cursor ? { after: cursor as { occurredAt: Date; id: string } } : {}) })
          : await patientsSeenBy(em, id, window, { limit: MAX_LIMIT, ...(cursor ? { after: cursor as string } : {}) });
        items.push(...page.items);
        const last = page.items.at(-1) as { occurredAt?: string; id?: string; patientId?: string } | undefined;
        cursor = page.nextCursor && last ? (values.patient ? { occurredAt: new Date(last.occurredAt!), id: last.id! } : last.patientId) : undefined;
      }
      return { ok: true, [values.patient ? 'accesses' : 'patients']: items };
    } catch (error) {
      if (error instanceof HttpError) return { ok: false, error: 'usage', ...error.details };
      throw error;
    }
  },

  /** After a restore: every table answers, the audit chain holds, and there is someone to sign in. */
  async 'drill:verify'({ orm }) {
    const em = orm.em.fork();
    const counts: Record<string, number> = {};
    for (const table of COUNTED_TABLES) {
      const [row] = await em.execute<{ n: string }[]>(`select count(*)::text as n from ${table}`);
      counts[table] = Number(row!.n);
    }
    const applied = new Set((await em.execute<{ name: string }[]>('select name from schema_migrations')).map((row) => row.name));
    const pendingMigrations = migrations.map((m) => m.name).filter((name) => !applied.has(name));
    const audit = await verifyDatabaseChain(em);
    return { ok: audit.ok && counts.users! > 0, counts, audit, pendingMigrations };
  },
};

/**
 * The DR drill's restored copy keeps the app role's password of its restore point, so after a
 * password rotation `drill:verify` could not sign in as dms_app at all. The drill (`npm run ops --
 * dr-drill`) sets the copy's master password to today's app password, the one this task gets as
 * PGPASSWORD, and names the master user in DRILL_APP_ROLE_RESET_BY: through it dms_app gets that
 * password back before verify signs in as dms_app. The task holds only the app password.
 */
async function resetDrillAppRole({ config, env, log }: Pick<CommandContext, 'config' | 'env' | 'log'>): Promise<Record<string, unknown>> {
  const resetBy = env.DRILL_APP_ROLE_RESET_BY;
  if (!resetBy) return {};
  const url = new URL(config.databaseUrl ?? '');
  const password = decodeURIComponent(url.password) || env.PGPASSWORD;
  if (!password) throw new ConfigError('PGPASSWORD', 'is required with DRILL_APP_ROLE_RESET_BY');
  const problem = appPasswordProblem(password);
  if (problem) throw new ConfigError('PGPASSWORD', problem);
  if (decodeURIComponent(url.username) !== APP_ROLE) throw new ConfigError('DATABASE_URL', `must sign in as ${APP_ROLE} when DRILL_APP_ROLE_RESET_BY is set`);
  url.username = resetBy;
  url.password = password;
  const master = await createOrm({ databaseUrl: url.toString(), replicaUrls: [], log, poolMax: 1 });
  try {
    await ensureLoginRole(master.em.fork(), { role: APP_ROLE, group: 'dms_api', password });
  } finally {
    await master.close();
  }
  return { appRolePasswordReset: { role: APP_ROLE, by: resetBy } };
}

/** What a command does before its own connection opens (that connection could not sign in without it). */
const BEFORE_CONNECT: Record<string, typeof resetDrillAppRole> = { 'drill:verify': resetDrillAppRole };

/** The flags each command accepts; any other is refused rather than silently ignored. */
const FLAGS: Record<string, readonly string[]> = {
  'audit:verify': ['--with-exports'],
  'audit:accesses': ['--patient=', '--user=', '--min-patients=', '--from=', '--to='],
};
/** A flag as given (`--with-exports`), or one that takes a value (`--from=…`). */
const knownFlag = (command: string | undefined, flag: string) => (FLAGS[command ?? ''] ?? []).some((known) => (known.endsWith('=') ? flag.startsWith(known) : flag === known));

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Config fields no variable expresses (e.g. the credentials of a test S3 server). */
  overrides?: Partial<Config>;
  stdout?: Writable;
  stderr?: Writable;
}

/** Runs one command; resolves to the process exit code. */
export async function runCommand([command, ...flags]: string[], { env = process.env, overrides = {}, stdout = process.stdout, stderr = process.stderr }: RunOptions = {}): Promise<number> {
  const print = (result: Result) => stdout.write(`${JSON.stringify({ command, ...result })}\n`);
  const run = command === undefined ? undefined : COMMANDS[command];
  const unknownFlag = flags.find((flag) => !knownFlag(command, flag));
  if (!run || unknownFlag) {
    stderr.write(`usage: cli.js <${Object.keys(COMMANDS).join('|')}> (audit:verify takes --with-exports; audit:accesses one of --patient=<id>, --user=<id>, --min-patients=<n>, with --from= and --to=)${unknownFlag ? `; unknown flag ${unknownFlag}` : ''}\n`);
    return 2;
  }
  let config: Config;
  try {
    config = { ...loadConfig(env, 'cli'), ...overrides };
    if (!config.databaseUrl) throw new ConfigError('DATABASE_URL', `is required for ${command}`);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    stderr.write(`dms-cli: configuration error: ${error.message}\n`);
    print({ ok: false, error: 'configuration', variable: error.variable });
    return 1;
  }
  const log = createLogger({ level: config.logLevel, env: config.env, service: 'dms-cli', stream: stderr });
  const storage = createStorage(config);
  let orm: Orm | undefined;
  try {
    const prepared = await (BEFORE_CONNECT[command]?.({ config, env, log }) ?? {});
    orm = await createOrm({ databaseUrl: config.databaseUrl, replicaUrls: [], log, poolMax: 4 });
    const result = await run({ orm, config, env, flags, log, storage });
    print({ ...result, ...prepared });
    return result.ok ? 0 : 1;
  } catch (error) {
    const known = error instanceof AuditRetentionError || error instanceof ConfigError;
    log.error(known ? 'command_refused' : 'command_failed', { command, errorName: error instanceof Error ? error.name : typeof error, errorMessage: error instanceof Error ? error.message : undefined });
    print({ ok: false, error: known ? (error as Error).message : 'failed; see the log' });
    return 1;
  } finally {
    storage.client.destroy();
    await orm?.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runCommand(process.argv.slice(2));
}
