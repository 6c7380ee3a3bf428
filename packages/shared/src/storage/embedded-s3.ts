import { mkdir } from 'node:fs/promises';
import S3rver from 's3rver';
import { AtomicFilesystemStore } from './atomic-filesystem-store.js';

/** Credentials s3rver accepts. Only meant for the embedded, local server. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** Options of {@link startEmbeddedS3}. */
export interface EmbeddedS3Options {
  /** Directory where objects are stored (created if missing). */
  directory: string;
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1: never exposed beyond the machine). */
  address?: string;
  /** Buckets created at start. */
  buckets?: string[];
}

/** A running embedded S3 server. */
export interface EmbeddedS3 {
  /** Base URL, e.g. `http://127.0.0.1:4569`, to use as `S3_ENDPOINT`. */
  readonly endpoint: string;
  readonly port: number;
  /** Stops the server; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts an s3rver: a real S3-protocol server storing objects on disk. `npm start` uses it
 * when no `S3_ENDPOINT` is configured, and tests use it instead of mocking S3. Its objects are
 * written as S3 and MinIO write them, whole or not at all (see {@link AtomicFilesystemStore}).
 */
export async function startEmbeddedS3(options: EmbeddedS3Options): Promise<EmbeddedS3> {
  await mkdir(options.directory, { recursive: true });
  const address = options.address ?? '127.0.0.1';
  const server = new S3rver({
    address,
    port: options.port ?? 0,
    directory: options.directory,
    silent: true,
    configureBuckets: (options.buckets ?? []).map((name) => ({ name })),
  });
  // Before it serves anything: requests find the store on Koa's context prototype.
  server.store = server.context.store = new AtomicFilesystemStore(options.directory);
  const info = await server.run();
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://${address}:${info.port}`,
    port: info.port,
    close: () => (closing ??= server.close()),
  };
}
