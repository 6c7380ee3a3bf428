import type { Redis } from '@btd/shared';
import type { RecordKeys } from './record-keys.js';
import { deleteIfHolds, redisScript } from './redis-script.js';

const CLAIM_TTL_SECONDS = 120;

/**
 * Claims KEYS[1] for ARGV[1] for ARGV[2] seconds unless someone holds it; returns the holder, or
 * nil when the claim is ours. One step, so a claim that lapses in between cannot read as free.
 */
const claimOrHolder = redisScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then return false end
return redis.call('GET', KEYS[1])
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
    const holder = await claimOrHolder(this.redis, [this.keys.externalId(clientId, externalId)], [studyId, CLAIM_TTL_SECONDS]);
    return typeof holder === 'string' ? holder : undefined;
  }

  /** The study holding the external id, if any. */
  async lookup(clientId: string, externalId: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.externalId(clientId, externalId))) ?? undefined;
  }

  /** Gives the external id back after a failed submission, unless someone else holds it. */
  async release(clientId: string, externalId: string, studyId: string): Promise<void> {
    await deleteIfHolds(this.redis, [this.keys.externalId(clientId, externalId)], [studyId]);
  }
}
