/** The escalation functions' code: `handler.ts` and what it imports, as one ES module. */
import { bundleLambdaHandler } from '../../lambda-bundle.js';

export const bundledEscalationHandler = (): string => bundleLambdaHandler(new URL('./handler.ts', import.meta.url), 'esm');
