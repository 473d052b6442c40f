import { UsageError } from './errors.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90s`, `15m`, `1h`, `2d` (one number, one unit) to milliseconds; `flag` names the option in the error. */
export function parseDuration(text: string, flag: string): number {
  if (text.trim() === '0') return 0;
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) throw new UsageError(`--${flag} must be a duration such as 30m, 1h or 2d, not "${text}"`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** `1h02m05s`-style rendering of an interval, trailing zero units dropped (`2h`, `30m`, `1d06h`). */
export function formatDuration(ms: number): string {
  let rest = Math.round(Math.abs(ms) / 1000);
  const days = Math.floor(rest / 86_400);
  rest -= days * 86_400;
  const hours = Math.floor(rest / 3_600);
  rest -= hours * 3_600;
  const minutes = Math.floor(rest / 60);
  const seconds = rest - minutes * 60;
  // Days make seconds noise; the largest non-zero unit leads, later ones are two digits.
  const units: [number, string][] = days > 0 ? [[days, 'd'], [hours, 'h'], [minutes, 'm']] : [[hours, 'h'], [minutes, 'm'], [seconds, 's']];
  const first = units.findIndex(([value]) => value > 0);
  if (first < 0) return '0s';
  let last = units.length - 1;
  while (last > first && units[last]?.[0] === 0) last--;
  const text = units
    .slice(first, last + 1)
    .map(([value, unit], index) => `${index === 0 ? value : String(value).padStart(2, '0')}${unit}`)
    .join('');
  return ms < 0 ? `-${text}` : text;
}

/** UTC `yyyymmddhhmm`, the suffix of a drill instance id. */
export function compactUtcMinute(date: Date): string {
  return date.toISOString().slice(0, 16).replace(/[-T:]/g, '');
}

/** Whole-second ISO 8601 in UTC, for tags and reports. */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
