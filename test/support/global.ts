import { releaseSharedResources } from './api.js';

/** Mocha global fixture: drop the run's database and stop its replica, whatever happened. */
export async function mochaGlobalTeardown(): Promise<void> {
  await releaseSharedResources();
}
