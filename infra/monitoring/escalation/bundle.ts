/**
 * The escalation functions' code: `handler.ts` and what it imports, bundled by esbuild into one ES
 * module at plan time, so the code Lambda runs is the code the tests run. The AWS SDK v3 clients stay
 * external: the Node.js 22 runtime provides them.
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html
 */
import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';

let bundled: string | undefined;

export function bundledEscalationHandler(): string {
  if (bundled !== undefined) return bundled;
  const result = buildSync({
    entryPoints: [fileURLToPath(new URL('./handler.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: ['@aws-sdk/*'],
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error('esbuild produced no escalation handler bundle');
  bundled = output.text;
  return bundled;
}
