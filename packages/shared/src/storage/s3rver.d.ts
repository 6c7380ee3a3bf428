// s3rver ships no type definitions; this declares the part of its API the embedded server uses.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  import type FilesystemStore from 's3rver/lib/stores/filesystem.js';

  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    configureBuckets?: { name: string; configs?: unknown[] }[];
  }

  export default class S3rver {
    constructor(options: S3rverOptions);
    /** The store `configureBuckets` and `reset` use. */
    store: FilesystemStore;
    /** Koa's prototype of every request's context: requests reach the store as `ctx.store`. */
    readonly context: { store: FilesystemStore };
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}

declare module 's3rver/lib/models/object.js' {
  import type { Readable } from 'node:stream';

  export default class S3Object {
    /** Headers stored with an object, besides the user's `x-amz-meta-*`. */
    static ALLOWED_METADATA: string[];
    constructor(bucket: string, key: string, content: Readable | Buffer | null, metadata: Record<string, unknown>);
    readonly bucket: string;
    readonly key: string;
    content: Readable | Buffer | null;
    metadata: Record<string, unknown>;
    range?: { start: number; end: number };
    readonly size: number;
  }
}

declare module 's3rver/lib/stores/filesystem.js' {
  import type S3Object from 's3rver/lib/models/object.js';

  /** The byte range a GET asks for (`end` inclusive). */
  export interface ObjectRange {
    start?: number;
    end?: number;
  }

  export interface StoredObject {
    size: number;
    md5: string;
  }

  /** s3rver's store: one folder per bucket, each object a file beside its metadata files. */
  export default class FilesystemStore {
    constructor(rootDirectory: string);
    readonly rootDirectory: string;
    getResourcePath(bucket: string, key?: string, resource?: string): string;
    getMetadata(bucket: string, key: string): Promise<Record<string, unknown>>;
    putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5?: string): Promise<void>;
    listBuckets(): Promise<unknown[]>;
    putBucket(bucket: string): Promise<unknown>;
    listObjects(
      bucket: string,
      options: { prefix?: string; delimiter?: string; startAfter?: string; maxKeys?: number },
    ): Promise<{ objects: S3Object[]; commonPrefixes: string[]; isTruncated: boolean }>;
    getObject(bucket: string, key: string, options?: ObjectRange): Promise<S3Object | null>;
    putObject(object: S3Object): Promise<StoredObject>;
  }
}
