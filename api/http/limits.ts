/**
 * Request limits the API enforces, in one place: the WAF in front of the ALB (`infra/firewall.ts`)
 * blocks at exactly the same size, so a request the API accepts is never refused by the firewall
 * and the firewall never waves through what the API would refuse anyway.
 */

/** Largest JSON request body the API accepts (bytes); larger bodies get 413 (CONTRACT: 100 KiB). */
export const BODY_LIMIT_BYTES = 100 * 1024;
