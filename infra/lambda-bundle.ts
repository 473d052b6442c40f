/**
 * A Lambda function's code bundled by esbuild at plan time from the TypeScript the tests run, so
 * the code Lambda runs is the code the tests run. The AWS SDK v3 stays external: the Node.js 22
 * runtime includes it (https://docs.aws.amazon.com/lambda/latest/dg/nodejs-package.html#nodejs-package-dependencies).
 */
import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';

const bundles = new Map<string, string>();

/**
 * `format`: `esm` for code with no CommonJS dependency, `cjs` when a bundled library `require`s
 * Node's built-ins (an ES module bundle cannot). `external`: modules the runtime provides or that
 * are never installed, besides the SDK.
 */
export function bundleLambdaHandler(entry: URL, format: 'esm' | 'cjs', external: string[] = []): string {
  const path = fileURLToPath(entry);
  const cached = bundles.get(path);
  if (cached !== undefined) return cached;
  const result = buildSync({
    entryPoints: [path],
    bundle: true,
    platform: 'node',
    format,
    target: 'node22',
    external: ['@aws-sdk/*', ...external],
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error(`esbuild produced no bundle of ${path}`);
  bundles.set(path, output.text);
  return output.text;
}
