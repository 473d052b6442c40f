/**
 * The paging policy in one place, shared by the state machine definition, the Lambda handler that
 * sends each level, the stack config and the tests. No imports: the handler is bundled from here.
 *
 *   level 1  chat, at once                                   P0 P1 P2 P3
 *   level 2  e-mail to the on-call engineer after 5 min      P0 P1 P2
 *   level 3  SMS to the on-call engineer after 10 min        P0 P1
 *   level 4  phone call to the backup engineer after 15 min  P0 P1
 */

export type PageSeverity = 'P0' | 'P1' | 'P2' | 'P3';

export const PAGE_SEVERITIES: readonly PageSeverity[] = ['P0', 'P1', 'P2', 'P3'];

export type Level = 1 | 2 | 3 | 4;

/** How far an alarm of each severity climbs. */
export const HIGHEST_LEVEL: Readonly<Record<PageSeverity, Level>> = { P0: 4, P1: 4, P2: 2, P3: 1 };

/**
 * An alarm whose severity cannot be read climbs the whole way: better a phone call too many than a
 * P0 that nobody hears about.
 */
export const UNKNOWN_SEVERITY_CLIMBS_AS: PageSeverity = 'P0';

/** Minutes after the alarm at which levels 2, 3 and 4 go out unless acknowledged or resolved. */
export interface LevelDelays {
  email: number;
  sms: number;
  voice: number;
}

export const DEFAULT_LEVEL_DELAYS: Readonly<LevelDelays> = { email: 5, sms: 10, voice: 15 };

/** Who each level reaches, and through what. */
export const LEVELS = [
  { level: 1, channel: 'chat', recipient: 'channel', delay: undefined },
  { level: 2, channel: 'email', recipient: 'primaryOnCall', delay: 'email' },
  { level: 3, channel: 'sms', recipient: 'primaryOnCall', delay: 'sms' },
  { level: 4, channel: 'voice', recipient: 'backupOnCall', delay: 'voice' },
] as const satisfies readonly { level: Level; channel: string; recipient: string; delay: keyof LevelDelays | undefined }[];

export type Channel = (typeof LEVELS)[number]['channel'];
export type Recipient = (typeof LEVELS)[number]['recipient'];

/** Minutes from the alarm to `level` with these delays (level 1: 0). */
export function minuteOfLevel(level: Level, delays: LevelDelays): number {
  const key = LEVELS[level - 1]!.delay;
  return key === undefined ? 0 : delays[key];
}

/** How an escalation ends: the reasons the `escalation_ended` log event carries. */
export const END_REASONS = ['acknowledged', 'alarm_ok', 'top_level_reached'] as const;
export type EndReason = (typeof END_REASONS)[number];

/**
 * The JSON log events of the escalation engine (one object per line, `event` names the kind).
 * The runbooks name them; `test/runbooks.test.ts` checks every one named exists here.
 */
export const ESCALATION_LOG_EVENTS = {
  started: 'escalation_started',
  step: 'escalation_step',
  stepFailed: 'escalation_step_failed',
  acknowledged: 'escalation_acknowledged',
  ackRefused: 'escalation_ack_refused',
  ended: 'escalation_ended',
} as const;

/**
 * `source` of the events `npm run ops -- page-test` starts executions with: such an execution
 * climbs without an alarm to watch (nothing can return to OK), until acknowledged or at the top.
 */
export const PAGE_TEST_SOURCE = 'dms.page-test';

/** The alarm description starts with its severity: `P1: <meaning>. Runbook: <url>`. */
export function severityOfDescription(description: string | undefined): PageSeverity | undefined {
  const match = /^(P[0-3]):/.exec(description ?? '');
  return match ? (match[1] as PageSeverity) : undefined;
}
