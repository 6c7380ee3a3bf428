import type { Redis } from '@btd/shared';
import type { RecordKeys } from './record-keys.js';
import { redisScript } from './redis-script.js';

const CLAIM_TTL_SECONDS = 120;

const releaseIfOwner = redisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Maps a client's external ids (accession numbers) to study ids, first come first served, so
 * a PACS that resubmits a study gets the original back instead of a second analysis.
 */
export class ExternalIdStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys,
  ) {}

  /**
   * Claims the external id for `studyId`; returns the study id that holds it otherwise. The
   * claim expires unless the study is created (which makes it permanent), so a submission that
   * died half-way frees the id.
   */
  async claim(clientId: string, externalId: string, studyId: string): Promise<string | undefined> {
    const key = this.keys.externalId(clientId, externalId);
    if ((await this.redis.set(key, studyId, 'EX', CLAIM_TTL_SECONDS, 'NX')) === 'OK') return undefined;
    return (await this.redis.get(key)) ?? undefined;
  }

  /** The study holding the external id, if any. */
  async lookup(clientId: string, externalId: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.externalId(clientId, externalId))) ?? undefined;
  }

  /** Gives the external id back after a failed submission, unless someone else holds it. */
  async release(clientId: string, externalId: string, studyId: string): Promise<void> {
    await releaseIfOwner(this.redis, [this.keys.externalId(clientId, externalId)], [studyId]);
  }
}
