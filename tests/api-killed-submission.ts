import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { fingerprintOf, type RunningApi } from '@btd/api';
import { inferenceJobId, originalKey } from '@btd/shared';
import type { ApiTestEnv } from './api-test-env.js';
import { waitFor } from './helpers/index.js';

type Ctx = RunningApi['ctx'];
/** A study record as the API stores it. */
export type KilledStudy = Parameters<Ctx['studies']['create']>[0];
type Form = Parameters<typeof fingerprintOf>[0];

/** What the killed request was: its fields, batch and Idempotency-Key, and whether its original reached S3. */
export interface KilledRequest {
  readonly externalId?: string;
  readonly batch?: { readonly id: string; readonly priority: KilledStudy['priority'] };
  readonly idempotencyKey?: string;
  readonly withOriginal: boolean;
}

/**
 * What an API killed between writing a study's records and enqueueing its jobs leaves of a
 * submission by alice of one JPEG (`bytes`): its Idempotency-Key and external id claimed, the
 * records (and pending entry) written, the original stored unless `withOriginal` is false, and no job.
 */
export async function killedSubmission(env: ApiTestEnv, bytes: Uint8Array, request: KilledRequest): Promise<KilledStudy> {
  const ctx = env.api.ctx;
  const studyId = `stu_${randomBytes(10).toString('hex')}`;
  const imageId = `img_${randomBytes(10).toString('hex')}`;
  const objectKey = originalKey({ clientId: 'alice', studyId, imageId });
  const fields = request.externalId ? { externalId: request.externalId } : {};
  const fingerprint = fingerprintOf({ fields, images: [{ bytes }] } as unknown as Form, request.batch?.id);
  const study: KilledStudy = {
    id: studyId,
    clientId: 'alice',
    ...fields,
    ...(request.batch ? { batchId: request.batch.id } : {}),
    priority: request.batch?.priority ?? 'routine',
    state: 'queued',
    createdAt: new Date().toISOString(),
    imageIds: [imageId],
    doneCount: 0,
    failedCount: 0,
    fingerprint,
  };
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const image = { id: imageId, studyId, clientId: 'alice', filename: 'a.jpg', contentType: 'image/jpeg', width: 512, height: 512, bytes: bytes.length, sha256, objectKey, state: 'queued' as const };
  const claim = request.idempotencyKey ? await ctx.idempotency.claim('alice', request.idempotencyKey, fingerprint) : undefined;
  if (claim?.kind === 'replay') throw new Error('the Idempotency-Key was used before');
  if (request.externalId) expect(await ctx.externalIds.claim('alice', request.externalId, studyId)).toBeUndefined();
  await Promise.all([request.withOriginal ? ctx.objectStore.put(objectKey, bytes, 'image/jpeg') : undefined, ctx.studies.create(study, [image], claim)]);
  expect(await env.redis.zrange(ctx.keys.pendingSubmissions, 0, '-1')).toEqual([studyId]);
  expect(await ctx.queues.inference.getJob(inferenceJobId(imageId))).toBeUndefined();
  return study;
}

/**
 * As if `ms` had passed for the API's records: keys that would have expired meanwhile are gone,
 * the others' lifetimes are shorter, and the pending submissions were created that much earlier.
 */
export async function elapse(env: ApiTestEnv, ms: number): Promise<void> {
  const { redis } = env;
  const { keys } = env.api.ctx;
  const records = (await env.redisKeys()).filter((key) => key.startsWith(`${env.prefix}:api:`));
  for (const key of records) {
    const ttl = await redis.pttl(key);
    if (ttl > ms) await redis.pexpire(key, ttl - ms);
    else if (ttl >= 0) await redis.del(key);
  }
  const pending = await redis.zrange(keys.pendingSubmissions, 0, '-1', 'WITHSCORES');
  for (let i = 0; i < pending.length; i += 2) {
    const studyId = pending[i]!;
    const createdAt = Number(pending[i + 1]) - ms;
    await redis.zadd(keys.pendingSubmissions, createdAt, studyId);
    await redis.hset(keys.study(studyId), 'createdAt', new Date(createdAt).toISOString());
  }
}

/**
 * A request held just before it enqueues its jobs, as an API stopped there. `fail` makes the enqueue
 * fail then; call it also when the test fails, or the API's close waits for the request.
 */
export interface HeldEnqueue {
  fail(): void;
}

/** Holds the API's next enqueue of inference jobs (later ones run as usual). */
export function holdNextEnqueue(env: ApiTestEnv): HeldEnqueue {
  const queue = env.api.ctx.queues.inference;
  const addBulk = queue.addBulk.bind(queue);
  let fail = (): void => undefined;
  const held = new Promise<never>((_, reject) => {
    fail = () => reject(new Error('Connection is closed.'));
  });
  Object.assign(queue, {
    addBulk: async () => {
      Object.assign(queue, { addBulk });
      return held;
    },
  });
  return { fail: () => fail() };
}

/** Waits until a submission has written its records: the id of the one pending submission. */
export async function pendingStudy(env: ApiTestEnv): Promise<string> {
  const [studyId] = await waitFor(async () => {
    const pending = await env.redis.zrange(env.api.ctx.keys.pendingSubmissions, 0, '-1');
    return pending.length > 0 && pending;
  }, { what: 'a submission to write its records' });
  return studyId!;
}
