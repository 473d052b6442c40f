import { releaseRunResources } from './postgres.js';

/** Mocha global fixture: drop the run's shared database, stop its replica and its cluster, whatever happened. */
export async function mochaGlobalTeardown(): Promise<void> {
  await releaseRunResources();
}
