import { describe, expect, it } from 'vitest';
import { ObjectNotFoundError } from '../storage/object-not-found.error.js';
import type { ObjectStore } from '../storage/object-store.js';
import { getJsonOrNull } from './registry-context.js';
import { RegistryRecordUnreadableError } from './registry.errors.js';

/** A bucket holding one key whose successive reads give `bodies` (the last one from then on); reads are counted. */
function bucketReading(...bodies: (string | null)[]) {
  const store = {
    reads: 0,
    async get(key: string): Promise<Buffer> {
      const body = bodies[Math.min(store.reads++, bodies.length - 1)];
      if (body === null || body === undefined) throw new ObjectNotFoundError('bucket', key);
      return Buffer.from(body);
    },
  };
  return store;
}

const read = (store: ReturnType<typeof bucketReading>) => getJsonOrNull<{ version: string }>(store as unknown as ObjectStore, 'models/t/promoted.json');

describe('getJsonOrNull', () => {
  it('reads a record again when it comes back empty or cut short, as a write in progress shows it', async () => {
    const store = bucketReading('', '{"vers', '{"version":"v2"}');
    await expect(read(store)).resolves.toEqual({ version: 'v2' });
    expect(store.reads).toBe(3);
  });

  it('gives up on a record that stays unreadable, naming its key', async () => {
    const store = bucketReading('{"vers');
    const error = await read(store).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RegistryRecordUnreadableError);
    expect(error).toMatchObject({ key: 'models/t/promoted.json', size: 6, cause: expect.any(SyntaxError) });
    expect(store.reads).toBe(3);
  });

  it('answers null for a missing record, after one read', async () => {
    const store = bucketReading(null);
    await expect(read(store)).resolves.toBeNull();
    expect(store.reads).toBe(1);
  });
});
