declare module '@20minutes/s3rver' {
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs: (string | Buffer)[] }[];
  }
  export default class S3rver {
    constructor(options?: S3rverOptions);
    /** S3rver is a Koa application: its middleware, composed when it starts listening. */
    middleware: ((ctx: import('koa').Context, next: () => Promise<void>) => Promise<void>)[];
    /** Its filesystem store: `kind` `object` is the object's bytes, `metadata.json` what it keeps about them. */
    store: {
      getResourcePath(bucket: string, key: string, kind: 'object' | 'metadata.json'): string;
      deleteSubresource(bucket: string, key: undefined, kind: 'cors'): Promise<void>;
    };
    run(): Promise<{ address: string; port: number }>;
    /** Creates the configured buckets and writes their configurations (what `run` does before it listens). */
    configureBuckets(): Promise<void>;
    /** Koa's request handler, for a server of one's own. */
    callback(): import('node:http').RequestListener;
    close(): Promise<void>;
  }
}
