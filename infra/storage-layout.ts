// Key prefixes inside the stack's buckets, shared by the program and the ops commands (which
// must not load the Pulumi SDK to know where a log file or an incident folder is).

/** Prefixes in the access-log bucket. */
export const ACCESS_LOG_PREFIX = { alb: 'alb', s3: 's3' } as const;

/** Where `npm run ops -- preserve-evidence` writes in the forensics bucket: `incidents/<incident id>/…`. */
export const FORENSICS_PREFIX = 'incidents/';
