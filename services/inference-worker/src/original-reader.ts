import { LRUCache } from 'lru-cache';
import type { ObjectStore } from '@btd/shared';

/** Reads the originals jobs analyse. */
export interface OriginalReader {
  /** The original under `key`; `multiFrame` when the job is one frame of a file whose every frame is a job. */
  get(key: string, multiFrame: boolean): Promise<Uint8Array>;
}

/**
 * Reads originals from the store, keeping those of multi-frame files (up to `maxBytes` in all, least
 * recently used out first): each frame of such a file is a job of its own, so without this the whole
 * file would be downloaded once per frame. Concurrent jobs of one file share one download. Single-frame
 * originals are read once each and not kept.
 */
export function createOriginalReader(store: ObjectStore, maxBytes: number): OriginalReader {
  if (maxBytes <= 0) return { get: async (key) => store.get(key) };
  const kept = new LRUCache<string, Uint8Array>({ maxSize: maxBytes, sizeCalculation: (bytes) => Math.max(1, bytes.byteLength) });
  const downloading = new Map<string, Promise<Uint8Array>>();
  return {
    async get(key, multiFrame) {
      if (!multiFrame) return store.get(key);
      const hit = kept.get(key);
      if (hit) return hit;
      let download = downloading.get(key);
      if (!download) {
        download = store.get(key).finally(() => downloading.delete(key));
        downloading.set(key, download);
      }
      const bytes = await download;
      if (bytes.byteLength <= maxBytes) kept.set(key, bytes);
      return bytes;
    },
  };
}
