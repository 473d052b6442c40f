/**
 * The API image's tag: a digest of exactly what `docker build` would send (the `Dockerfile` and the
 * files `.dockerignore` lets into the build context), so the tag changes whenever the image could.
 *
 * The repository refuses to overwrite a tag (IMMUTABLE), and refuses even a push of an identical
 * image to an existing tag (https://github.com/aws/containers-roadmap/issues/2179). The commit alone
 * is not unique per build: an uncommitted edit or a retried `pulumi up` of the same commit with a
 * changed file would push a different image under a tag that already exists, and fail. With the
 * content digest, the same context means the same tag (nothing to build or push), and any change a
 * new one.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface IgnoreRule {
  pattern: RegExp;
  /** `!pattern`: lets back in what an earlier rule left out. */
  include: boolean;
}

/** Docker's pattern syntax (Go's filepath.Match plus `**`) as an anchored regular expression. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index] as string;
    if (char === '*' && glob[index + 1] === '*') {
      // `**/` matches any number of directories, including none; a trailing `**` anything.
      if (glob[index + 2] === '/') {
        source += '(?:.*/)?';
        index += 2;
      } else {
        source += '.*';
        index += 1;
      }
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else if (char === '[') {
      const end = glob.indexOf(']', index);
      source += end > index ? glob.slice(index, end + 1).replace('[!', '[^') : '\\[';
      index = end > index ? end : index;
    } else source += char.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The rules of a `.dockerignore` file, in order (the last rule that matches a path decides). */
export function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const include = line.startsWith('!');
      const pattern = (include ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      return { pattern: globToRegExp(pattern), include };
    });
}

/** Whether `path` (relative, `/`-separated) reaches the build context: a rule matching it or any parent directory applies. */
export function inBuildContext(path: string, rules: readonly IgnoreRule[]): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
  let included = true;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.pattern.test(candidate))) included = rule.include;
  }
  return included;
}

/**
 * `ctx-<24 hex>`: SHA-256 over the Dockerfile and every file of the build context (path and
 * content), as the working tree holds them, committed or not. Files are listed through git (tracked
 * and untracked, without what `.gitignore` hides), so `root` must be a git checkout.
 */
export function buildContextTag(root: string, dockerfile: string): string {
  let listed: string;
  try {
    listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 });
  } catch {
    throw new Error(`cannot tag the API image: ${root} is not a git checkout (deploy from a clone of the repository)`);
  }
  const ignorePath = join(root, '.dockerignore');
  const rules = existsSync(ignorePath) ? parseDockerignore(readFileSync(ignorePath, 'utf8')) : [];
  const files = [...new Set(listed.split('\0').filter(Boolean))]
    .filter((path) => inBuildContext(path, rules))
    // A tracked file deleted in the working tree is not sent.
    .filter((path) => existsSync(join(root, path)) && statSync(join(root, path)).isFile())
    .sort();
  const hash = createHash('sha256');
  hash.update('Dockerfile\0').update(readFileSync(dockerfile)).update('\0');
  for (const path of files) hash.update(`${path}\0`).update(readFileSync(join(root, path))).update('\0');
  return `ctx-${hash.digest('hex').slice(0, 24)}`;
}
