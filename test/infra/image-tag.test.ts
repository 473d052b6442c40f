// The API image tag is unique per build context: the repository refuses to overwrite a tag, so a
// changed context (an uncommitted edit, a file added) must give a new tag, and an unchanged one the
// same tag (nothing to rebuild or push).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildContextTag, inBuildContext, parseDockerignore } from '../../infra/image-tag.js';

describe('image tag: one tag per build context', () => {
  let root: string;
  const write = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, stdio: 'ignore' });
  const tag = () => buildContextTag(root, join(root, 'Dockerfile'));

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'dms-image-tag-'));
    write('Dockerfile', 'FROM node:24-slim\n');
    write('.dockerignore', '*\n!package.json\n!api/\n**/*.test.ts\n');
    write('package.json', '{}\n');
    write('api/main.ts', 'export {};\n');
    write('docs/readme.md', 'docs\n');
    git('init', '-q');
    git('add', '.');
    git('-c', 'user.email=t@example.invalid', '-c', 'user.name=t', 'commit', '-qm', 'first');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('changes with an uncommitted edit of a file the image is built from, and comes back when it is undone', () => {
    const committed = tag();
    assert.match(committed, /^ctx-[0-9a-f]{24}$/);
    write('api/main.ts', 'export const edited = true;\n');
    const edited = tag();
    assert.notEqual(edited, committed, 'the same commit with an edit is another image: another tag');
    write('api/main.ts', 'export {};\n');
    assert.equal(tag(), committed);
  });

  it('changes with a new untracked source file and with the Dockerfile', () => {
    const before = tag();
    write('api/new.ts', 'export {};\n');
    assert.notEqual(tag(), before);
    const withFile = tag();
    write('Dockerfile', 'FROM node:24-slim\nUSER 1000\n');
    assert.notEqual(tag(), withFile);
  });

  it('stays the same for files docker build never sees (docs, tests, git-ignored files)', () => {
    const before = tag();
    write('docs/readme.md', 'other docs\n');
    write('api/main.test.ts', 'it();\n');
    write('.gitignore', 'secret.env\n');
    write('secret.env', 'X=1\n');
    // .gitignore itself is outside the context (`*`), so this is still the same context.
    assert.equal(tag(), before);
  });

  it('reads .dockerignore the way docker does: the last matching rule wins, a rule on a directory covers its files', () => {
    const rules = parseDockerignore('# comment\n*\n!api/\n**/*.test.ts\n!api/keep.test.ts\n');
    assert.equal(inBuildContext('api/x/y.ts', rules), true);
    assert.equal(inBuildContext('api/x/y.test.ts', rules), false);
    assert.equal(inBuildContext('api/keep.test.ts', rules), true);
    assert.equal(inBuildContext('infra/index.ts', rules), false);
    assert.equal(inBuildContext('README.md', rules), false);
  });
});
