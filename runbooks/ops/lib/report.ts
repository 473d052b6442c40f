import type { OpsContext } from './context.js';
import { formatDuration } from './time.js';

/** Progress of long steps on stderr, stamped with the time since the command started. */
export class Progress {
  private readonly startedAt: number;

  constructor(private readonly ctx: OpsContext) {
    this.startedAt = ctx.clock.now().getTime();
  }

  step(message: string): void {
    const elapsed = formatDuration(this.ctx.clock.now().getTime() - this.startedAt);
    this.ctx.io.err(`[+${elapsed}] ${message}`);
  }
}

export type SummaryRow = readonly [label: string, value: string];

/** The block every command ends with: a title and aligned `label  value` rows, on stdout. */
export function printSummary(ctx: OpsContext, title: string, rows: readonly SummaryRow[]): void {
  const width = Math.max(...rows.map(([label]) => label.length));
  ctx.io.out('');
  ctx.io.out(`== ${title} ==`);
  for (const [label, value] of rows) ctx.io.out(`  ${label.padEnd(width)}  ${value}`);
}

/** A plain text table with a header row; numbers are right-aligned. */
export function printTable(ctx: OpsContext, header: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const numeric = header.map((_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === 'number'));
  for (const row of cells) {
    ctx.io.out(row.map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd());
  }
}

/** JSON, one key per line, with short arrays and objects (tags, subnet lists) kept on one line. */
export function formatParameters(value: unknown, indent = ''): string {
  const compact = JSON.stringify(value);
  if (typeof value !== 'object' || value === null || compact.length + indent.length <= 100) return compact;
  const inner = `${indent}  `;
  if (Array.isArray(value)) return `[\n${value.map((item) => `${inner}${formatParameters(item, inner)}`).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${formatParameters(item, inner)}`).join(',\n')}\n${indent}}`;
}
