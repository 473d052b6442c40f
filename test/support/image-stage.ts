import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';

/**
 * Performs a Dockerfile's stages in scratch folders, for a machine without a Docker engine: the
 * build context is what `.dockerignore` lets through, COPY copies from it, `npm` steps run for
 * real, and every step this module cannot perform is either reported as skipped (with the
 * reason) or fails loudly, so a new step in the Dockerfile is never silently ignored.
 */

const run = promisify(execFile);

export const REPO = join(import.meta.dirname, '..', '..');

// ---------------------------------------------------------------------------------------------
// Dockerfile

export interface Instruction {
  keyword: string;
  /** `--name=value` options before the arguments (COPY --from, ADD --chmod, RUN --mount, …). */
  flags: Record<string, string>;
  args: string;
  /** The instruction as written, continuation lines joined. */
  text: string;
}

export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages; comments (and the `# syntax=` directive) are dropped. */
export function parseDockerfile(source: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of source.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (!line && !pending)) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = '';
  }
  if (pending) logical.push(pending.trim());

  const stages: Stage[] = [];
  for (const text of logical) {
    const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(text) ?? [];
    let args = rest;
    const flags: Record<string, string> = {};
    for (let flag = /^--([\w-]+)=(\S+)\s+/.exec(args); flag; flag = /^--([\w-]+)=(\S+)\s+/.exec(args)) {
      flags[flag[1]!] = flag[2]!;
      args = args.slice(flag[0].length);
    }
    const instruction: Instruction = { keyword: keyword.toUpperCase(), flags, args, text };
    if (instruction.keyword === 'FROM') {
      const [from = '', as, name] = args.split(/\s+/);
      stages.push({ from, ...(as?.toUpperCase() === 'AS' && name ? { name } : {}), instructions: [] });
    } else {
      if (!stages.length) throw new Error(`Dockerfile: ${text} comes before any FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

/** The stages a stage builds on, itself last (`FROM base AS runtime` → [base, runtime]). */
export function stageChain(stages: Stage[], stage: Stage): Stage[] {
  const parent = stages.find((s) => s.name === stage.from);
  return parent ? [...stageChain(stages, parent), stage] : [stage];
}

/** The image a stage finally starts from (through `FROM <stage>` links). */
export function baseImage(stages: Stage[], stage: Stage): string {
  return stageChain(stages, stage)[0]!.from;
}

/** Every instruction of one keyword in a stage and the stages it builds on, in order. */
export function instructionsOf(stages: Stage[], stage: Stage, keyword: string): Instruction[] {
  return stageChain(stages, stage).flatMap((s) => s.instructions.filter((i) => i.keyword === keyword));
}

/** `ENV a=b c=d` (and the legacy `ENV a b`) as key/value pairs. */
export function envOf(instruction: Instruction): Record<string, string> {
  const legacy = /^(\w+)\s+([^=]*)$/.exec(instruction.args);
  if (legacy) return { [legacy[1]!]: legacy[2]!.trim() };
  const pairs: Record<string, string> = {};
  for (const [, key, quoted, bare] of instruction.args.matchAll(/(\w+)=(?:"([^"]*)"|(\S*))/g)) pairs[key!] = quoted ?? bare ?? '';
  return pairs;
}

/** The JSON (exec) form of CMD, ENTRYPOINT or HEALTHCHECK … CMD; undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  const json = args.replace(/^CMD\s+/i, '');
  if (!json.startsWith('[')) return undefined;
  return JSON.parse(json) as string[];
}

// ---------------------------------------------------------------------------------------------
// .dockerignore and the build context

interface IgnorePattern {
  exclude: boolean;
  pattern: string;
  regexp: RegExp;
}

/** Docker's pattern language: `*` and `?` stay within one path segment (dotfiles included), `**` spans any. */
function patternRegExp(pattern: string): RegExp {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        source += '(.*/)?';
      } else {
        source += '.*';
      }
    } else if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else if (ch === '\\' && i + 1 < pattern.length) source += `\\${pattern[++i]}`;
    else if (ch === '[' || ch === ']') source += ch;
    else source += ch.replace(/[.+^${}()|]/g, '\\$&');
  }
  return new RegExp(`${source}$`);
}

export interface DockerIgnore {
  /** True when `docker build` leaves this context-relative path out. */
  excludes(path: string): boolean;
  /** False when no `!` exception can bring back anything below this excluded folder. */
  mayReinclude(dir: string): boolean;
}

/** `.dockerignore` as Docker reads it: the last pattern that matches a path or one of its parents wins. */
export function parseDockerignore(source: string): DockerIgnore {
  const patterns: IgnorePattern[] = source
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const exclude = !line.startsWith('!');
      const pattern = posix.normalize(line.replace(/^!/, '').trim()).replace(/^\/+|\/+$/g, '');
      return { exclude, pattern, regexp: patternRegExp(pattern) };
    });
  const selfAndParents = (path: string) => path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  return {
    excludes(path) {
      let excluded = false;
      for (const { exclude, regexp } of patterns) {
        if (selfAndParents(path).some((p) => regexp.test(p))) excluded = exclude;
      }
      return excluded;
    },
    mayReinclude(dir) {
      return patterns.some(({ exclude, pattern }) => !exclude && (pattern.startsWith(`${dir}/`) || /^[*?[\\]/.test(pattern)));
    },
  };
}

/** The files `docker build <repo>` would send, relative to the repo, sorted. */
export function buildContextFiles(repo: string, ignore: DockerIgnore): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(repo, dir), { withFileTypes: true })) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!ignore.excludes(path) || ignore.mayReinclude(path)) walk(path);
      } else if (!ignore.excludes(path)) {
        files.push(path);
      }
    }
  };
  walk('');
  return files.sort();
}

/** Every file below a folder, relative to it, sorted; symbolic links count as files and are not followed. */
export function listFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

// ---------------------------------------------------------------------------------------------
// Performing stages

export interface SkippedStep {
  step: string;
  reason: string;
}

export interface PerformedStage {
  /** The scratch folder standing for the stage's WORKDIR. */
  dir: string;
  workdir: string;
  env: Record<string, string>;
  skipped: SkippedStep[];
  /** Where a path of the stage's image lies in the scratch folder (only paths under WORKDIR can). */
  local(imagePath: string): string;
}

export interface StageRunner {
  /** Performs a stage (and the stages it builds on) once; COPY --from performs its source first. */
  perform(stage: Stage): Promise<PerformedStage>;
}

/** Docker gives a file fetched by ADD <url> this mode unless --chmod says otherwise. */
const ADD_URL_DEFAULT_MODE = 0o600;

/** The environment `docker build` gives npm: none of this test run's npm or Node settings. */
function buildEnv(stageEnv: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|NODE_)/i.test(key)));
  return { ...env, PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`, ...stageEnv };
}

/**
 * Runs stages of `stages` in folders under `scratch`, copying from the build context `context`
 * (a folder holding exactly the files `.dockerignore` lets through).
 */
export function stageRunner(stages: Stage[], context: string, scratch: string): StageRunner {
  const performed = new Map<Stage, Promise<PerformedStage>>();

  const perform = (stage: Stage): Promise<PerformedStage> => {
    let result = performed.get(stage);
    if (!result) {
      result = performChain(stage);
      performed.set(stage, result);
    }
    return result;
  };

  async function performChain(stage: Stage): Promise<PerformedStage> {
    const dir = join(scratch, stage.name ?? `stage-${stages.indexOf(stage)}`);
    mkdirSync(dir, { recursive: true });
    // As Docker creates it: other users (the image's USER) may read and traverse it.
    chmodSync(dir, 0o755);
    const state: PerformedStage = {
      dir,
      workdir: '/',
      env: {},
      skipped: [],
      local(imagePath) {
        const inside = posix.relative(this.workdir, posix.resolve(this.workdir, imagePath));
        if (inside.startsWith('..')) throw new Error(`${imagePath}: only paths under WORKDIR ${this.workdir} can be performed in a scratch folder`);
        return join(dir, inside);
      },
    };
    for (const instruction of stageChain(stages, stage).flatMap((s) => s.instructions)) await step(instruction, state);
    return state;
  }

  async function step(instruction: Instruction, state: PerformedStage): Promise<void> {
    const { keyword, text } = instruction;
    switch (keyword) {
      case 'WORKDIR':
        if (state.workdir !== '/') throw new Error(`${text}: a second WORKDIR in one stage is not supported here`);
        state.workdir = instruction.args;
        return;
      case 'ENV':
        Object.assign(state.env, envOf(instruction));
        return;
      case 'COPY':
        return copy(instruction, state);
      case 'ADD':
        return addUrl(instruction, state);
      case 'RUN':
        return runStep(instruction, state);
      case 'USER': case 'EXPOSE': case 'HEALTHCHECK': case 'ENTRYPOINT': case 'CMD': case 'LABEL': case 'STOPSIGNAL':
        return; // image metadata: the test reads it from the parsed Dockerfile
      default:
        throw new Error(`${text}: test/support/image-stage.ts does not know how to perform ${keyword}`);
    }
  }

  async function copy({ flags, args, text }: Instruction, state: PerformedStage): Promise<void> {
    const unsupported = Object.keys(flags).filter((flag) => flag !== 'from');
    if (unsupported.length) throw new Error(`${text}: COPY --${unsupported.join(', --')} is not supported here`);
    const paths = args.split(/\s+/);
    const destination = paths.pop()!;
    let sourcePath = (path: string) => join(context, path);
    if (flags.from) {
      const from = stages.find((s) => s.name === flags.from);
      if (!from) throw new Error(`${text}: no stage named ${flags.from}`);
      const source = await perform(from);
      sourcePath = (path) => source.local(path);
    }
    const target = state.local(destination);
    const intoFolder = destination.endsWith('/') || paths.length > 1;
    for (const path of paths) {
      const source = sourcePath(path);
      if (!existsSync(source)) throw new Error(`${text}: ${path} is not in the ${flags.from ? `${flags.from} stage` : 'build context (.dockerignore)'}`);
      // Docker copies a folder's contents, and a file into a folder when the destination ends with '/'.
      const to = statSync(source).isDirectory() || !intoFolder ? target : join(target, posix.basename(path));
      cpSync(source, to, { recursive: true, verbatimSymlinks: true });
    }
  }

  function addUrl({ flags, args, text }: Instruction, state: PerformedStage): void {
    const [source = '', destination = ''] = args.split(/\s+/);
    if (!/^https:\/\//.test(source)) throw new Error(`${text}: only ADD <https URL> is supported here (use COPY for local files)`);
    // No network to the URL here: `docker build` fetches it. A stand-in PEM with the mode the
    // real file gets lets the process load it exactly as it would load the real bundle.
    const target = state.local(destination);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    writeFileSync(target, rootCertificates.join('\n'));
    chmodSync(target, flags.chmod ? parseInt(flags.chmod, 8) : ADD_URL_DEFAULT_MODE);
    state.skipped.push({ step: text, reason: `fetching ${source} needs the network; a stand-in PEM stands at ${destination}` });
  }

  async function runStep({ flags, args, text }: Instruction, state: PerformedStage): Promise<void> {
    const unsupported = Object.keys(flags).filter((flag) => flag !== 'mount');
    if (unsupported.length) throw new Error(`${text}: RUN --${unsupported.join(', --')} is not supported here`);
    const words = args.split(/\s+/);
    if (words[0] === 'apt-get') {
      state.skipped.push({ step: text, reason: 'a Debian package for the base image: not installable into a scratch folder' });
      return;
    }
    if (/[;&|<>`$]/.test(args)) throw new Error(`${text}: only single npm commands can be performed here`);
    const cwd = state.local('.');
    if (words[0] === 'npm' && words[1] === 'ci' && !words.includes('--omit=dev')) {
      // The dev tree from the same lockfile is the repo's own node_modules (a real install takes
      // ~15 s here): the compile step that follows uses it as the build stage uses its own.
      symlinkSync(join(REPO, 'node_modules'), join(cwd, 'node_modules'), 'dir');
      return;
    }
    if (words[0] === 'npm' && (words[1] === 'ci' || words[1] === 'run')) {
      // Exactly the Dockerfile's command; an install reads the local cache first.
      const extra = words[1] === 'ci' ? ['--prefer-offline'] : [];
      await run('npm', [...words.slice(1), ...extra], { cwd, env: buildEnv(state.env) });
      return;
    }
    throw new Error(`${text}: test/support/image-stage.ts does not know how to perform this RUN; teach it`);
  }

  return { perform };
}

/** Copies the context files into a folder of their own: the stages COPY from nothing else. */
export function materializeContext(repo: string, files: string[], into: string): void {
  for (const file of files) {
    const target = join(into, file);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(repo, file), target, { verbatimSymlinks: true });
  }
}

/**
 * Takes every write bit below `root` away (as a read-only root file system would) or gives the
 * owner's back (so a run that is not root can remove the scratch folder).
 */
export function setWritable(root: string, writable: boolean): void {
  const entries = readdirSync(root, { recursive: true, withFileTypes: true }).map((entry) => join(entry.parentPath, entry.name));
  for (const path of [root, ...entries]) {
    const stat = lstatSync(path);
    if (!stat.isSymbolicLink()) chmodSync(path, writable ? stat.mode | 0o200 : stat.mode & ~0o222);
  }
}

/** A package-lock.json v3 entry, as far as the tests compare it with what was installed. */
export interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  hasInstallScript?: boolean;
}

export function readLockfile(repo: string): Record<string, LockEntry> {
  return (JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }).packages;
}

// ---------------------------------------------------------------------------------------------
// Running the image's command

export interface ImageProcess {
  child: ChildProcessWithoutNullStreams;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ImageProcessOptions {
  /** The base image's `node`: the Node binary standing in for /usr/local/bin/node. */
  node: string;
  /** An exec-form command whose first word is `node` (CMD, HEALTHCHECK). */
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** The image's USER; applied when this test runs as root (it cannot switch user otherwise). */
  user?: { uid: number; gid: number };
}

/** The PATH the official Node image sets; the process gets nothing of this test's environment. */
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Starts an exec-form command as the container would: its own environment, the image's user. */
export function startImageProcess({ node, argv, cwd, env, user }: ImageProcessOptions): ImageProcess {
  if (argv[0] !== 'node') throw new Error(`${argv.join(' ')}: only commands run by node can start here`);
  const asUser = user && process.getuid?.() === 0 ? user : undefined;
  const child = spawn(node, argv.slice(1), { cwd, env: { PATH: IMAGE_PATH, HOME: '/home/node', ...env }, ...asUser });
  const stdout = linesOf(child.stdout);
  const stderr = linesOf(child.stderr);
  // 'close', not 'exit': every line the process wrote has been read by then.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, stdout, stderr, exited };
}

/** The complete lines a stream carries, as they arrive (a chunk may end mid-line). */
function linesOf(stream: NodeJS.ReadableStream): string[] {
  const lines: string[] = [];
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts.filter(Boolean));
  });
  stream.on('end', () => {
    if (partial) lines.push(partial);
  });
  return lines;
}

/** Resolves with `work`, or rejects naming `what` when it takes longer than `ms`. */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
