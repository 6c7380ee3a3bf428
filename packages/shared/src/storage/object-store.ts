import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ObjectNotFoundError } from './object-not-found.error.js';
import { ObjectReadInterruptedError } from './object-read-interrupted.error.js';
import { ObjectsNotDeletedError, type ObjectNotDeleted } from './objects-not-deleted.error.js';

/** Where and how to reach the bucket; matches the fields of `s3ConfigFields`. */
export interface ObjectStoreOptions {
  s3Endpoint?: string | undefined;
  s3Bucket: string;
  s3Region: string;
  s3AccessKeyId?: string | undefined;
  s3SecretAccessKey?: string | undefined;
  s3ForcePathStyle: boolean;
  /**
   * A request fails when connecting takes longer, or its socket stays silent this long (default
   * 30 s): an endpoint that accepts connections and never answers must not hold a job for ever.
   */
  s3TimeoutMs?: number;
}

/** Metadata returned by {@link ObjectStore.head}. */
export interface ObjectInfo {
  key: string;
  size: number;
  contentType: string | undefined;
  etag: string | undefined;
}

/** One entry listed by {@link ObjectStore.list}. */
export interface ListedObject {
  key: string;
  size: number;
  /** The object's ETag as the store reports it (changes when the bytes do), when it reports one. */
  etag?: string;
}

/** Whether a key is a folder marker (it ends with `/`): it names a folder, and holds no file to read. */
export function isFolderMarker(key: string): boolean {
  return key.endsWith('/');
}

const DELETE_BATCH = 1000; // the S3 limit for one DeleteObjects call
const DEFAULT_TIMEOUT_MS = 30_000;

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/**
 * Whether reading a body failed in its connection (a system error such as ECONNRESET, or the
 * socket's time-out) rather than in what arrived: a checksum that does not match is a plain Error.
 */
function isTransportFailure(error: unknown): boolean {
  const { name, code } = error as { name?: string; code?: unknown };
  return name === 'TimeoutError' || (typeof code === 'string' && code !== 'ABORT_ERR');
}

function isAlreadyCreated(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists';
}

/**
 * A bucket in an S3-compatible store (AWS S3, MinIO, s3rver). Keys are plain strings (see
 * `keys.ts`); writes are whole-object puts, so writing the same key twice is harmless.
 */
export class ObjectStore {
  readonly bucket: string;
  readonly client: S3Client;
  private closed = false;

  constructor(options: ObjectStoreOptions) {
    this.bucket = options.s3Bucket;
    const credentials =
      options.s3AccessKeyId && options.s3SecretAccessKey
        ? { accessKeyId: options.s3AccessKeyId, secretAccessKey: options.s3SecretAccessKey }
        : undefined;
    this.client = new S3Client({
      endpoint: options.s3Endpoint,
      region: options.s3Region,
      forcePathStyle: options.s3ForcePathStyle,
      credentials,
      // One layer owns retries: BullMQ retries jobs, so the SDK only smooths over blips.
      maxAttempts: 2,
      // An idle limit rather than a total one: a large upload that keeps moving is not cut off.
      requestHandler: { connectionTimeout: options.s3TimeoutMs ?? DEFAULT_TIMEOUT_MS, socketTimeout: options.s3TimeoutMs ?? DEFAULT_TIMEOUT_MS },
    });
  }

  /** Creates the bucket if it does not exist yet. */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
      } catch (createError) {
        // Services that start together race to create it, and the losers are told it exists (AWS says
        // BucketAlreadyOwnedByYou, s3rver BucketAlreadyExists): fine, as long as it answers to us.
        if (!isAlreadyCreated(createError)) throw createError;
        await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      }
    }
  }

  /** Resolves when the bucket answers; throws otherwise. Used by readiness checks. */
  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  /** Writes (or overwrites) an object. */
  async put(key: string, body: Uint8Array | string, contentType: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
  }

  /** Writes a value as `application/json`. */
  async putJson(key: string, value: unknown): Promise<void> {
    await this.put(key, JSON.stringify(value), 'application/json');
  }

  /**
   * Reads a whole object. Throws {@link ObjectNotFoundError} when it does not exist, and
   * {@link ObjectReadInterruptedError} when S3 breaks off its body; an aborted `signal` cancels the
   * request.
   */
  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    let response;
    try {
      response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), options.signal ? { abortSignal: options.signal } : {});
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(this.bucket, key, { cause: error });
      throw error;
    }
    if (!response.Body) return Buffer.alloc(0);
    try {
      return Buffer.from(await response.Body.transformToByteArray());
    } catch (error) {
      // The SDK's errors end with the headers: those of the body are the socket's, and name no service.
      if (options.signal?.aborted || !isTransportFailure(error)) throw error;
      throw new ObjectReadInterruptedError(this.bucket, key, { cause: error });
    }
  }

  /** Reads and parses a JSON object. Throws {@link ObjectNotFoundError} when it does not exist. */
  async getJson<T = unknown>(key: string): Promise<T> {
    return JSON.parse((await this.get(key)).toString('utf8')) as T;
  }

  /** Metadata of an object, or `null` when it does not exist. */
  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: response.ContentLength ?? 0, contentType: response.ContentType, etag: response.ETag };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Whether an object exists under the key. */
  async exists(key: string): Promise<boolean> {
    return (await this.head(key)) !== null;
  }

  /**
   * Lists every object whose key starts with `prefix`, page by page.
   *
   * Uses ListObjects (v1) with `Marker`, not ListObjectsV2: s3rver builds v2 continuation
   * tokens with DES, which OpenSSL 3 (Node 18+) no longer provides, so any truncated v2 listing
   * fails there with a 500. v1 with a marker pages the same way on S3, MinIO and s3rver.
   *
   * @param pageSize keys per request (S3's maximum, 1000, by default)
   */
  async *list(prefix: string, pageSize = 1000): AsyncGenerator<ListedObject> {
    let marker: string | undefined;
    for (;;) {
      const page = await this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: prefix, Marker: marker, MaxKeys: pageSize }));
      const contents = page.Contents ?? [];
      for (const item of contents) {
        if (item.Key) yield { key: item.Key, size: item.Size ?? 0, ...(item.ETag ? { etag: item.ETag } : {}) };
      }
      marker = contents.at(-1)?.Key;
      if (!page.IsTruncated || marker === undefined) return;
    }
  }

  /**
   * Whether some object under `prefix` holds a file: a folder marker alone (an empty `datasets/new/`
   * that consoles and sync tools write for a folder, see {@link isFolderMarker}) does not count.
   */
  async hasFilesUnder(prefix: string): Promise<boolean> {
    for await (const item of this.list(prefix)) if (!isFolderMarker(item.key)) return true;
    return false;
  }

  /** All keys under `prefix`, collected from {@link ObjectStore.list}. */
  async listKeys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const item of this.list(prefix)) keys.push(item.key);
    return keys;
  }

  /** Deletes one object; deleting a missing key is not an error. */
  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /**
   * Deletes every object under `prefix`; returns how many were deleted. S3 answers a DeleteObjects
   * request 200 even when it refused some of its keys (AccessDenied on one key, InternalError), and
   * lists those under `Errors`: then, once every batch was sent, this throws
   * {@link ObjectsNotDeletedError} naming them, as they are still in the bucket.
   */
  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.listKeys(prefix);
    const failures: ObjectNotDeleted[] = [];
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH).map((Key) => ({ Key }));
      const answer = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } }));
      for (const error of answer.Errors ?? []) failures.push({ key: error.Key ?? '?', code: error.Code ?? 'unknown', message: error.Message ?? '' });
    }
    if (failures.length > 0) throw new ObjectsNotDeletedError(this.bucket, prefix, failures);
    return keys.length;
  }

  /** A URL that lets its holder PUT one object with the given content type, until it expires. */
  async presignPut(key: string, options: { contentType: string; expiresInSeconds?: number }): Promise<string> {
    const command = new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentType: options.contentType });
    return getSignedUrl(this.client, command, { expiresIn: options.expiresInSeconds ?? 900 });
  }

  /** A URL that lets its holder GET one object, until it expires. */
  async presignGet(key: string, options: { expiresInSeconds?: number } = {}): Promise<string> {
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: key });
    return getSignedUrl(this.client, command, { expiresIn: options.expiresInSeconds ?? 900 });
  }

  /** Releases the HTTP connections; safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }
}
