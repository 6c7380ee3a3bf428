import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { ObjectNotFoundError } from '../storage/object-not-found.error.js';
import type { ObjectStore } from '../storage/object-store.js';
import { RegistryRecordUnreadableError } from './registry.errors.js';

/** What the registry's modules share: the bucket, Redis (locks and notices) and a clock. */
export interface RegistryContext {
  readonly store: ObjectStore;
  readonly redis: Redis;
  /** Scopes Redis keys and the promotion channel; use the queue prefix so tests stay apart. */
  readonly namespace: string;
  readonly now: () => Date;
}

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  md: 'text/markdown; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  txt: 'text/plain; charset=utf-8',
};

/** Content type stored with an artifact file, so presigned links and the API serve it sensibly. */
export function contentTypeOf(name: string): string {
  const extension = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  return CONTENT_TYPES[extension] ?? 'application/octet-stream';
}

/**
 * Reads of a record that does not parse before it counts as unreadable. S3 and MinIO show a write
 * whole or not at all, but a store that shows one in progress (s3rver's own file store does, for a
 * moment after a PUT) shows the whole record a moment later; a record cut for good stays cut.
 */
const RECORD_READS = 3;
const REREAD_PAUSE_MS = 50;

/**
 * Reads a JSON object, or returns null when there is none under the key. A body that stays empty or
 * cut short over a few reads throws {@link RegistryRecordUnreadableError}.
 */
export async function getJsonOrNull<T>(store: ObjectStore, key: string): Promise<T | null> {
  for (let read = 1; ; read++) {
    let bytes: Buffer;
    try {
      bytes = await store.get(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return null;
      throw error;
    }
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (error) {
      if (read >= RECORD_READS) throw new RegistryRecordUnreadableError(key, bytes.length, { cause: error });
      await sleep(REREAD_PAUSE_MS * read);
    }
  }
}
