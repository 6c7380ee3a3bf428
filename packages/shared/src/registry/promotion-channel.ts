import type { Redis } from 'ioredis';
import { Value } from '@sinclair/typebox/value';
import { PromotionNoticeSchema, type PromotionNotice } from './registry.schemas.js';

/** The Redis pub/sub channel on which promotions are announced, scoped by a namespace (e.g. a queue prefix). */
export const promotionChannelName = (namespace: string): string => `${namespace}:models:promoted`;

/** Announces a promotion. Delivery is best-effort: subscribers also poll the pointer. */
export async function announcePromotion(redis: Redis, namespace: string, notice: PromotionNotice): Promise<void> {
  await redis.publish(promotionChannelName(namespace), JSON.stringify(notice));
}

/** A live subscription to promotion notices; `close()` may be called more than once. */
export interface PromotionSubscription {
  close(): Promise<void>;
}

/**
 * Subscribes to promotion notices on a dedicated connection (a subscribed Redis connection cannot
 * run other commands). Malformed messages are passed to `onInvalid` and otherwise ignored.
 */
export async function subscribeToPromotions(
  redis: Redis,
  namespace: string,
  onNotice: (notice: PromotionNotice) => void,
  onInvalid: (raw: string) => void = () => {},
): Promise<PromotionSubscription> {
  const channel = promotionChannelName(namespace);
  // The caller's connection may be a producer one without offline queue; SUBSCRIBE must wait for the connection instead of failing.
  const subscriber = redis.duplicate({ enableOfflineQueue: true });
  subscriber.on('message', (received: string, raw: string) => {
    if (received !== channel) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      onInvalid(raw);
      return;
    }
    if (Value.Check(PromotionNoticeSchema, parsed)) onNotice(parsed);
    else onInvalid(raw);
  });
  // Keep the process from crashing on connection errors; ioredis reconnects and resubscribes.
  subscriber.on('error', () => {});
  await subscriber.subscribe(channel);
  let closed = false;
  return {
    async close() {
      if (closed) return;
      closed = true;
      subscriber.disconnect();
    },
  };
}
