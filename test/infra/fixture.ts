/**
 * Plans shared by the infra tests: each stack file is planned once per mocha process (the runs are
 * in-process and queued), and helpers find resources the way a reviewer reads the plan.
 */
import { strict as assert } from 'node:assert';
import { runPlan } from '../../infra/plan.js';
import type { RecordedResource, StackRun } from '../../infra/plan/run.js';
import { loadStackFile } from '../../infra/plan/stack-file.js';

export const STACKS = ['production', 'staging'] as const;
export type StackName = (typeof STACKS)[number];

const runs = new Map<string, Promise<StackRun>>();

/** The plan of a stack file as committed. Do not mutate it: clone with `structuredClone` first. */
export function planned(stack: StackName): Promise<StackRun> {
  let run = runs.get(stack);
  if (!run) {
    run = runPlan(stack);
    runs.set(stack, run);
  }
  return run;
}

/** The plan of a stack file with some config sections changed. */
export function plannedWith(stack: StackName, change: (config: Record<string, unknown>) => void): Promise<StackRun> {
  const config = structuredClone(loadStackFile(stack).config);
  change(config);
  return runPlan(stack, config);
}

/** A config section of a stack file, as an object to edit. */
export function section(config: Record<string, unknown>, name: string): Record<string, unknown> {
  return config[`dms:${name}`] as Record<string, unknown>;
}

export function ofType(run: StackRun, type: string): RecordedResource[] {
  return run.resources.filter((resource) => resource.type === type);
}

export function one(run: StackRun, type: string, name: string): RecordedResource {
  const matches = run.resources.filter((resource) => resource.type === type && resource.name === name);
  assert.equal(matches.length, 1, `expected one ${type} named ${name}, found ${matches.length}`);
  return matches[0] as RecordedResource;
}

/** Parsed IAM policy statements of a policy document input. */
export interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource?: string | string[];
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export function statements(document: unknown): Statement[] {
  return (JSON.parse(String(document)) as { Statement: Statement[] }).Statement;
}

export function statement(document: unknown, sid: string): Statement {
  const found = statements(document).find((candidate) => candidate.Sid === sid);
  assert.ok(found, `no statement ${sid}`);
  return found;
}

export const asList = (value: string | string[] | undefined): string[] => (value === undefined ? [] : [value].flat());
