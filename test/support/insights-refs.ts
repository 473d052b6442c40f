// Logs Insights queries in the runbooks and docs, and the field names they read: a query on a
// field the API never logs returns nothing, which at 3 a.m. reads as "nothing happened".
import type { Runbooks } from './runbook-refs.js';

export interface InsightsQuery {
  file: string;
  line: number;
  query: string;
}

/** The fields CloudWatch Logs adds to every event (Logs Insights' discovered system fields). */
const SYSTEM_FIELDS = new Set(['@timestamp', '@message', '@logStream', '@log', '@ingestionTime', '@ptr']);
/** Logs Insights' own words; a name followed by `(` is a function. */
const QUERY_WORDS = new Set([
  'filter', 'fields', 'stats', 'sort', 'limit', 'display', 'parse', 'dedup', 'unmask', 'as', 'by', 'and', 'or', 'not', 'in', 'like',
  'asc', 'desc', 'true', 'false', 'null',
]);
const QUERY_START = /^\s*(filter|fields|stats|parse)\s/;

/**
 * Queries on the API's log group: the argument of the runbooks' `insights '<query>'` helper
 * (over lines, `\"` unescaped in a double-quoted one), unless the same line points `LOG_GROUP` at
 * another group; and a code block that is a bare query (it starts with `filter`, `fields`, …).
 */
export function insightsQueries(documents: Runbooks): InsightsQuery[] {
  const queries: InsightsQuery[] = [];
  for (const [file, markdown] of documents) {
    const lineAt = (index: number) => markdown.slice(0, index).split('\n').length;
    for (const match of markdown.matchAll(/(?<![\w-])insights\s+(['"])((?:\\.|(?!\1)[^\\])*)\1/g)) {
      const start = markdown.lastIndexOf('\n', match.index) + 1;
      if (/\bLOG_GROUP=/.test(markdown.slice(start, match.index))) continue;
      const query = match[1] === '"' ? (match[2] ?? '').replace(/\\(["$\\`])/g, '$1') : (match[2] ?? '');
      queries.push({ file, line: lineAt(match.index), query });
    }
    let block: string[] | undefined;
    let blockLine = 0;
    for (const [index, text] of markdown.split('\n').entries()) {
      if (!/^\s*(```|~~~)/.test(text)) {
        block?.push(text);
      } else if (block) {
        if (QUERY_START.test(block[0] ?? '')) queries.push({ file, line: blockLine, query: block.join('\n') });
        block = undefined;
      } else {
        block = [];
        blockLine = index + 2;
      }
    }
  }
  return queries;
}

/** The field names a query reads: its words less strings, regexes, placeholders, functions, keywords and its own `as` names. */
export function queryFields(query: string): string[] {
  const code = query
    .replace(/"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'/g, ' ')
    .replace(/(\blike\s+|=~\s*)\/(?:\\.|[^/\n])*\//g, ' ')
    // A placeholder the reader fills in (`<query>`) is no field.
    .replace(/<[^<>\s]+>/g, ' ');
  const aliases = new Set([...code.matchAll(/\bas\s+([A-Za-z_]\w*)/g)].map((match) => match[1]));
  const fields = new Set<string>();
  for (const match of code.matchAll(/(?<![\w.@])(@?[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)(\s*\()?/g)) {
    const [, name = '', call] = match;
    if (call || QUERY_WORDS.has(name.toLowerCase()) || aliases.has(name)) continue;
    fields.add(name);
  }
  return [...fields];
}

/** Is `field` one the API logs: named, or a member of a logged record (`ids.*`), or a system field? */
function isLogged(field: string, logged: ReadonlySet<string>): boolean {
  if (field.startsWith('@')) return SYSTEM_FIELDS.has(field);
  if (logged.has(field)) return true;
  const parts = field.split('.');
  return parts.slice(1).some((_, index) => logged.has(`${parts.slice(0, index + 1).join('.')}.*`));
}

/** Every field a query on the API log group reads is one the API logs (or CloudWatch adds). */
export function checkInsightsFields(queries: readonly InsightsQuery[], logged: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const query of queries) {
    for (const field of queryFields(query.query)) {
      if (!isLogged(field, logged)) problems.push(`${query.file}:${query.line}: the query reads field ${field}, which no API log line carries`);
    }
  }
  return problems;
}
