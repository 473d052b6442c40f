/**
 * `npm run mutation`: the suite's own mutation check (not part of `npm test`).
 *
 * Applies each one-line mutation of `test/mutation/mutations.json` (a security-relevant line
 * changed the way a careless or hostile edit would change it) to a scratch copy of the working
 * tree, one at a time, and runs the test files that entry names. A mutation is killed when those
 * tests fail, and survives when they pass: a survivor is a hole a future change could open
 * without a red test. Prints each result and the score; exits 1 if any survives, 2 if the list is
 * stale (an original line no longer in its file), the named tests fail before any mutation, or
 * mocha cannot start (the scratch copy links the checkout's node_modules: no `npm ci` meanwhile).
 *
 *   npm run mutation                         every mutation
 *   npm run mutation -- --only id1,id2       just these
 *   npm run mutation -- --list               what the list holds
 *   npm run mutation -- --keep               keep the scratch copy (its path is printed)
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** One entry of the list. */
interface Mutation {
  /** Short and stable: what `--only` takes. */
  id: string;
  /** The file it changes, from the repository root. */
  file: string;
  /** Text that must occur exactly once in `file`. */
  original: string;
  /** What replaces it. */
  mutated: string;
  /** The test files that must fail with it in place. */
  tests: string[];
  /** The hole it would open, in a sentence. */
  why: string;
}

const ROOT = resolve(import.meta.dirname, '../..');
const LIST = join(import.meta.dirname, 'mutations.json');
/** A mutation that hangs the tests past this is counted as killed (the suite noticed something). */
const TIME_LIMIT_MS = 15 * 60_000;

function loadMutations(path = LIST): Mutation[] {
  return JSON.parse(readFileSync(path, 'utf8')) as Mutation[];
}

/** What is wrong with the list against the files under `root`: one line per problem. */
function staleEntries(mutations: Mutation[], root = ROOT): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const m of mutations) {
    if (ids.has(m.id)) problems.push(`${m.id}: the id is listed twice`);
    ids.add(m.id);
    if (m.original === m.mutated) problems.push(`${m.id}: the mutated text is the original`);
    if (m.tests.length === 0) problems.push(`${m.id}: names no test file`);
    for (const test of m.tests) if (!existsSync(join(root, test))) problems.push(`${m.id}: no test file ${test}`);
    const path = join(root, m.file);
    if (!existsSync(path)) {
      problems.push(`${m.id}: no file ${m.file}`);
      continue;
    }
    const count = readFileSync(path, 'utf8').split(m.original).length - 1;
    if (count !== 1) problems.push(`${m.id}: the original text occurs ${count} times in ${m.file} (must be once)`);
  }
  return problems;
}

/** The working tree as it is (tracked and untracked files, not ignored ones), with node_modules linked. */
function scratchCopy(): string {
  const scratch = mkdtempSync(join(tmpdir(), 'dms-mutation-'));
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of files) {
    // Deleted in the working tree, or not a plain file (a symlinked node_modules of a copy).
    if (!existsSync(join(ROOT, file)) || !lstatSync(join(ROOT, file)).isFile()) continue;
    mkdirSync(dirname(join(scratch, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(scratch, file));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(scratch, 'node_modules'), 'dir');
  return scratch;
}

interface TestRun {
  failed: boolean;
  /** The first failing test, or why the run failed without one. */
  firstFailure?: string;
  seconds: number;
}

/** Runs mocha on `tests` in `cwd` (bailing at the first failure), its JSON report read from a file. */
function runTests(cwd: string, tests: string[]): Promise<TestRun> {
  const report = join(cwd, '.mutation-report.json');
  rmSync(report, { force: true });
  const started = Date.now();
  const child = spawn(join(ROOT, 'node_modules/.bin/mocha'), ['--bail', '--reporter', 'json', '--reporter-option', `output=${report}`, ...tests], {
    cwd, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), TIME_LIMIT_MS);
  return new Promise((done, fail) => {
    // mocha did not start (node_modules gone mid-run, e.g. an `npm ci` in the checkout): no verdict.
    child.on('error', (error) => {
      clearTimeout(timer);
      fail(new Error(`mocha could not start: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Math.round((Date.now() - started) / 1000);
      if (signal === 'SIGKILL') return done({ failed: true, firstFailure: `no result within ${TIME_LIMIT_MS / 60_000} min`, seconds });
      let firstFailure: string | undefined;
      try {
        const failures = (JSON.parse(readFileSync(report, 'utf8')) as { failures: { fullTitle: string }[] }).failures;
        firstFailure = failures[0]?.fullTitle;
      } catch {
        firstFailure = `no report (exit ${code}): ${stderr.trim().split('\n').at(-1) ?? ''}`;
      }
      done({ failed: code !== 0, ...(code !== 0 ? { firstFailure: firstFailure ?? `exit ${code}` } : {}), seconds });
    });
  });
}

async function main(args: string[]): Promise<number> {
  let mutations = loadMutations();
  if (args.includes('--list')) {
    for (const m of mutations) console.log(`${m.id.padEnd(34)} ${m.file}\n${' '.repeat(35)}${m.why}`);
    return 0;
  }
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1]?.split(',') ?? [] : undefined;
  if (only) {
    const unknown = only.filter((id) => !mutations.some((m) => m.id === id));
    if (unknown.length) {
      console.error(`mutation: no such mutation: ${unknown.join(', ')}`);
      return 2;
    }
    mutations = mutations.filter((m) => only.includes(m.id));
  }
  const stale = staleEntries(mutations);
  if (stale.length) {
    console.error(`mutation: the list does not match the code; fix test/mutation/mutations.json:\n  ${stale.join('\n  ')}`);
    return 2;
  }

  const scratch = scratchCopy();
  console.log(`mutation: ${mutations.length} mutations, scratch copy ${scratch}`);
  try {
    const allTests = [...new Set(mutations.flatMap((m) => m.tests))].sort();
    const baseline = await runTests(scratch, allTests);
    if (baseline.failed) {
      console.error(`mutation: the named tests fail without any mutation (${baseline.firstFailure}); a kill would prove nothing`);
      return 2;
    }
    console.log(`baseline: ${allTests.length} test files pass unmutated (${baseline.seconds} s)`);

    const survivors: Mutation[] = [];
    for (const m of mutations) {
      const path = join(scratch, m.file);
      const source = readFileSync(path, 'utf8');
      writeFileSync(path, source.replace(m.original, () => m.mutated));
      const run = await runTests(scratch, m.tests);
      writeFileSync(path, source);
      if (!run.failed) survivors.push(m);
      console.log(`${run.failed ? 'killed  ' : 'SURVIVED'}  ${m.id.padEnd(34)} ${String(run.seconds).padStart(4)} s  ${run.failed ? run.firstFailure : m.why}`);
    }
    const killed = mutations.length - survivors.length;
    console.log(`\nmutation score: ${killed}/${mutations.length} killed (${((100 * killed) / mutations.length).toFixed(1)} %)`);
    for (const m of survivors) console.log(`  survived: ${m.id} (${m.file}; ${m.tests.join(', ')}): ${m.why}`);
    return survivors.length ? 1 : 0;
  } finally {
    if (args.includes('--keep')) console.log(`scratch copy kept: ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

process.exitCode = await main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`mutation: ${error.message}`);
  return 2;
});
