// What the system benchmarks that start their own API share: its environment against a Redis and an
// embedded s3rver under a queue prefix of their own, and the removal of that prefix's keys afterwards.
import { EMBEDDED_S3_CREDENTIALS, Redis } from '@btd/shared';

/** The settings of the services a benchmark starts: Redis at `redisUrl` under `prefix`, the bucket `bucket` of `s3`, the models in `models`. */
export function systemEnv({ redisUrl, prefix, s3, bucket, models }) {
  return {
    PATH: process.env.PATH,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    MODELS_DIR: models,
    MODEL_SOURCE: 'directory',
    TF_BACKEND: process.env.TF_BACKEND ?? '',
    LOG_LEVEL: 'info',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/** Deletes every key of the Redis at `redisUrl` under `prefix`. */
export async function removePrefix(redisUrl, prefix) {
  const redis = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
}
