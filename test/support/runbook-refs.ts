// What the runbooks claim about the system, and the checks that hold those claims against the
// Pulumi plan, package.json, the ops CLI, the contract and the API source. Every check is a pure
// function returning problems as `file:line: …` strings, so the real test asserts an empty list
// and a fixture test proves each check reports a drifted runbook.

/** The shape `planStack()` in infra/plan.ts returns (secrets masked). */
export interface Plan {
  resources: { type: string; name: string; parent?: string; inputs: Record<string, unknown> }[];
  outputs: Record<string, unknown>;
}

export interface PlannedStack {
  stack: string;
  plan: Plan;
}

/** One command the ops CLI registers and the flags it accepts (without the leading `--`). */
export interface OpsCommandSpec {
  name: string;
  flags: readonly string[];
}

/** Runbook file name (e.g. `database.md`) to its markdown. */
export type Runbooks = ReadonlyMap<string, string>;

export const METRIC_ALARM_TYPE = 'aws:cloudwatch/metricAlarm:MetricAlarm';
/** The SLO pages (infra/monitoring/slo.ts) are composite alarms: they link runbooks like any alarm. */
export const COMPOSITE_ALARM_TYPE = 'aws:cloudwatch/compositeAlarm:CompositeAlarm';

/** Flags every ops command accepts, whatever its own spec says. */
const UNIVERSAL_OPS_FLAGS = ['help'];

// ---------------------------------------------------------------------------------------------
// Markdown

/** GitHub's heading anchor: lower-case, punctuation dropped, each space a hyphen. */
export function githubSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

export interface Line {
  number: number;
  text: string;
  inFence: boolean;
}

export function linesOf(markdown: string): Line[] {
  let inFence = false;
  return markdown.split('\n').map((text, index) => {
    const fence = /^\s*(```|~~~)/.test(text);
    if (fence) inFence = !inFence;
    return { number: index + 1, text, inFence: inFence || fence };
  });
}

/** Every heading's anchor, with GitHub's `-1`, `-2` suffixes for repeated headings. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of linesOf(markdown)) {
    const heading = line.inFence ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line.text);
    if (!heading) continue;
    const slug = githubSlug(heading[1] ?? '');
    const count = seen.get(slug) ?? 0;
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
    seen.set(slug, count + 1);
  }
  return anchors;
}

/**
 * Lines as a shell reads them: in a code block, a line ending in `\` goes on with the next (the
 * joined line keeps the first line's number), so a command's flags on continuation lines count.
 */
export function commandLines(markdown: string): Line[] {
  const joined: Line[] = [];
  let open: Line | undefined;
  for (const line of linesOf(markdown)) {
    if (open) {
      open.text = `${open.text.replace(/\\\s*$/, ' ')}${line.text}`;
    } else {
      open = { ...line };
    }
    if (!(line.inFence && /\\\s*$/.test(line.text))) {
      joined.push(open);
      open = undefined;
    }
  }
  if (open) joined.push(open);
  return joined;
}

export function inlineCodeSpans(text: string): string[] {
  return [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? '');
}

// ---------------------------------------------------------------------------------------------
// Plan

export interface PlannedAlarm {
  stack: string;
  name: string;
  description: string | undefined;
  severityTag: string | undefined;
  threshold: number | undefined;
  /** Period times evaluation periods: the window the alarm judges. */
  windowSeconds: number | undefined;
}

function numberInput(inputs: Record<string, unknown>, key: string): number | undefined {
  const value = inputs[key];
  return typeof value === 'number' ? value : undefined;
}

/** The period of a metric alarm, or of the metrics its math reads. */
function alarmPeriod(inputs: Record<string, unknown>): number | undefined {
  const queries = Array.isArray(inputs['metricQueries']) ? (inputs['metricQueries'] as { metric?: { period?: unknown } }[]) : [];
  const period = numberInput(inputs, 'period') ?? queries.map((query) => query.metric?.period).find((value) => typeof value === 'number');
  return typeof period === 'number' ? period : undefined;
}

function stringInput(inputs: Record<string, unknown>, key: string): string | undefined {
  const value = inputs[key];
  return typeof value === 'string' ? value : undefined;
}

export function plannedAlarms({ stack, plan }: PlannedStack): PlannedAlarm[] {
  return plan.resources
    .filter((resource) => resource.type === METRIC_ALARM_TYPE || resource.type === COMPOSITE_ALARM_TYPE)
    .map((resource) => {
      const tags = resource.inputs['tags'];
      const severity = tags && typeof tags === 'object' ? (tags as Record<string, unknown>)['Severity'] : undefined;
      const period = alarmPeriod(resource.inputs);
      const evaluations = numberInput(resource.inputs, 'evaluationPeriods');
      return {
        stack,
        name: stringInput(resource.inputs, 'name') ?? stringInput(resource.inputs, 'alarmName') ?? resource.name,
        description: stringInput(resource.inputs, 'alarmDescription'),
        severityTag: typeof severity === 'string' ? severity : undefined,
        threshold: numberInput(resource.inputs, 'threshold'),
        windowSeconds: period !== undefined && evaluations !== undefined ? period * evaluations : undefined,
      };
    });
}

/**
 * Every string the plan passes as a top-level resource input: physical names (`name`, `alarmName`,
 * `identifier`, `replicationGroupId`, secret names…) are among them, whatever the input is called;
 * and each resource's own name in the program (what `pulumi state` and the URN say), for the
 * resources AWS gives no name (an ECR replication configuration).
 */
function plannedNames({ plan }: PlannedStack): Set<string> {
  return new Set(
    plan.resources.flatMap((resource) => [resource.name, ...Object.values(resource.inputs).filter((value): value is string => typeof value === 'string')]),
  );
}

export interface RunbookLink {
  file: string;
  anchor: string;
}

/** `runbooks/<file>.md#<anchor>` out of an alarm description. */
export function runbookLinkIn(description: string): RunbookLink | undefined {
  const match = /runbooks\/([\w.-]+\.md)#([\w-]+)/.exec(description);
  return match ? { file: match[1] ?? '', anchor: match[2] ?? '' } : undefined;
}

function sectionProblem(runbooks: Runbooks, link: RunbookLink): string | undefined {
  const markdown = runbooks.get(link.file);
  if (markdown === undefined) return `runbooks/${link.file} does not exist`;
  if (!headingAnchors(markdown).has(link.anchor)) return `runbooks/${link.file} has no heading #${link.anchor}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Every alarm of every planned stack links, in its description, to a runbook section that exists. */
export function checkAlarmRunbookLinks(runbooks: Runbooks, stacks: readonly PlannedStack[]): string[] {
  const problems: string[] = [];
  for (const alarm of stacks.flatMap(plannedAlarms)) {
    const link = alarm.description === undefined ? undefined : runbookLinkIn(alarm.description);
    if (!link) {
      problems.push(`alarm ${alarm.name}: description links no runbooks/<file>.md#<anchor>`);
      continue;
    }
    const problem = sectionProblem(runbooks, link);
    if (problem) problems.push(`alarm ${alarm.name}: links ${link.file}#${link.anchor}, but ${problem}`);
  }
  return problems;
}

/**
 * The index in runbooks/README.md has a table row for every planned alarm (written
 * `dms-<stack>-<slug>`) that links the same section as the alarm and gives the same severity.
 */
export function checkIndexCoversAlarms(runbooks: Runbooks, stacks: readonly PlannedStack[]): string[] {
  const index = runbooks.get('README.md');
  if (index === undefined) return ['runbooks/README.md does not exist'];
  const rows = linesOf(index).filter((line) => !line.inFence && line.text.trimStart().startsWith('|'));
  const problems: string[] = [];
  const checked = new Set<string>();
  for (const alarm of stacks.flatMap(plannedAlarms)) {
    const slug = alarm.name.slice(`dms-${alarm.stack}-`.length);
    if (checked.has(slug)) continue;
    checked.add(slug);
    const row = rows.find((line) => line.text.includes(`dms-<stack>-${slug}\``));
    if (!row) {
      problems.push(`README.md: the alarm index has no row for dms-<stack>-${slug}`);
      continue;
    }
    const link = alarm.description === undefined ? undefined : runbookLinkIn(alarm.description);
    const rowLink = /\(([\w.-]+\.md)#([\w-]+)\)/.exec(row.text);
    if (link && (rowLink?.[1] !== link.file || rowLink[2] !== link.anchor)) {
      problems.push(
        `README.md:${row.number}: dms-<stack>-${slug} links ${rowLink ? `${rowLink[1]}#${rowLink[2]}` : 'nothing'}, the alarm links ${link.file}#${link.anchor}`,
      );
    }
    const severity = alarm.severityTag;
    const rowSeverity = /\|\s*(P[0-3])\s*\|/.exec(row.text)?.[1];
    if (severity !== rowSeverity) {
      problems.push(`README.md:${row.number}: dms-<stack>-${slug} is ${rowSeverity ?? 'unrated'} here, ${severity ?? 'unrated'} in the plan`);
    }
  }
  return problems;
}

/** Every relative `[…](file.md#anchor)` link between runbooks lands on a runbook and heading that exist. */
export function checkRunbookCrossLinks(runbooks: Runbooks): string[] {
  const problems: string[] = [];
  for (const [file, markdown] of runbooks) {
    for (const line of linesOf(markdown)) {
      if (line.inFence) continue;
      for (const match of line.text.matchAll(/\]\((?!https?:)([\w.-]+\.md)?(?:#([\w-]+))?\)/g)) {
        const [, target, anchor] = match;
        if (!target && !anchor) continue;
        const link = { file: target ?? file, anchor: anchor ?? '' };
        const problem = link.anchor ? sectionProblem(runbooks, link) : runbooks.has(link.file) ? undefined : `runbooks/${link.file} does not exist`;
        if (problem) problems.push(`${file}:${line.number}: links ${target ?? ''}${anchor ? `#${anchor}` : ''}, but ${problem}`);
      }
    }
  }
  return problems;
}

const STACK_PLACEHOLDERS = ['<stack>', '$STACK', '${STACK}'];

/**
 * Names a runbook writes as `dms-<stack>-<slug>`, `dms-<stack>/<secret>` or `<prefix>-dms-<stack>`
 * (with `<stack>`, `$STACK`, `${STACK}` or a concrete stack) exist in the plan as a resource's
 * name: a placeholder name in at least one planned stack, a concrete one in that stack.
 */
export function checkNamedResources(runbooks: Runbooks, stacks: readonly PlannedStack[]): string[] {
  // A stack may be planned more than once (with its opt-in features on): its names are the union.
  const namesByStack = new Map<string, Set<string>>();
  for (const planned of stacks) namesByStack.set(planned.stack, new Set([...(namesByStack.get(planned.stack) ?? []), ...plannedNames(planned)]));
  const stackNames = [...namesByStack.keys()];
  // A name is planned as it is, or as the last part of a path-like input (`alias/dms-<stack>-s3`).
  const isPlanned = (stack: string, name: string) => {
    const names = namesByStack.get(stack);
    return names !== undefined && (names.has(name) || [...names].some((planned) => planned.endsWith(`/${name}`)));
  };
  const stackPattern = [...STACK_PLACEHOLDERS, ...stackNames]
    .map((stack) => stack.replace(/[$<>{}]/g, (character) => `\\${character}`))
    .join('|');
  // Not after `rds:`: automated snapshots are named by RDS, not by the plan.
  const namePattern = new RegExp(`(?<!rds:)\\b((?:[a-z0-9]+-)*)dms-(${stackPattern})(?:([-/])([a-z0-9]+(?:-[a-z0-9]+)*))?(?![\\w-])`, 'g');
  const problems: string[] = [];
  for (const [file, markdown] of runbooks) {
    for (const line of linesOf(markdown)) {
      for (const match of line.text.matchAll(namePattern)) {
        const [token, prefix = '', stack = '', separator = '', rest = ''] = match;
        const candidates = STACK_PLACEHOLDERS.includes(stack) ? stackNames : [stack];
        const known = candidates.some((candidate) => isPlanned(candidate, `${prefix}dms-${candidate}${separator}${rest}`));
        if (!known) {
          problems.push(`${file}:${line.number}: names ${token}, which no planned stack (${candidates.join(', ')}) defines`);
        }
      }
    }
  }
  return problems;
}

/** Shell words after `prefix` up to the end of the command (pipe, `;`, `&&`, `)`, or a closing backtick). */
export function commandWords(text: string, prefix: RegExp): string[][] {
  const commands: string[][] = [];
  for (const match of text.matchAll(prefix)) {
    const rest = text.slice((match.index ?? 0) + match[0].length);
    const end = rest.search(/[|;`)]|&&|\s[#>]/);
    const words = (end === -1 ? rest : rest.slice(0, end)).split(/\s+/).filter(Boolean);
    commands.push(words.map((word) => word.replace(/^["']|["']$/g, '')));
  }
  return commands;
}

const STACK_OPTION_WORDS = new Set(['-s', '--stack']);
/** A word the reader fills in (`<name>`, `<command>`, `…`): documentation of a syntax, not a name. */
const isPlaceholder = (word: string) => /^<[^>]*>$|^…$/.test(word);

/**
 * Stack outputs a runbook reads with `pulumi stack output <name>` are outputs of the plan (of the
 * stack given with `-s`/`--stack` when it is a planned one, otherwise of any planned stack).
 */
export function checkNamedStackOutputs(runbooks: Runbooks, stacks: readonly PlannedStack[]): string[] {
  const problems: string[] = [];
  for (const [file, markdown] of runbooks) {
    for (const line of linesOf(markdown)) {
      for (const words of commandWords(line.text, /pulumi stack output\b/g)) {
        let outputName: string | undefined;
        let stack: string | undefined;
        for (let index = 0; index < words.length; index++) {
          const word = words[index] ?? '';
          if (STACK_OPTION_WORDS.has(word)) stack = words[++index];
          else if (!word.startsWith('-') && outputName === undefined) outputName = word;
        }
        if (outputName === undefined || isPlaceholder(outputName)) continue;
        const candidates = stacks.filter((planned) => planned.stack === stack);
        const searched = candidates.length > 0 ? candidates : stacks;
        if (!searched.some((planned) => Object.hasOwn(planned.plan.outputs, outputName))) {
          problems.push(
            `${file}:${line.number}: reads stack output ${outputName}, which the ${searched.map((planned) => planned.stack).join('/')} plan does not export`,
          );
        }
      }
    }
  }
  return problems;
}

/** An operation of the OpenAPI document: what a runbook's `dms_api` may call. */
export interface ApiOperation {
  method: string;
  /** The document's template (`/admin/users/{id}/mfa`). */
  path: string;
}

const PATH_PARAMETER = /^\{\w+\}$/;
/** What a runbook writes for an id: a shell variable (`$USER_ID`, `${USER_ID}`) or a placeholder (`<id>`, `:id`, `{id}`). */
const RUNBOOK_ID = /^(\$\{?\w+\}?|<[^>]+>|:\w+|\{\w+\})$/;

/** Where a document writes "any segment": `/xrays/…/download`, `/admin/*`. */
const ANY_SEGMENT = /^(…|\.\.\.|\*)$/;

/**
 * Is `path` (the query string aside) served by an operation of `method` (any method when
 * undefined)? A trailing `…` or `*` names every route under the path, one in between any segment.
 */
function isOperation(operations: readonly ApiOperation[], method: string | undefined, path: string): boolean {
  const segments = path.replace(/(?<=.)\/$/, '').split('/');
  const prefix = ANY_SEGMENT.test(segments.at(-1) ?? '') || /…$/.test(path);
  if (prefix) segments[segments.length - 1] = (segments.at(-1) ?? '').replace(/…$/, '');
  if (segments.at(-1) === '') segments.pop();
  return operations.some((operation) => {
    const template = operation.path.split('/');
    if (method !== undefined && operation.method.toUpperCase() !== method) return false;
    if (prefix ? template.length < segments.length : template.length !== segments.length) return false;
    return segments.every((segment, index) => segment === template[index] || ANY_SEGMENT.test(segment)
      || (PATH_PARAMETER.test(template[index] ?? '') && RUNBOOK_ID.test(segment)));
  });
}

/**
 * Every `dms_api METHOD /path` a runbook gives is an operation of the OpenAPI document (the query
 * string aside), so a runbook cannot send an operator to a route that does not exist or by the
 * wrong verb.
 */
export function checkApiCalls(runbooks: Runbooks, operations: readonly ApiOperation[]): string[] {
  const problems: string[] = [];
  for (const [file, markdown] of runbooks) {
    for (const line of linesOf(markdown)) {
      for (const match of line.text.matchAll(/\bdms_api\s+([A-Z]+)\s+["']?(\/[^\s"'?]*)/g)) {
        const [, method = '', path = ''] = match;
        if (!isOperation(operations, method, path)) problems.push(`${file}:${line.number}: calls dms_api ${method} ${path}, which is no operation of the OpenAPI document`);
      }
    }
  }
  return problems;
}

/**
 * Every route a document names is an operation of the OpenAPI document (the query string aside):
 * `METHOD /path` anywhere (in prose, a table or a code block; `dms_api` calls are checkApiCalls'),
 * and a code span that is only a path under one of the API's top-level segments (`/health/ready`),
 * served by some method.
 */
export function checkNamedRoutes(documents: Runbooks, operations: readonly ApiOperation[]): string[] {
  const topLevel = new Set(operations.map((operation) => operation.path.split('/')[1]));
  const problems: string[] = [];
  for (const [file, markdown] of documents) {
    for (const line of linesOf(markdown)) {
      for (const match of line.text.matchAll(/(?<!dms_api\s+)(?<![\w/-])(GET|POST|PUT|PATCH|DELETE)\s+(\/[^\s`"'?),;|]*)/g)) {
        const [, method = '', raw = ''] = match;
        const path = raw.replace(/[.:]+$/, '');
        if (!isOperation(operations, method, path)) problems.push(`${file}:${line.number}: names ${method} ${path}, which is no operation of the OpenAPI document`);
      }
      for (const span of inlineCodeSpans(line.text)) {
        const path = /^(\/[\w{}:<>$…*.-]+(?:\/[\w{}:<>$…*.-]+)*)(\?\S*)?$/.exec(span)?.[1];
        // A top-level segment alone (`/auth`) names the routes under it: a prefix.
        const named = path && path.split('/').length === 2 ? `${path}/…` : path;
        if (named && topLevel.has(named.split('/')[1]) && !isOperation(operations, undefined, named)) {
          problems.push(`${file}:${line.number}: names ${path}, which is no path of the OpenAPI document`);
        }
      }
    }
  }
  return problems;
}

/** Every `npm run <script>` a runbook gives exists in package.json. */
export function checkNpmScripts(runbooks: Runbooks, scripts: readonly string[]): string[] {
  const problems: string[] = [];
  for (const [file, markdown] of runbooks) {
    for (const line of linesOf(markdown)) {
      // `npm run --silent <script>`: npm's own options come before the script.
      for (const match of line.text.matchAll(/\bnpm run(?: --silent| -s)? ([\w:.][\w:.-]*)/g)) {
        const script = match[1] ?? '';
        if (!scripts.includes(script)) problems.push(`${file}:${line.number}: runs npm run ${script}, which package.json does not define`);
      }
    }
  }
  return problems;
}

/** Every `npm run ops -- <command> --flag…` names a registered command and flags it accepts. */
export function checkOpsCommands(runbooks: Runbooks, commands: readonly OpsCommandSpec[]): string[] {
  const problems: string[] = [];
  for (const [file, markdown] of runbooks) {
    for (const line of linesOf(markdown)) {
      for (const words of commandWords(line.text, /\bnpm run(?: --silent| -s)? ops --(?=\s)/g)) {
        const name = words.find((word) => !word.startsWith('-'));
        if (name !== undefined && isPlaceholder(name)) continue;
        const flags = words.filter((word) => word.startsWith('--')).map((word) => word.slice(2).split('=')[0] ?? '');
        if (name === undefined) {
          const unknown = flags.filter((flag) => !UNIVERSAL_OPS_FLAGS.includes(flag));
          for (const flag of unknown) problems.push(`${file}:${line.number}: npm run ops has no global option --${flag}`);
          continue;
        }
        const command = commands.find((candidate) => candidate.name === name);
        if (!command) {
          problems.push(`${file}:${line.number}: runs npm run ops -- ${name}, which the ops CLI does not register`);
          continue;
        }
        for (const flag of flags) {
          if (!command.flags.includes(flag) && !UNIVERSAL_OPS_FLAGS.includes(flag)) {
            problems.push(`${file}:${line.number}: passes --${flag} to ops ${name}, which accepts ${command.flags.map((f) => `--${f}`).join(' ') || 'no options'}`);
          }
        }
      }
    }
  }
  return problems;
}

/** Event names of the contract's §5 table (first column, backticked). */
export function contractLogEvents(contract: string): string[] {
  const section = /^## 5\.[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(contract)?.[1] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|\s*(event|-)/.test(line))
    .flatMap((line) => inlineCodeSpans(line.split('|')[1] ?? ''));
}

/** Event names the API logs literally: `log.warn('rate_limit_store_unavailable', …)` and the like. */
/** Source without its comments: a name mentioned in a comment is not logged. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const LOG_CALL = /\blog\.(?:error|warn|info|http|verbose|debug|silly)\(\s*([^,()]*?)\s*[,)]/g;
const literalsIn = (text: string) => [...text.matchAll(/['"]([a-z][a-z0-9_]*)['"]/g)].map((match) => match[1] ?? '');

/**
 * Events the API logs, read from the code (comments removed): the literals in the first argument
 * of a `log.<level>(` call (`'x'`, or `cond ? 'x' : 'y'`); and, in a file that logs an event held
 * in a variable (`log.warn(event, …)`, `log.warn(failure.event, …)`), the literals bound to an
 * event there (`event: 'x'`, `event = … 'x'`) or passed where that variable comes from. A name
 * only in a comment, or in a file that logs no such variable, is not an event.
 */
export function apiLogEvents(apiSources: ReadonlyMap<string, string>): string[] {
  const events = new Set<string>();
  for (const raw of apiSources.values()) {
    const source = withoutComments(raw);
    const firstArguments = [...source.matchAll(LOG_CALL)].map((match) => match[1] ?? '');
    for (const argument of firstArguments) for (const literal of literalsIn(argument)) events.add(literal);
    if (!firstArguments.some((argument) => /\bevent\b/.test(argument))) continue;
    for (const match of source.matchAll(/\bevent\s*[:=][^;\n]*/g)) for (const literal of literalsIn(match[0])) events.add(literal);
    // Positional: `limiter('login', limits, 'auth_login_rate_limited', …)` into a function logging `event`.
    for (const match of source.matchAll(/['"]([a-z]+(?:_[a-z0-9]+){2,})['"]/g)) events.add(match[1] ?? '');
  }
  return [...events];
}

/**
 * Does the code (comments removed) spell `name` at all: as a string literal, or as a word inside
 * one (a table or function of its SQL, `audit_chain_head`, `audit_purge(…)`)?
 */
function apiSpells(apiSources: ReadonlyMap<string, string>, name: string): boolean {
  const word = new RegExp(`(?<![\\w$])${name}(?![\\w$])`);
  return [...apiSources.values()].some((source) => word.test(withoutComments(source)));
}

function apiEmits(apiSources: ReadonlyMap<string, string>, event: string): boolean {
  return apiLogEvents(apiSources).includes(event);
}

/**
 * Log events a runbook names exist: in a Logs Insights or metric filter (`event = "x"`,
 * `event in [...]`) any name counts; in prose, a backticked snake_case name of an event family
 * (`auth_…`, `audit_…`, `rate_…`: the first words of the contract's events and of those the API
 * logs) counts. Each must be in the contract or a string literal in `api/`.
 */
export function checkNamedLogEvents(
  runbooks: Runbooks,
  contractEvents: readonly string[],
  apiSources: ReadonlyMap<string, string>,
  /** Events logged outside `api/`, by name (the paging engine's `escalation_…`). */
  otherEvents: readonly string[] = [],
): string[] {
  const families = new Set([...contractEvents, ...apiLogEvents(apiSources), ...otherEvents].map((event) => event.split('_')[0] ?? event));
  const isFamilyName = (token: string) => /^[a-z]+(_[a-z0-9]+)+$/.test(token) && families.has(token.split('_')[0] ?? '');
  const problems: string[] = [];
  for (const [file, markdown] of runbooks) {
    for (const line of linesOf(markdown)) {
      // In a query (`event = "x"`, `event in [...]`) the name is an event for certain: it must be logged.
      const queried = new Set<string>();
      for (const match of line.text.matchAll(/\bevent\s*(?:=|==|!=)\s*["']([\w-]+)["']/g)) queried.add(match[1] ?? '');
      for (const match of line.text.matchAll(/\bevent\s+(?:not\s+)?in\s*\[([^\]]*)\]/g)) {
        for (const quoted of (match[1] ?? '').matchAll(/["']([\w-]+)["']/g)) queried.add(quoted[1] ?? '');
      }
      // In prose a backticked name may be a table or an error code the code also spells: only a
      // name the code spells nowhere is reported.
      const named = new Set(queried);
      if (!line.inFence) for (const span of inlineCodeSpans(line.text)) if (isFamilyName(span) && !queried.has(span) && !apiSpells(apiSources, span)) named.add(span);
      for (const event of named) {
        if (!contractEvents.includes(event) && !otherEvents.includes(event) && !apiEmits(apiSources, event)) {
          problems.push(`${file}:${line.number}: names log event ${event}, which neither the contract lists nor api/ or the paging engine emits`);
        }
      }
    }
  }
  return problems;
}

/** Every log event of the contract appears as a string literal somewhere in the API source. */
export function checkContractEventsEmitted(contractEvents: readonly string[], apiSources: ReadonlyMap<string, string>): string[] {
  return contractEvents
    .filter((event) => !apiEmits(apiSources, event))
    .map((event) => `CONTRACT §5 event ${event} is emitted nowhere in api/`);
}

// ---------------------------------------------------------------------------------------------
// What a section says about its alarm

/** The lines of the section under heading `#anchor`, up to the next heading of its level or above. */
function sectionLines(markdown: string, anchor: string): Line[] {
  const lines = linesOf(markdown);
  const seen = new Map<string, number>();
  let start = -1;
  let level = 0;
  for (const [index, line] of lines.entries()) {
    const heading = line.inFence ? null : /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line.text);
    if (!heading) continue;
    const depth = heading[1]!.length;
    if (start >= 0 && depth <= level) return lines.slice(start, index);
    const slug = githubSlug(heading[2] ?? '');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    if (start < 0 && (count === 0 ? slug : `${slug}-${count}`) === anchor) {
      start = index;
      level = depth;
    }
  }
  return start >= 0 ? lines.slice(start) : [];
}

/**
 * A section an alarm links that states a severity (its `**Severity.**` line) states the alarm's:
 * the line's first P-level is the alarm's (it may add when to raise it, after).
 */
export function checkSectionSeverities(runbooks: Runbooks, stacks: readonly PlannedStack[]): string[] {
  const problems = new Set<string>();
  for (const alarm of stacks.flatMap(plannedAlarms)) {
    const link = alarm.description === undefined ? undefined : runbookLinkIn(alarm.description);
    const markdown = link && runbooks.get(link.file);
    if (!link || markdown === undefined || alarm.severityTag === undefined) continue;
    const slug = alarm.name.replace(`dms-${alarm.stack}-`, 'dms-<stack>-');
    const severityLine = sectionLines(markdown, link.anchor).find((line) => /^\*\*Severity\.\*\*/.test(line.text));
    const stated = severityLine && /\bP[0-3]\b/.exec(severityLine.text)?.[0];
    if (severityLine && stated !== alarm.severityTag) problems.add(`${link.file}:${severityLine.number}: says ${stated ?? 'no P-level'} first, ${slug} is ${alarm.severityTag}`);
  }
  return [...problems];
}

// ---------------------------------------------------------------------------------------------
// What a document says about an alarm it names

/** Planned alarms by slug (`login-failures`), over every planned stack. */
function alarmsBySlug(stacks: readonly PlannedStack[]): Map<string, PlannedAlarm[]> {
  const bySlug = new Map<string, PlannedAlarm[]>();
  for (const alarm of stacks.flatMap(plannedAlarms)) {
    const slug = alarm.name.slice(`dms-${alarm.stack}-`.length);
    bySlug.set(slug, [...(bySlug.get(slug) ?? []), alarm]);
  }
  return bySlug;
}

/**
 * The one alarm a line is about: it names exactly one planned alarm, as `dms-<stack>-<slug>`
 * (any stack spelling) or as a code span that is the bare slug (the monitoring table's first
 * column). A line naming two alarms is about neither.
 */
function alarmOfLine(text: string, bySlug: ReadonlyMap<string, PlannedAlarm[]>): PlannedAlarm[] | undefined {
  const slugs = new Set<string>();
  for (const match of text.matchAll(/\bdms-(?:<stack>|\$\{?STACK\}?|[a-z]+)-([a-z0-9]+(?:-[a-z0-9]+)*)/g)) if (bySlug.has(match[1] ?? '')) slugs.add(match[1] ?? '');
  for (const span of inlineCodeSpans(text)) if (bySlug.has(span)) slugs.add(span);
  const [slug, ...others] = slugs;
  return slug !== undefined && others.length === 0 ? bySlug.get(slug) : undefined;
}

const COMPARISON = /(?:\b(?:more than|fewer than|less than|greater than|at least|at most|above|below|under|over|older than|exceeds?)|≥|≤|>=|<=|>|<)\s*(\d[\d,]*(?:\.\d+)?)/g;

/**
 * A threshold a document states for an alarm it names on that line ("more than 50 …",
 * "> 80% …", "below 5% of …") is the alarm's: its planned threshold, a number its description
 * states (a percentage of something the plan computes), or its window in minutes or hours.
 */
export function checkProseThresholds(documents: Runbooks, stacks: readonly PlannedStack[]): string[] {
  const bySlug = alarmsBySlug(stacks);
  const problems: string[] = [];
  for (const [file, markdown] of documents) {
    for (const line of linesOf(markdown)) {
      const alarms = line.inFence ? undefined : alarmOfLine(line.text, bySlug);
      if (!alarms) continue;
      const known = new Set<number>();
      for (const alarm of alarms) {
        if (alarm.threshold !== undefined) known.add(alarm.threshold);
        if (alarm.windowSeconds !== undefined) [60, 3600].forEach((unit) => known.add(alarm.windowSeconds! / unit));
        for (const number of (alarm.description ?? '').matchAll(/\d+(?:\.\d+)?/g)) known.add(Number(number[0]));
      }
      for (const match of line.text.matchAll(COMPARISON)) {
        const stated = Number((match[1] ?? '').replace(/,/g, ''));
        if (!known.has(stated)) {
          const name = alarms[0]!.name.replace(`dms-${alarms[0]!.stack}-`, 'dms-<stack>-');
          problems.push(`${file}:${line.number}: says "${match[0]}" of ${name}, whose threshold is ${[...new Set(alarms.map((alarm) => alarm.threshold))].join(' / ')} (${alarms[0]!.description ?? 'no description'})`);
        }
      }
    }
  }
  return problems;
}

/** A table row about one alarm (its name on the row) that gives a severity cell gives the alarm's. */
export function checkNamedAlarmSeverities(documents: Runbooks, stacks: readonly PlannedStack[]): string[] {
  const bySlug = alarmsBySlug(stacks);
  const problems: string[] = [];
  for (const [file, markdown] of documents) {
    for (const line of linesOf(markdown)) {
      if (line.inFence || !line.text.trimStart().startsWith('|')) continue;
      const alarms = alarmOfLine(line.text, bySlug);
      const stated = /\|\s*(P[0-3])\s*(?=\|)/.exec(line.text)?.[1];
      const severity = alarms?.[0]?.severityTag;
      if (alarms && stated && severity && stated !== severity) {
        problems.push(`${file}:${line.number}: rates ${alarms[0]!.name.replace(`dms-${alarms[0]!.stack}-`, 'dms-<stack>-')} ${stated}, the plan ${severity}`);
      }
    }
  }
  return problems;
}
