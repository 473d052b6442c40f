// The fields the API's log lines carry, derived from the code rather than listed by hand: what
// the logger itself writes on every line (read from a line it really writes), and the fields of
// every `log.<level>(event, fields)` and `log.child(fields)` call in api/, as the TypeScript
// checker types them (so `...routeFields(ctx)` and shorthand properties count).
import path from 'node:path';
import { Writable } from 'node:stream';
import ts from 'typescript';
import { createLogger } from '../../api/logger.js';
import { emfRecord } from '../../api/metrics/emf.js';

const LEVEL_METHODS = new Set(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']);

/** The keys of one line the real logger writes: `timestamp`, `level`, `event`, its default meta. */
export async function loggerBaseFields(): Promise<string[]> {
  const line = await new Promise<string>((resolve) => {
    const stream = new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        resolve(chunk.toString());
        done();
      },
    });
    createLogger({ level: 'info', env: 'test', stream }).info('field_probe');
  });
  return Object.keys(JSON.parse(line) as object);
}

/**
 * The top-level keys of the EMF record the API writes to the same log group per request
 * (api/metrics/emf.ts), with every optional member present: `Route`, `Latency`, `traceId`, …
 */
export function emfRecordFields(): string[] {
  const sample = { route: '/patients/:id', method: 'GET', status: 200, latencyMs: 1, requestId: 'field-probe', traceId: '0'.repeat(32) };
  return Object.keys(emfRecord('DMS/field-probe', sample, 0));
}

function isWinstonLogger(checker: ts.TypeChecker, receiver: ts.Expression): boolean {
  const declarations = checker.getTypeAtLocation(receiver).getSymbol()?.getDeclarations() ?? [];
  return declarations.some((declaration) => declaration.getSourceFile().fileName.includes('/node_modules/winston/'));
}

function isPlainObject(checker: ts.TypeChecker, type: ts.Type): boolean {
  if (!(type.flags & ts.TypeFlags.Object) || checker.isArrayType(type) || checker.isTupleType(type)) return false;
  return type.getSymbol()?.getName() !== 'Date';
}

/** `name`, and for an object-valued field its members (`ids.id`) or `ids.*` when it is a record. */
function fieldNames(checker: ts.TypeChecker, type: ts.Type, at: ts.Node): string[] {
  const names: string[] = [];
  // A conditional spread makes a union: each branch's fields are logged on some lines.
  const properties = (type.isUnion() ? type.types : [type]).flatMap((member) => checker.getPropertiesOfType(checker.getApparentType(member)));
  for (const property of properties) {
    const name = property.getName();
    names.push(name);
    const valueType = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(property, at));
    for (const member of valueType.isUnion() ? valueType.types : [valueType]) {
      if (!isPlainObject(checker, member)) continue;
      if (checker.getIndexInfoOfType(member, ts.IndexKind.String)) names.push(`${name}.*`);
      for (const inner of checker.getPropertiesOfType(member)) names.push(`${name}.${inner.getName()}`);
    }
  }
  return names;
}

export interface ApiLogFields {
  /** Every field name a log call passes (`ids.id`; `ids.*` for a record). */
  fields: string[];
  /** Log calls whose fields the checker cannot name (a `Record<string, …>`), as `file:line`. */
  unnamed: string[];
}

/** The fields of every log call in `api/`, by the TypeScript checker over the project's tsconfig. */
export function apiLogCallFields(repoRoot: string): ApiLogFields {
  const configPath = path.join(repoRoot, 'tsconfig.json');
  const { config } = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, repoRoot);
  const apiDirectory = `${path.join(repoRoot, 'api')}${path.sep}`;
  const program = ts.createProgram(
    parsed.fileNames.filter((file) => file.startsWith(apiDirectory)),
    { ...parsed.options, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const fields = new Set<string>();
  const unnamed: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const method = node.expression.name.text;
      const argument = method === 'child' ? node.arguments[0] : LEVEL_METHODS.has(method) ? node.arguments[1] : undefined;
      if (argument && isWinstonLogger(checker, node.expression.expression)) {
        const type = checker.getTypeAtLocation(argument);
        if ((type.isUnion() ? type.types : [type]).some((member) => checker.getIndexInfoOfType(member, ts.IndexKind.String))) {
          const { line } = node.getSourceFile().getLineAndCharacterOfPosition(node.getStart());
          unnamed.push(`${path.relative(repoRoot, node.getSourceFile().fileName)}:${line + 1}`);
        }
        for (const name of fieldNames(checker, type, argument)) fields.add(name);
      }
    }
    ts.forEachChild(node, visit);
  };
  for (const file of program.getSourceFiles()) if (file.fileName.startsWith(apiDirectory)) visit(file);
  return { fields: [...fields].sort(), unnamed };
}
