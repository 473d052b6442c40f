/**
 * The rotation functions' code: `handler.ts` with pg and ioredis, as one CommonJS file (both
 * libraries `require` Node's built-ins). pg's optional native binding is never installed.
 */
import { bundleLambdaHandler } from '../lambda-bundle.js';

export const bundledRotationHandler = (): string => bundleLambdaHandler(new URL('./handler.ts', import.meta.url), 'cjs', ['pg-native']);
