/**
 * The policy pack for real deployments: `pulumi preview --policy-pack infra/policy` (and `up`).
 * Constructing a PolicyPack starts the analyzer's gRPC server, so nothing else imports this file:
 * the tests and `npm run plan` run the same policies through `harness.ts`.
 */
import { PolicyPack } from '@pulumi/policy';
import { allPolicies } from './policies.js';

new PolicyPack('dms-security', { policies: allPolicies, enforcementLevel: 'mandatory' });
