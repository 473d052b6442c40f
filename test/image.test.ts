import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { migrateDatabase } from './support/api.js';
import {
  REPO, baseImage, buildContextFiles, envOf, execForm, instructionsOf, listFiles, materializeContext, parseDockerfile,
  parseDockerignore, readLockfile, setWritable, stageRunner, startImageProcess, within,
  type ImageProcess, type PerformedStage,
} from './support/image-stage.js';
import { APP_ROLE, createDatabase, eventually, freePort, sql } from './support/postgres.js';

/**
 * No Docker engine runs here, so the image is proven by its contents: the runtime stage is
 * performed in a scratch folder (the build context `.dockerignore` admits, the compile, the
 * production install from the lockfile) and the API is started from it, read-only and as the
 * image's user, against the real PostgreSQL.
 */

const stages = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
const runtimeStage = stages.at(-1)!;
const ignore = parseDockerignore(readFileSync(join(REPO, '.dockerignore'), 'utf8'));
const packageJson = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
const lockfile = readLockfile(REPO);
/** The Node release the tests run on: the `node` devDependency, standing in for the image's node. */
const nodeRelease = (JSON.parse(readFileSync(join(REPO, 'node_modules', 'node', 'package.json'), 'utf8')) as { version: string }).version;
const nodeBinary = realpathSync(join(REPO, 'node_modules', '.bin', 'node'));

const runtimeEnv = Object.assign({}, ...instructionsOf(stages, runtimeStage, 'ENV').map(envOf)) as Record<string, string>;
const only = (keyword: string) => {
  const found = instructionsOf(stages, runtimeStage, keyword);
  assert.ok(found.length, `the runtime stage has no ${keyword}`);
  return found.at(-1)!;
};
const command = execForm(only('CMD').args)!;
const healthcheck = execForm(only('HEALTHCHECK').args)!;
const imageUser = (() => {
  const [uid, gid = uid] = only('USER').args.split(':').map(Number);
  return { uid: uid!, gid: gid! };
})();
/** What `docker build` would send: derived from .dockerignore over the repo as it is now. */
const contextFiles = buildContextFiles(REPO, ignore);
/** The paths the stages COPY from the build context. */
const contextSources = stages
  .flatMap((stage) => stage.instructions)
  .filter((i) => i.keyword === 'COPY' && !i.flags.from)
  .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
const cliSourceExists = existsSync(join(REPO, 'api', 'cli.ts'));

const TYPESCRIPT_SOURCE = /\.[cm]?ts$/;
const TEST_FILE = /(^|\/)(test|tests|__tests__)\/|\.(test|spec)\.[cm]?[jt]s$/;

describe('the API image (Dockerfile, proven without a Docker engine)', function () {
  let scratch: string;
  let runtime: PerformedStage;
  /** Everything the runtime stage would hold under its WORKDIR. */
  let runtimeFiles: string[];

  before(async function () {
    this.timeout(120_000);
    scratch = mkdtempSync(join(tmpdir(), 'dms-image-'));
    // mkdtemp makes it private; the image's user must reach the stage folders, as in an image.
    chmodSync(scratch, 0o755);
    const context = join(scratch, 'context');
    materializeContext(REPO, contextFiles, context);
    runtime = await stageRunner(stages, context, join(scratch, 'stages')).perform(runtimeStage);
    runtimeFiles = listFiles(runtime.dir);
  });

  after(() => {
    if (!scratch) return;
    setWritable(scratch, true);
    rmSync(scratch, { recursive: true, force: true });
  });

  describe('its Dockerfile', () => {
    it('starts every stage from the official Node image, pinned to the exact release the tests run on, on Debian slim', () => {
      assert.equal(execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim(), `v${nodeRelease}`);
      for (const stage of stages) {
        // slim, not alpine: glibc as Node's official builds and the gnu prebuilds expect (docs/image.md).
        assert.match(baseImage(stages, stage), new RegExp(`^node:${nodeRelease.replaceAll('.', '\\.')}-[a-z]+-slim$`), stage.name);
      }
    });

    it('runs node itself (never npm) under an init, as the non-root node user by numeric UID', () => {
      assert.deepEqual(command, ['node', 'dist/api/main.js']);
      const init = execForm(only('ENTRYPOINT').args)!;
      assert.match(init[0]!, /\/(tini|dumb-init)$/);
      const initPackage = posix.basename(init[0]!);
      assert.ok(instructionsOf(stages, runtimeStage, 'RUN').some((run) => new RegExp(`install\\b.*\\b${initPackage}\\b`).test(run.args)), `the stage installs ${initPackage}`);
      assert.match(only('USER').args, /^\d+(:\d+)?$/, 'numeric, so the ECS task `user` can match it');
      assert.equal(imageUser.uid, 1000, 'the official image\'s `node` user');
      assert.notEqual(imageUser.gid, 0);
    });

    it('sets NODE_ENV=production and points NODE_EXTRA_CA_CERTS at the RDS CA bundle it adds, readable by that user', () => {
      assert.equal(runtimeEnv.NODE_ENV, 'production');
      assert.equal(runtimeEnv.NODE_EXTRA_CA_CERTS, '/app/certs/rds-global-bundle.pem');
      const bundle = instructionsOf(stages, runtimeStage, 'ADD').find((add) => add.args.endsWith(` ${runtimeEnv.NODE_EXTRA_CA_CERTS}`));
      assert.ok(bundle, 'an ADD writes the file NODE_EXTRA_CA_CERTS names');
      assert.match(bundle.args, /^https:\/\/truststore\.pki\.rds\.amazonaws\.com\/global\/global-bundle\.pem /);
      assert.ok(bundle.flags.chmod && (parseInt(bundle.flags.chmod, 8) & 0o004) !== 0, 'ADD --chmod lets a non-root user read it (ADD gives a fetched file 0600)');
    });

    it('bakes in no secret and no environment\'s configuration', () => {
      const secretOrPerEnvironment = /PASSWORD|SECRET|TOKEN|KEY|DATABASE_URL|DATABASE_REPLICA_URLS|REDIS_URL|BUCKET|AWS_/i;
      for (const stage of stages) {
        for (const i of stage.instructions.filter((x) => x.keyword === 'ENV' || x.keyword === 'ARG')) {
          const names = i.keyword === 'ENV' ? Object.keys(envOf(i)) : [i.args.split('=')[0]!];
          for (const name of names) assert.doesNotMatch(name, secretOrPerEnvironment, i.text);
        }
      }
      assert.ok(!contextFiles.some((file) => /(^|\/)\.env/.test(file)), 'no .env file in the build context');
    });

    it('installs without install scripts, and no production dependency needs one', () => {
      const installs = stages.flatMap((s) => s.instructions).filter((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
      assert.equal(installs.length, 2, 'one install per stage that needs node_modules');
      for (const install of installs) assert.match(install.args, /--ignore-scripts\b/, install.text);
      assert.ok(instructionsOf(stages, runtimeStage, 'RUN').some((i) => /\bnpm ci\b.*--omit=dev\b/.test(i.args)), 'the runtime stage omits dev dependencies');
      const productionScripts = Object.entries(lockfile).filter(([, entry]) => entry.hasInstallScript && !entry.dev && !entry.devOptional);
      assert.deepEqual(productionScripts.map(([path]) => path), [], 'these would need their install scripts: --ignore-scripts would break them');
    });
  });

  describe('its build context (.dockerignore)', () => {
    it('keeps .data/, .git, node_modules, dist, tests, infra/, runbooks/, docs, .env files and local files out', () => {
      const mustStayOut = [
        '.data/postgres/PG_VERSION', '.git/HEAD', 'node_modules/koa/package.json', 'dist/api/main.js', 'test/image.test.ts',
        'api/db/orm.test.ts', 'infra/index.ts', 'runbooks/README.md', 'docs/image.md', '.env', '.env.production',
        'api/.env.local', 'Pulumi.production.yaml', '.ci/run', 'bench/run.ts', '.snapshot-dms.json', 'id_rsa', 'coverage/lcov.info',
      ];
      for (const path of mustStayOut) assert.ok(ignore.excludes(path), `${path} reaches the build context`);
      for (const file of contextFiles) {
        assert.doesNotMatch(file, /^(\.data|\.git|node_modules|dist|test|infra|runbooks|docs)\//, file);
        assert.doesNotMatch(file, TEST_FILE, file);
      }
    });

    it('holds only what the stages COPY: the package files, the tsconfig files and api/', () => {
      for (const file of contextFiles) {
        assert.ok(contextSources.some((source) => file === source || file.startsWith(`${source}/`)), `${file} is in the context but no stage copies it`);
      }
      for (const source of contextSources) {
        assert.ok(contextFiles.some((file) => file === source || file.startsWith(`${source}/`)), `${source} is copied but not in the context`);
      }
      assert.ok(contextFiles.includes('api/main.ts'));
    });
  });

  describe('its runtime stage, performed in a scratch folder', () => {
    it('performs every step but two: fetching the RDS CA bundle (network) and installing tini (Debian); docker build does those', () => {
      assert.deepEqual(
        runtime.skipped.map(({ step }) => step.split(/\s+/)[0]),
        ['RUN', 'ADD'],
        runtime.skipped.map(({ step, reason }) => `${step}: ${reason}`).join('\n'),
      );
      assert.match(runtime.skipped[0]!.step, /apt-get install .*\btini\b/);
    });

    it('holds the compiled API, the production install and the package files, nothing else', () => {
      const topLevel = [...new Set(runtimeFiles.map((file) => file.split('/')[0]!))].sort();
      assert.deepEqual(topLevel, ['certs', 'dist', 'node_modules', 'package-lock.json', 'package.json']);
      const dist = runtimeFiles.filter((file) => file.startsWith('dist/'));
      for (const file of dist) assert.match(file, /^dist\/api\/.+\.(js|txt)$/, file);
      // Every module of api/ compiled, and its data files (the breached-password list) beside it:
      // the file list comes from the context, not from this test.
      const modules = contextFiles.filter((file) => file.startsWith('api/') && /\.ts$/.test(file) && !file.endsWith('.d.ts'));
      const data = contextFiles.filter((file) => file.startsWith('api/') && file.endsWith('.txt'));
      assert.ok(data.includes('api/auth/data/breached-passwords.txt'));
      assert.deepEqual(dist.map((file) => file.replace(/^dist\//, '')).sort(), [...modules.map((file) => file.replace(/\.ts$/, '.js')), ...data].sort());
    });

    it('holds no dev dependency, and every production package of the lockfile', () => {
      const installed = (path: string) => existsSync(join(runtime.dir, path));
      for (const name of Object.keys(packageJson.devDependencies)) {
        // Unless a production package needs it too (@types/co-body, of @koa/bodyparser, needs @types/node).
        const entry = lockfile[`node_modules/${name}`];
        if (entry && !entry.dev) continue;
        assert.ok(!installed(`node_modules/${name}`), `dev dependency ${name}`);
      }
      for (const [path, entry] of Object.entries(lockfile)) {
        if (!path) continue;
        if (entry.dev) assert.ok(!installed(path), `dev-only ${path}`);
        else if (!entry.optional && !entry.devOptional) assert.ok(installed(path), `production ${path} missing`);
      }
      const topPackages = readdirSync(join(runtime.dir, 'node_modules'))
        .filter((name) => !name.startsWith('.'))
        .flatMap((name) => (name.startsWith('@') ? readdirSync(join(runtime.dir, 'node_modules', name)).map((sub) => `${name}/${sub}`) : [name]));
      // Only the lockfile's production packages: no copy of this repository's code hides in there.
      for (const name of topPackages) {
        const entry = lockfile[`node_modules/${name}`];
        assert.ok(entry && !entry.dev, `node_modules/${name} is no production package of the lockfile`);
      }
    });

    it('holds no TypeScript source, no test, no .data/, infra/, runbooks/ or .env file of ours', () => {
      const ours = runtimeFiles.filter((file) => !file.startsWith('node_modules/'));
      for (const file of ours) {
        assert.doesNotMatch(file, TYPESCRIPT_SOURCE, file);
        assert.doesNotMatch(file, TEST_FILE, file);
        assert.doesNotMatch(file, /(^|\/)(\.data|infra|runbooks|\.git)\/|(^|\/)\.env/, file);
      }
      // Inside node_modules only the lockfile's production packages (checked above), whatever they
      // publish: pg-protocol ships its src/*.ts, never loaded.
    });
  });

  describe('the API started from the runtime stage: read-only, as the image user, against the real PostgreSQL', function () {
    this.timeout(60_000);
    let db: Awaited<ReturnType<typeof createDatabase>>;
    let port: number;
    let api: ImageProcess;
    let migration: ImageProcess | undefined;
    const secrets = { jwt: randomBytes(48).toString('base64url'), pgPassword: randomBytes(24).toString('base64url') };
    /** The contract's variables (CONTRACT §1) as the task definition sets them; NODE_ENV comes from the image. */
    const contractEnv = () => ({
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: db.appUrl,
      PGPASSWORD: secrets.pgPassword,
      AWS_REGION: 'eu-west-1',
      XRAY_BUCKET: 'dms-image-test-xrays',
      AUDIT_BUCKET: 'dms-image-test-audit',
      S3_KMS_KEY_ARN: 'arn:aws:kms:eu-west-1:123456789012:key/0b7a2f4e-93d1-4c55-9a0e-6f2d8c1b7e40',
      JWT_KEYS: JSON.stringify([{ kid: 'image-test', alg: 'HS256', secret: secrets.jwt }]),
      TRUST_PROXY_HOPS: '1',
      PRESIGN_TTL_S: '90',
      LOG_LEVEL: 'info',
    });
    /** The image's ENV, its paths moved to where the scratch folder holds them. */
    const imageEnv = () => Object.fromEntries(Object.entries(runtimeEnv).map(([key, value]) => [key, value.startsWith(`${runtime.workdir}/`) ? runtime.local(value) : value]));
    const startCommand = (argv: string[], env: Record<string, string>) =>
      startImageProcess({ node: nodeBinary, argv, cwd: runtime.dir, env: { ...imageEnv(), ...env }, user: imageUser });

    before(async function () {
      this.timeout(60_000);
      db = await createDatabase();
      port = await freePort();
      // The root file system is read-only in ECS: only /tmp is writable, as here for the image user.
      setWritable(runtime.dir, false);
      if (cliSourceExists) {
        // What the migration task runs: the owner's URL, and the app role's password to set.
        migration = startCommand(['node', 'dist/api/cli.js', 'migrate'], { ...contractEnv(), DATABASE_URL: db.ownerUrl, DB_APP_PASSWORD: secrets.pgPassword });
        await within(migration.exited, 50_000, 'node dist/api/cli.js migrate');
      } else {
        await migrateDatabase(db.ownerUrl);
      }
      await sql(db.ownerUrl, `grant dms_api to ${APP_ROLE}`);
      api = startCommand(command, contractEnv());
    });

    after(async () => {
      api?.child.kill('SIGKILL');
      migration?.child.kill('SIGKILL');
      await db?.drop();
    });

    (cliSourceExists ? it : it.skip)('applies the migrations through the image\'s entry point, `node dist/api/cli.js migrate`', async () => {
      const { code } = await migration!.exited;
      assert.equal(code, 0, migration!.stderr.join('\n'));
      const { rows } = await sql(db.ownerUrl, 'select count(*)::int as applied from schema_migrations');
      assert.ok(rows[0].applied > 0);
    });

    it('answers GET /health/ready 200 in production with the contract\'s variables', async () => {
      const ready = await Promise.race([
        eventually(async () => {
          const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
          assert.equal(response.status, 200, await response.clone().text());
          return { body: (await response.json()) as { status: string } };
        }, { timeoutMs: 30_000, intervalMs: 200 }),
        api.exited.then((exit) => ({ exit })),
      ]);
      assert.ok('body' in ready, `the API exited (${JSON.stringify(ready)}): ${api.stderr.join('\n')}`);
      assert.equal(ready.body.status, 'ready');
      const startup = api.stdout.map((line) => JSON.parse(line) as Record<string, unknown>).find((r) => r.event === 'startup');
      assert.equal(startup?.env, 'production');
    });

    it('passes its own HEALTHCHECK, which fails when nothing answers', async () => {
      assert.equal(healthcheck[0], 'node', 'node itself: the slim image has no curl');
      assert.ok(healthcheck.join(' ').includes('/health'));
      const check = (checkPort: number) => within(startCommand(healthcheck, { PORT: String(checkPort) }).exited, 10_000, 'HEALTHCHECK');
      assert.equal((await check(port)).code, 0);
      assert.notEqual((await check(await freePort())).code, 0);
    });

    it('stops on SIGTERM with exit 0 within 25 s, having logged only JSON lines without its secrets and written nothing to stderr', async () => {
      const signalled = Date.now();
      api.child.kill('SIGTERM');
      const { code, signal } = await within(api.exited, 25_000, 'exit after SIGTERM');
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
      assert.ok(Date.now() - signalled < 25_000);
      assert.deepEqual(api.stderr, [], 'a write refused by the read-only file system, a CA bundle it could not read, a warning');
      const events = api.stdout.map((line) => (JSON.parse(line) as { event: string }).event);
      assert.ok(events.includes('startup') && events.includes('shutdown'), events.join(', '));
      const log = api.stdout.join('\n');
      for (const secret of Object.values(secrets)) assert.ok(!log.includes(secret), 'a secret reached the log');
    });

    it('stops on DATABASE_URL=not-a-url with one stderr line naming DATABASE_URL, no stack trace', async () => {
      const bad = startCommand(command, { ...contractEnv(), DATABASE_URL: 'not-a-url' });
      const { code } = await within(bad.exited, 15_000, 'exit on bad configuration');
      assert.notEqual(code, 0);
      assert.equal(bad.stderr.length, 1, bad.stderr.join('\n'));
      assert.match(bad.stderr[0]!, /DATABASE_URL/);
      assert.doesNotMatch(bad.stderr[0]!, /\bat\s+\S+\s+\(|not-a-url/);
    });
  });
});
