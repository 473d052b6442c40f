/**
 * The escalation state machine (Amazon States Language, JSONPath), one Standard execution per alarm
 * that enters ALARM:
 *
 *   Classify → Level1 → [wait] → Level2 → [wait] → Level3 → [wait] → Level4 → End
 *
 * Each level is one Lambda task (the step function) that first checks whether the climb should go
 * on (acknowledged? alarm back to OK?) and only then sends. After each level a Choice ends the
 * execution when it was acknowledged, the alarm is OK again, or the severity's highest level is
 * reached. A level that fails after its retries is logged and the climb goes on: a broken e-mail
 * must not keep the SMS from going out. Wait states are Standard-workflow waits (no compute while
 * waiting; a Standard execution may run for a year).
 * ASL: https://states-language.net/spec.html and
 * https://docs.aws.amazon.com/step-functions/latest/dg/concepts-standard-vs-express.html
 */
import { HIGHEST_LEVEL, LEVELS, UNKNOWN_SEVERITY_CLIMBS_AS, minuteOfLevel, type EndReason, type Level, type LevelDelays } from './levels.js';

type State = Record<string, unknown>;

export interface EscalationDefinitionArgs {
  /** ARN of the Lambda function that classifies, sends each level and logs the end. */
  stepFunctionArn: string;
  /** Minutes after the alarm for levels 2, 3 and 4. */
  delays: LevelDelays;
}

/** Task input `action`s the step function handles. */
export type StepAction = 'classify' | 'notify' | 'end';

/** What a level's task answers: the Choice after it reads `outcome`. */
export type StepOutcome = 'sent' | 'acknowledged' | 'alarm_ok' | 'failed';

/** State names, so tests and runbooks refer to them without retyping. */
export const STATE_NAMES = {
  classify: 'Classify',
  classifyFailed: 'Classify_failed',
  level: (level: Level) => `Level${level}_${LEVELS[level - 1]!.channel}`,
  waitFor: (level: Level) => `WaitForLevel${level}`,
  failed: (level: Level) => `Level${level}_failed`,
  after: (level: Level) => `AfterLevel${level}`,
  end: (reason: EndReason) => `End_${reason}`,
} as const;

/** Lambda's transient errors, retried with backoff (Step Functions' recommended set). */
const LAMBDA_RETRY = {
  ErrorEquals: ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'],
  IntervalSeconds: 2,
  MaxAttempts: 4,
  BackoffRate: 2,
};
/** A level's own failure (SMS throttled, topic unavailable): one more try before moving on. */
const STEP_RETRY = { ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 5, MaxAttempts: 2, BackoffRate: 2 };

export function escalationDefinition({ stepFunctionArn, delays }: EscalationDefinitionArgs): Record<string, unknown> {
  const levels = LEVELS.map((entry) => entry.level);
  const task = (parameters: State, rest: State): State => ({
    Type: 'Task',
    Resource: stepFunctionArn,
    Parameters: { ...parameters, 'execution.$': '$$.Execution.Id' },
    Retry: [LAMBDA_RETRY],
    ...rest,
  });
  const endStates = Object.fromEntries(
    (['acknowledged', 'alarm_ok', 'top_level_reached'] as const).map((reason) => [
      STATE_NAMES.end(reason),
      task({ action: 'end', reason, 'page.$': '$.page', 'step.$': '$.step' }, { ResultPath: null, End: true }),
    ]),
  );

  const states: Record<string, State> = {
    [STATE_NAMES.classify]: task(
      { action: 'classify', 'event.$': '$' },
      {
        ResultPath: '$.page',
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.classifyError', Next: STATE_NAMES.classifyFailed }],
        Next: STATE_NAMES.level(1),
      },
    ),
    // An alarm whose severity could not be read still pages, the whole way.
    [STATE_NAMES.classifyFailed]: {
      Type: 'Pass',
      Parameters: {
        'alarmName.$': '$.detail.alarmName',
        severity: UNKNOWN_SEVERITY_CLIMBS_AS,
        severitySource: 'unknown',
        highestLevel: HIGHEST_LEVEL[UNKNOWN_SEVERITY_CLIMBS_AS],
        reason: 'the alarm could not be classified; paging the whole way',
        test: false,
      },
      ResultPath: '$.page',
      Next: STATE_NAMES.level(1),
    },
  };
  for (const level of levels) {
    const next = level < 4 ? STATE_NAMES.waitFor((level + 1) as Level) : STATE_NAMES.end('top_level_reached');
    if (level > 1) {
      states[STATE_NAMES.waitFor(level)] = {
        Type: 'Wait',
        Comment: `level ${level} goes out ${minuteOfLevel(level, delays)} min after the alarm`,
        Seconds: (minuteOfLevel(level, delays) - minuteOfLevel((level - 1) as Level, delays)) * 60,
        Next: STATE_NAMES.level(level),
      };
    }
    states[STATE_NAMES.level(level)] = task(
      { action: 'notify', level, 'page.$': '$.page' },
      {
        ResultPath: '$.step',
        Retry: [LAMBDA_RETRY, STEP_RETRY],
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.stepError', Next: STATE_NAMES.failed(level) }],
        Next: STATE_NAMES.after(level),
      },
    );
    // The step function has logged nothing for a task that never returned: this level is recorded
    // as failed and the next one still goes out.
    states[STATE_NAMES.failed(level)] = {
      Type: 'Pass',
      Result: { outcome: 'failed', level },
      ResultPath: '$.step',
      Next: STATE_NAMES.after(level),
    };
    states[STATE_NAMES.after(level)] = {
      Type: 'Choice',
      Choices: [
        { Variable: '$.step.outcome', StringEquals: 'acknowledged', Next: STATE_NAMES.end('acknowledged') },
        { Variable: '$.step.outcome', StringEquals: 'alarm_ok', Next: STATE_NAMES.end('alarm_ok') },
        { Variable: '$.page.highestLevel', NumericLessThanEquals: level, Next: STATE_NAMES.end('top_level_reached') },
      ],
      Default: next,
    };
  }
  return {
    Comment: 'DMS paging: chat at once, then e-mail, SMS and a call to the backup, as far as the severity allows, until acknowledged or OK',
    StartAt: STATE_NAMES.classify,
    States: { ...states, ...endStates },
  };
}
