// The runbooks cannot drift from the system: every alarm of the Pulumi program links to a runbook
// section that exists, and every alarm, resource, stack output, npm script, ops command, flag and
// log event a runbook names exists in the code. The last block proves the checks fail on a
// runbook that names things that do not exist.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ESCALATION_LOG_EVENTS } from '../infra/monitoring/escalation/levels.js';
import { opsCommands } from '../runbooks/ops/registry.js';
import { openApiDocument } from '../api/openapi/document.js';
import { apiLogCallFields, emfRecordFields, loggerBaseFields } from './support/api-log-fields.js';
import { awsCliCalls, checkAwsCliCalls, sdkOperations } from './support/aws-cli-refs.js';
import { checkInsightsFields, insightsQueries, queryFields } from './support/insights-refs.js';
import {
  checkAlarmRunbookLinks,
  checkApiCalls,
  checkNamedAlarmSeverities,
  checkNamedRoutes,
  checkProseThresholds,
  checkSectionSeverities,
  checkContractEventsEmitted,
  checkIndexCoversAlarms,
  checkNamedLogEvents,
  checkNamedResources,
  checkNamedStackOutputs,
  checkNpmScripts,
  checkOpsCommands,
  checkRunbookCrossLinks,
  contractLogEvents,
  githubSlug,
  headingAnchors,
  METRIC_ALARM_TYPE,
  plannedAlarms,
  type ApiOperation,
  type OpsCommandSpec,
  type Plan,
  type PlannedStack,
  type Runbooks,
} from './support/runbook-refs.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const PLANNED_STACKS = ['production', 'staging'];
/** The runbook files the platform brief fixes (alarm descriptions and other teams link to them). */
const REQUIRED_RUNBOOKS = [
  'README.md',
  'auth-abuse.md',
  'database.md',
  'audit-log-failure.md',
  'errors-and-rollback.md',
  'rate-limits.md',
  'performance.md',
  'breach-response.md',
  'backup-restore.md',
  'cost-review.md',
  'secret-rotation.md',
  'operations.md',
];
/** The contract, kept in the repository. */
const CONTRACT_PATH = 'docs/contract.md';
const PLAN_TIMEOUT_MS = 180_000;

function memo<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}

const runbooks = memo(async (): Promise<Runbooks> => {
  const directory = path.join(REPO_ROOT, 'runbooks');
  const files = (await readdir(directory)).filter((file) => file.endsWith('.md')).sort();
  return new Map(await Promise.all(files.map(async (file) => [file, await readFile(path.join(directory, file), 'utf8')] as const)));
});

/**
 * Everything an operator reads: the runbooks, docs/*.md and the README, by path from the
 * repository root. What these name must exist as much as what a runbook names.
 */
const documents = memo(async (): Promise<Runbooks> => {
  const read = async (directory: string) => {
    const files = (await readdir(path.join(REPO_ROOT, directory))).filter((file) => file.endsWith('.md')).sort();
    return Promise.all(files.map(async (file) => [`${directory}/${file}`, await readFile(path.join(REPO_ROOT, directory, file), 'utf8')] as const));
  };
  return new Map([...(await read('runbooks')), ...(await read('docs')), ['README.md', await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8')]]);
});

/**
 * Fields the API's log lines carry: the logger's own (from a line it writes), those of every log
 * call in api/, and those of the EMF record it writes per request (from a record it builds).
 */
const loggedFields = memo(async () => {
  const calls = apiLogCallFields(REPO_ROOT);
  return { fields: new Set([...(await loggerBaseFields()), ...calls.fields, ...emfRecordFields()]), unnamed: calls.unnamed };
});

const npmScripts = memo(async (): Promise<string[]> => {
  const manifest = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  return Object.keys(manifest.scripts ?? {});
});

const contract = memo(async (): Promise<string> => readFile(path.join(REPO_ROOT, CONTRACT_PATH), 'utf8'));

/** `api/**\/*.ts` by path; the checks look for event names as string literals. */
const apiSources = memo(async (): Promise<ReadonlyMap<string, string>> => {
  const directory = path.join(REPO_ROOT, 'api');
  const files = (await readdir(directory, { recursive: true })).filter((file) => file.endsWith('.ts')).sort();
  return new Map(await Promise.all(files.map(async (file) => [`api/${file}`, await readFile(path.join(directory, file), 'utf8')] as const)));
});

function isPlan(value: unknown): value is Plan {
  const plan = value as Partial<Plan> | null;
  return typeof plan === 'object' && plan !== null && Array.isArray(plan.resources) && typeof plan.outputs === 'object' && plan.outputs !== null;
}

/**
 * `planStack` of infra/plan.ts for each stack. Imported by URL so this file loads (and the fixture
 * tests run) even while the plan module is missing or broken; the plan checks then fail saying why.
 */
const plannedStacks = memo(async (): Promise<PlannedStack[]> => {
  const module = (await import(pathToFileURL(path.join(REPO_ROOT, 'infra/plan.ts')).href)) as { planStack?: unknown };
  const { planStack } = module;
  if (typeof planStack !== 'function') throw new Error('infra/plan.ts does not export planStack(stack)');
  const stacks: PlannedStack[] = [];
  // One stack at a time: each run sets the Pulumi runtime's mocks and config for its stack.
  for (const stack of PLANNED_STACKS) {
    const plan: unknown = await (planStack as (stack: string) => Promise<unknown>)(stack);
    if (!isPlan(plan)) throw new Error(`planStack('${stack}') did not return { resources: [...], outputs: {...} }`);
    stacks.push({ stack, plan });
  }
  return stacks;
});

/**
 * Production planned with every opt-in feature on (the account trail, Incident Manager): the
 * docs name those resources too, and they exist wherever a stack turns them on.
 */
const optInStack = memo(async (): Promise<PlannedStack> => {
  const module = (await import(pathToFileURL(path.join(REPO_ROOT, 'infra/plan.ts')).href)) as { planWithConfig?: unknown };
  const stackFile = (await import(pathToFileURL(path.join(REPO_ROOT, 'infra/plan/stack-file.ts')).href)) as { loadStackFile: (stack: string) => { config: Record<string, unknown> } };
  const config = stackFile.loadStackFile('production').config;
  const plan = await (module.planWithConfig as (stack: string, config: Record<string, unknown>) => Promise<unknown>)('production', {
    ...config,
    'dms:account': { ...(config['dms:account'] as object | undefined), cloudTrail: true },
    'dms:monitoring': { ...(config['dms:monitoring'] as object), incidentManager: true },
  });
  if (!isPlan(plan)) throw new Error("planWithConfig('production', opt-ins on) did not return a plan");
  return { stack: 'production', plan };
});

/** Every operation the API serves, from the document it publishes. */
const documentedOperations: readonly ApiOperation[] = Object.entries((openApiDocument() as { paths: Record<string, Record<string, unknown>> }).paths)
  .flatMap(([path, operations]) => Object.keys(operations).map((method) => ({ method, path })));

const registeredOps: readonly OpsCommandSpec[] = opsCommands.map((command) => ({ name: command.name, flags: command.flags }));

function assertNoProblems(problems: readonly string[]): void {
  assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
}

describe('runbooks: the files the platform brief names exist', () => {
  it('has every runbook file alarm descriptions and other runbooks rely on', async () => {
    const present = await runbooks();
    assert.deepEqual(REQUIRED_RUNBOOKS.filter((file) => !present.has(file)), []);
  });
});

describe('runbooks: every alarm of the program links to a runbook section that exists', function () {
  this.timeout(PLAN_TIMEOUT_MS);

  it('plans alarms for production and staging', async () => {
    for (const planned of await plannedStacks()) {
      assert.ok(plannedAlarms(planned).length > 0, `planStack('${planned.stack}') has no ${METRIC_ALARM_TYPE}`);
    }
  });

  it("links each alarm's description to runbooks/<file>.md#<anchor>, a heading that exists", async () => {
    assertNoProblems(checkAlarmRunbookLinks(await runbooks(), await plannedStacks()));
  });

  it("states each alarm's severity first on the **Severity.** line of the section it links", async () => {
    assertNoProblems(checkSectionSeverities(await runbooks(), await plannedStacks()));
  });

  it('lists each alarm in the README index, with the same section and severity', async () => {
    assertNoProblems(checkIndexCoversAlarms(await runbooks(), await plannedStacks()));
  });
});

describe('runbooks, docs and README: what they name exists in the code', function () {
  this.timeout(PLAN_TIMEOUT_MS);

  it('reads runbooks/, docs/ and the README', async () => {
    const files = [...(await documents()).keys()];
    assert.ok(['runbooks/database.md', 'docs/monitoring.md', 'README.md'].every((file) => files.includes(file)), files.join(', '));
  });

  it('names only alarms and resources (dms-<stack>-…) the plan creates', async () => {
    assertNoProblems(checkNamedResources(await documents(), [...(await plannedStacks()), await optInStack()]));
  });

  it('reads only stack outputs the plan exports (pulumi stack output <name>)', async () => {
    assertNoProblems(checkNamedStackOutputs(await documents(), await plannedStacks()));
  });

  it('runs only npm scripts package.json defines', async () => {
    assertNoProblems(checkNpmScripts(await documents(), await npmScripts()));
  });

  it('runs only ops commands the ops CLI registers, with flags they accept', async () => {
    assert.ok(registeredOps.length > 0, 'runbooks/ops/registry.ts registers no command');
    assertNoProblems(checkOpsCommands(await documents(), registeredOps));
  });

  it('calls only operations of the OpenAPI document (dms_api METHOD /path)', async () => {
    assertNoProblems(checkApiCalls(await documents(), documentedOperations));
  });

  it('names only routes of the OpenAPI document (METHOD /path, or a path alone)', async () => {
    assertNoProblems(checkNamedRoutes(await documents(), documentedOperations));
  });

  it('names only log events the contract lists, the API emits, or the paging engine logs', async () => {
    assertNoProblems(checkNamedLogEvents(await documents(), contractLogEvents(await contract()), await apiSources(), Object.values(ESCALATION_LOG_EVENTS)));
  });

  it('queries only fields the API logs (Logs Insights on the API log group)', async () => {
    const { fields, unnamed } = await loggedFields();
    assert.deepEqual(unnamed, [], 'log calls whose fields the type checker cannot name (a Record<string, …>): give them a precise type');
    assert.ok(fields.has('event') && fields.has('statusCode'), [...fields].join(', '));
    const queries = insightsQueries(await documents());
    assert.ok(queries.length > 0, 'found no Logs Insights query');
    assertNoProblems(checkInsightsFields(queries, fields));
  });

  it('runs aws CLI commands the AWS SDK has, with flags that are their inputs', async () => {
    const calls = awsCliCalls(await documents());
    assert.ok(calls.length > 0, 'found no aws CLI command');
    assertNoProblems(checkAwsCliCalls(calls, await sdkOperations(calls)));
  });

  it("states each named alarm's threshold as the plan has it", async () => {
    assertNoProblems(checkProseThresholds(await documents(), await plannedStacks()));
  });

  it("rates each alarm a table row names with the plan's severity", async () => {
    assertNoProblems(checkNamedAlarmSeverities(await documents(), await plannedStacks()));
  });

  it('links only to runbook headings that exist', async () => {
    assertNoProblems(checkRunbookCrossLinks(await runbooks()));
  });
});

describe('api: every log event of the contract is emitted', () => {
  it('reads the event table of CONTRACT §5', async () => {
    const events = contractLogEvents(await contract());
    assert.ok(events.includes('http_access') && events.includes('audit_write_failed'), `parsed: ${events.join(', ')}`);
  });

  it('finds each event name as a string literal in api/**/*.ts', async () => {
    assertNoProblems(checkContractEventsEmitted(contractLogEvents(await contract()), await apiSources()));
  });
});

describe('runbook anchors are GitHub heading slugs', () => {
  it('lower-cases, drops punctuation and turns each space into a hyphen', () => {
    assert.equal(githubSlug('5xx error rate'), '5xx-error-rate');
    assert.equal(githubSlug('ECS CPU or memory high'), 'ecs-cpu-or-memory-high');
    assert.equal(githubSlug('1. Contain: block, revoke (now)!'), '1-contain-block-revoke-now');
    assert.equal(githubSlug('Restore `dms_app` [password](x.md)'), 'restore-dms_app-password');
  });

  it('numbers repeated headings as GitHub does, and ignores # lines in code blocks', () => {
    const anchors = headingAnchors('# Title\n## Steps\n```bash\n# not a heading\n```\n## Steps\n### Steps\n');
    assert.deepEqual([...anchors], ['title', 'steps', 'steps-1', 'steps-2']);
  });
});

describe('the checks report a runbook that drifted from the system', () => {
  const fixtureRunbook = [
    '# Auth abuse',
    '## Login failure spike',
    'Alarm `dms-<stack>-login-failures` fired; so did `dms-<stack>-no-such-alarm` and `dms-production-also-missing`.',
    'Secret `dms-<stack>/jwt-keys` is fine, `dms-<stack>/no-such-secret` is not, nor is `aws-waf-logs-dms-<stack>`.',
    '```bash',
    'npm run ops -- top-offenders --stack "$STACK" --since 1h',
    'npm run ops -- top-offenders --stack "$STACK" --window 1h',
    'npm run ops -- reboot-everything --stack "$STACK"',
    'npm run audit:verify',
    'npm run audit:repair',
    'export LOG_GROUP="$(pulumi stack output logGroupName -s "$STACK")"',
    'pulumi stack output --json -s staging noSuchOutput > outputs.json',
    "insights 'filter event = \"made_up_event\" or event in [\"auth_login_success\", \"api_emitted_extra\"]'",
    '```',
    'See [the spike](#login-failure-spike), [flooding](#login-flooding) and [database](database.md#replica-lag).',
    'Events: `auth_login_success`, `auth_login_bogus`, `rate_limit_store_gone`, and `invalid_credentials` (an error code, not an event).',
    'Paging: `escalation_step` went out, `escalation_paged` never exists.',
    '```bash',
    'dms_api DELETE "/admin/users/$USER_ID/mfa"; dms_api GET "/admin/audit?actor=$USER_ID" ; dms_api PATCH /admin/users/<id> \'{}\'',
    'dms_api POST "/admin/users/$USER_ID/reset-password"; dms_api DELETE "/admin/users/$USER_ID"',
    '```',
  ].join('\n');

  const fixtureIndex = [
    '# Runbooks',
    '| alarm | severity | fires when | section |',
    '|---|---|---|---|',
    '| `dms-<stack>-login-failures` | P2 | failures | [auth-abuse.md#login-failure-spike](auth-abuse.md#login-failure-spike) |',
    '| `dms-<stack>-broken-anchor` | P1 | broken | [auth-abuse.md#login-failure-spike](auth-abuse.md#login-failure-spike) |',
  ].join('\n');

  const fixtureRunbooks: Runbooks = new Map([
    ['README.md', fixtureIndex],
    ['auth-abuse.md', fixtureRunbook],
  ]);

  const alarm = (stack: string, slug: string, description: string, threshold = 1) => ({
    type: METRIC_ALARM_TYPE,
    name: `dms-${stack}-${slug}`,
    inputs: { name: `dms-${stack}-${slug}`, alarmDescription: description, tags: { Severity: description.slice(0, 2) }, threshold, period: 300, evaluationPeriods: 1 },
  });
  const base = 'https://example.test/dms/blob/main';
  const fixturePlan = (stack: string): PlannedStack => ({
    stack,
    plan: {
      resources: [
        alarm(stack, 'login-failures', `P1: Login failures, more than 50 in 5 minutes. Runbook: ${base}/runbooks/auth-abuse.md#login-failure-spike`, 50),
        alarm(stack, 'broken-anchor', `P1: Broken. Runbook: ${base}/runbooks/auth-abuse.md#no-such-section`),
        alarm(stack, 'missing-file', `P2: Missing. Runbook: ${base}/runbooks/nowhere.md#anything`),
        alarm(stack, 'no-link', 'P3: No runbook link at all'),
        { type: 'aws:secretsmanager/secret:Secret', name: 'jwt', inputs: { name: `dms-${stack}/jwt-keys` } },
      ],
      outputs: { logGroupName: `/dms/${stack}/api` },
    },
  });
  const fixtureStacks = [fixturePlan('production'), fixturePlan('staging')];
  const fixtureOps: OpsCommandSpec[] = [{ name: 'top-offenders', flags: ['stack', 'outputs', 'since', 'limit', 'help'] }];

  it('reports alarms that link a missing section, a missing file, or nothing', () => {
    assert.deepEqual(checkAlarmRunbookLinks(fixtureRunbooks, [fixtureStacks[0]!]), [
      'alarm dms-production-broken-anchor: links auth-abuse.md#no-such-section, but runbooks/auth-abuse.md has no heading #no-such-section',
      'alarm dms-production-missing-file: links nowhere.md#anything, but runbooks/nowhere.md does not exist',
      'alarm dms-production-no-link: description links no runbooks/<file>.md#<anchor>',
    ]);
  });

  it('reports alarms missing from the index, and rows that disagree with the alarm', () => {
    assert.deepEqual(checkIndexCoversAlarms(fixtureRunbooks, fixtureStacks), [
      'README.md:4: dms-<stack>-login-failures is P2 here, P1 in the plan',
      'README.md:5: dms-<stack>-broken-anchor links auth-abuse.md#login-failure-spike, the alarm links auth-abuse.md#no-such-section',
      'README.md: the alarm index has no row for dms-<stack>-missing-file',
      'README.md: the alarm index has no row for dms-<stack>-no-link',
    ]);
  });

  it('reports alarm and resource names the plan does not create', () => {
    assert.deepEqual(checkNamedResources(fixtureRunbooks, fixtureStacks), [
      'auth-abuse.md:3: names dms-<stack>-no-such-alarm, which no planned stack (production, staging) defines',
      'auth-abuse.md:3: names dms-production-also-missing, which no planned stack (production) defines',
      'auth-abuse.md:4: names dms-<stack>/no-such-secret, which no planned stack (production, staging) defines',
      'auth-abuse.md:4: names aws-waf-logs-dms-<stack>, which no planned stack (production, staging) defines',
    ]);
  });

  it('reports stack outputs the plan does not export', () => {
    assert.deepEqual(checkNamedStackOutputs(fixtureRunbooks, fixtureStacks), [
      'auth-abuse.md:12: reads stack output noSuchOutput, which the staging plan does not export',
    ]);
  });

  it('reports npm scripts package.json does not define', () => {
    assert.deepEqual(checkNpmScripts(fixtureRunbooks, ['ops', 'audit:verify']), [
      'auth-abuse.md:10: runs npm run audit:repair, which package.json does not define',
    ]);
  });

  it('reports ops commands the CLI does not register and flags a command does not accept', () => {
    assert.deepEqual(checkOpsCommands(fixtureRunbooks, fixtureOps), [
      'auth-abuse.md:7: passes --window to ops top-offenders, which accepts --stack --outputs --since --limit --help',
      'auth-abuse.md:8: runs npm run ops -- reboot-everything, which the ops CLI does not register',
    ]);
  });

  it('reports log events neither the contract lists nor the API emits', () => {
    const apiEmitting = new Map([
      ['api/extra.ts', "log.warn('api_emitted_extra', {})"],
      ['api/store.ts', "this.log.warn('rate_limit_store_unavailable', { store: 'redis' })"],
    ]);
    assert.deepEqual(checkNamedLogEvents(fixtureRunbooks, ['auth_login_success', 'http_access'], apiEmitting, ['escalation_step']), [
      'auth-abuse.md:13: names log event made_up_event, which neither the contract lists nor api/ or the paging engine emits',
      'auth-abuse.md:16: names log event auth_login_bogus, which neither the contract lists nor api/ or the paging engine emits',
      'auth-abuse.md:16: names log event rate_limit_store_gone, which neither the contract lists nor api/ or the paging engine emits',
      'auth-abuse.md:17: names log event escalation_paged, which neither the contract lists nor api/ or the paging engine emits',
    ]);
  });

  it('counts an event only where the code logs it: not in a comment, not as some other string', () => {
    const sources = new Map([
      ['api/comment.ts', "// log.warn('commented_out_event') was removed\nlog.info('auth_login_success', {});"],
      ['api/codes.ts', "export const ERROR_CODES = ['quota_exceeded_today'];"],
    ]);
    const queries: Runbooks = new Map([['auth-abuse.md', [
      '# Auth abuse',
      "insights 'filter event = \"commented_out_event\"'",
      "insights 'filter event in [\"quota_exceeded_today\", \"auth_login_success\"]'",
    ].join('\n')]]);
    assert.deepEqual(checkNamedLogEvents(queries, [], sources), [
      'auth-abuse.md:2: names log event commented_out_event, which neither the contract lists nor api/ or the paging engine emits',
      'auth-abuse.md:3: names log event quota_exceeded_today, which neither the contract lists nor api/ or the paging engine emits',
    ]);
    assert.deepEqual(checkContractEventsEmitted(['commented_out_event', 'auth_login_success'], sources), [
      'CONTRACT §5 event commented_out_event is emitted nowhere in api/',
    ]);
  });

  it("reports a section whose **Severity.** line disagrees with the alarm that links it", () => {
    const sections: Runbooks = new Map([['auth-abuse.md', [
      '# Auth abuse',
      '## Login failure spike',
      '**Severity.** P2: a person looks today; P0 if an account was taken over.',
      '## Broken anchor',
      '**Severity.** P1: full escalation path.',
    ].join('\n')]]);
    assert.deepEqual(checkSectionSeverities(sections, [fixtureStacks[0]!]), [
      'auth-abuse.md:3: says P2 first, dms-<stack>-login-failures is P1',
    ]);
  });

  it('reports dms_api calls of routes the OpenAPI document does not have, or by another verb', () => {
    const operations: ApiOperation[] = [
      { method: 'delete', path: '/admin/users/{id}/mfa' },
      { method: 'get', path: '/admin/audit' },
      { method: 'patch', path: '/admin/users/{id}' },
    ];
    assert.deepEqual(checkApiCalls(fixtureRunbooks, operations), [
      'auth-abuse.md:20: calls dms_api POST /admin/users/$USER_ID/reset-password, which is no operation of the OpenAPI document',
      'auth-abuse.md:20: calls dms_api DELETE /admin/users/$USER_ID, which is no operation of the OpenAPI document',
    ]);
  });

  it('reports links to headings or runbooks that do not exist', () => {
    assert.deepEqual(checkRunbookCrossLinks(fixtureRunbooks), [
      'auth-abuse.md:15: links #login-flooding, but runbooks/auth-abuse.md has no heading #login-flooding',
      'auth-abuse.md:15: links database.md#replica-lag, but runbooks/database.md does not exist',
    ]);
  });

  it('reports contract events the API never emits', () => {
    const sources = new Map([['api/auth.ts', "log.info('auth_login_success', { userId })\nconst other = \"http_access_extra\";"]]);
    assert.deepEqual(checkContractEventsEmitted(['auth_login_success', 'http_access'], sources), [
      'CONTRACT §5 event http_access is emitted nowhere in api/',
    ]);
  });

  it('reads docs/ and the README as it reads a runbook: names, npm options and placeholders', () => {
    const documents: Runbooks = new Map([
      ['docs/monitoring.md', 'Response plans (`dms-<stack>-p0` … `-p3`) and `npm run ops -- <command> --help`; `pulumi stack output <name>`.'],
      ['README.md', '`npm run --silent bench -- --json` and `npm run --silent bench:nope`; `npm run -s ops -- top-offenders --window 1h`.'],
    ]);
    assert.deepEqual(checkNamedResources(documents, fixtureStacks), [
      'docs/monitoring.md:1: names dms-<stack>-p0, which no planned stack (production, staging) defines',
    ]);
    assert.deepEqual(checkNpmScripts(documents, ['bench', 'ops']), ['README.md:1: runs npm run bench:nope, which package.json does not define']);
    assert.deepEqual(checkOpsCommands(documents, fixtureOps), [
      'README.md:1: passes --window to ops top-offenders, which accepts --stack --outputs --since --limit --help',
    ]);
    assert.deepEqual(checkNamedStackOutputs(documents, fixtureStacks), []);
  });

  it('reports Logs Insights fields no API log line carries (fields derived from the code)', async function () {
    this.timeout(PLAN_TIMEOUT_MS);
    const { fields } = await loggedFields();
    // Derived, not listed: the logger's own fields, a shorthand field, a conditional spread's, a record's members.
    assert.ok(['timestamp', 'level', 'event', 'service', 'env', 'reqId', 'errorCode', 'ids.*'].every((field) => fields.has(field)), [...fields].join(', '));
    const queries = insightsQueries(new Map([['runbooks/x.md', [
      '```bash',
      "insights 'filter event = \"http_access\" and statusCode >= 500 | stats count(*) as failures by durationMS, ids.pid' 30",
      'insights "filter userId = \\"$USER_ID\\" and ispresent(sesionId) | fields @timestamp, @mesage" 60',
      'LOG_GROUP="aws-waf-logs-dms-$STACK" insights \'filter action = "BLOCK" | stats count(*) by httpRequest.clientIp\'',
      '```',
      '```',
      'filter event = "auth_login_locked" | stats count(*) as n by ip, clientKey',
      '```',
    ].join('\n')]]));
    assert.deepEqual(queries.map((query) => query.line), [2, 3, 7]);
    assert.deepEqual(queryFields(queries[0]!.query), ['event', 'statusCode', 'durationMS', 'ids.pid']);
    assert.deepEqual(checkInsightsFields(queries, fields), [
      'runbooks/x.md:2: the query reads field durationMS, which no API log line carries',
      'runbooks/x.md:3: the query reads field sesionId, which no API log line carries',
      'runbooks/x.md:3: the query reads field @mesage, which no API log line carries',
      'runbooks/x.md:7: the query reads field clientKey, which no API log line carries',
    ]);
  });

  it('reports aws CLI commands and flags the AWS SDK does not have, and services it cannot verify', async function () {
    this.timeout(PLAN_TIMEOUT_MS);
    const calls = awsCliCalls(new Map([['runbooks/x.md', [
      '```bash',
      'aws rds describe-db-instances --db-instance-identifier "$DB" --query \'DBInstances[0].DBInstanceStatus\' --output text',
      'aws rds describe-db-instances --db-instance-identifer "$DB"',
      'aws ecs describe-tasks --cluster "$CLUSTER" \\',
      '  --tasks $(aws ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" --query taskArns --output text) \\',
      '  --includes TAGS',
      'aws rds wait db-instance-available --db-instance-identifier "$DB"',
      'aws rds wait db-instance-gone --db-instance-identifier "$DB"',
      'aws rds delete-db-instance --db-instance-identifier "$DB" --no-skip-final-snapshot --no-delete-automated-backups',
      'aws logs tail "/aws/rds/instance/$DB/postgresql" --since 30m',
      'aws s3 cp report.json "s3://$BUCKET/"',
      '```',
      'Or `aws ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --force-new-deployment --desierd-count 2`.',
    ].join('\n')]]));
    assert.deepEqual(calls.map((call) => `${call.line} ${call.service} ${call.command}`), [
      '2 rds describe-db-instances', '3 rds describe-db-instances', '4 ecs describe-tasks', '4 ecs list-tasks', '7 rds wait db-instance-available',
      '8 rds wait db-instance-gone', '9 rds delete-db-instance', '10 logs tail', '11 s3 cp', '13 ecs update-service',
    ]);
    assert.deepEqual(checkAwsCliCalls(calls, await sdkOperations(calls)), [
      'runbooks/x.md:3: aws rds describe-db-instances: --db-instance-identifer is no input of DescribeDBInstances',
      'runbooks/x.md:4: aws ecs describe-tasks: --includes is no input of DescribeTasks',
      'runbooks/x.md:8: aws rds wait db-instance-gone: no such command: @aws-sdk/client-rds has no waiter for "db-instance-gone"',
      'runbooks/x.md:10: aws logs tail: no such command: @aws-sdk/client-cloudwatch-logs has no operation "tail"',
      'runbooks/x.md:11: aws s3 cp: cannot be verified: no @aws-sdk client package is mapped for the CLI service "s3" (test/support/aws-cli-services.json)',
      'runbooks/x.md:13: aws ecs update-service: --desierd-count is no input of UpdateService',
    ]);
  });

  it('reports routes (METHOD /path, or a path alone) the OpenAPI document does not have', () => {
    const operations: ApiOperation[] = [
      { method: 'get', path: '/health/ready' },
      { method: 'get', path: '/patients/{id}' },
      { method: 'get', path: '/xrays/{id}/download' },
      { method: 'post', path: '/auth/login' },
    ];
    const documents: Runbooks = new Map([['docs/x.md', [
      'Readiness is `GET /health/ready`; `GET /health/live` is not a route, nor is `DELETE /patients/:id`.',
      'Sensitive prefixes: `/auth`, `/xrays/…/download` and `GET /patients/<id>`; `/patients/{id}/notes` is gone.',
      'Log groups like `/aws/rds/instance/x/postgresql` are not routes.',
    ].join('\n')]]);
    assert.deepEqual(checkNamedRoutes(documents, operations), [
      'docs/x.md:1: names GET /health/live, which is no operation of the OpenAPI document',
      'docs/x.md:1: names DELETE /patients/:id, which is no operation of the OpenAPI document',
      'docs/x.md:2: names /patients/{id}/notes, which is no path of the OpenAPI document',
    ]);
  });

  it('reports a threshold or a severity a document states for an alarm that the plan does not have', () => {
    const documents: Runbooks = new Map([['docs/x.md', [
      '**Means.** `dms-<stack>-login-failures`: more than 50 failed logins in 5 minutes.',
      '`dms-<stack>-login-failures` fires at more than 40 failed logins over 5 minutes.',
      '| `login-failures` | LoginFailures | > 50 in 5 min | P2 | auth-abuse.md#login-failure-spike |',
      '| `broken-anchor` | Broken | < 3 | P1 | auth-abuse.md#no-such-section |',
      'Both `dms-<stack>-login-failures` and `dms-<stack>-broken-anchor` above 7: a line about two alarms is about neither.',
    ].join('\n')]]);
    assert.deepEqual(checkProseThresholds(documents, fixtureStacks), [
      'docs/x.md:2: says "more than 40" of dms-<stack>-login-failures, whose threshold is 50 (P1: Login failures, more than 50 in 5 minutes. Runbook: https://example.test/dms/blob/main/runbooks/auth-abuse.md#login-failure-spike)',
      'docs/x.md:4: says "< 3" of dms-<stack>-broken-anchor, whose threshold is 1 (P1: Broken. Runbook: https://example.test/dms/blob/main/runbooks/auth-abuse.md#no-such-section)',
    ]);
    assert.deepEqual(checkNamedAlarmSeverities(documents, fixtureStacks), ['docs/x.md:3: rates dms-<stack>-login-failures P2, the plan P1']);
  });

  it('reads the event names from the first column of the contract §5 table', () => {
    const text = [
      '## 4. Audit',
      '| `audit_logs` | not an event |',
      '## 5. Logs (one JSON object per line)',
      '| event | when |',
      '|---|---|',
      '| `http_access` | every request: `method`, `path` |',
      '| `auth_login_success`, `auth_login_locked` | login outcomes |',
      '## 6. Later',
      '| `later_thing` | not §5 |',
    ].join('\n');
    assert.deepEqual(contractLogEvents(text), ['http_access', 'auth_login_success', 'auth_login_locked']);
  });
});
