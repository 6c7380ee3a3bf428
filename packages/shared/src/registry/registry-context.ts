import type { Redis } from 'ioredis';
import { ObjectNotFoundError } from '../storage/object-not-found.error.js';
import type { ObjectStore } from '../storage/object-store.js';

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

/** Reads a JSON object, or returns null when there is none under the key. */
export async function getJsonOrNull<T>(store: ObjectStore, key: string): Promise<T | null> {
  try {
    return await store.getJson<T>(key);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return null;
    throw error;
  }
}
