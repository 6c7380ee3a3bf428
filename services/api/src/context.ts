import type { InferenceQueue, ObjectStore, Redis, ResultsQueue, TrainingQueue, WebhooksQueue } from '@btd/shared';
import type { ApiKeyRing } from './auth/api-keys.js';
import type { ApiConfig } from './config.js';
import type { IntakeChecks } from './intake/input-formats.js';
import type { ApiMetrics } from './metrics/api-metrics.js';
import { BatchStore } from './store/batch-store.js';
import { DeliveryStore } from './store/delivery-store.js';
import { ExternalIdStore } from './store/external-id-store.js';
import { IdempotencyStore } from './store/idempotency-store.js';
import { recordKeys, type RecordKeys } from './store/record-keys.js';
import { StudyStore } from './store/study-store.js';
import { UploadMemoryBudget } from './uploads/upload-memory-budget.js';
import { callbackUrlPolicy, type CallbackUrlPolicy } from './webhooks/callback-url.js';

/** Connections and queues the API is built on; created and closed by `main.ts` (or a test). */
export interface ApiDependencies {
  readonly config: ApiConfig;
  /** Producer connection: no offline queue, so requests fail fast with 503 while Redis is down. */
  readonly redis: Redis;
  readonly objectStore: ObjectStore;
  /** Every queue the API fills or reads; each is listed by `GET /v1/admin/queues` and the `btd_queue_*` metrics, and closed at shutdown. */
  readonly queues: {
    readonly inference: InferenceQueue;
    readonly results: ResultsQueue;
    readonly webhooks: WebhooksQueue;
    readonly training: TrainingQueue;
  };
  readonly keyRing: ApiKeyRing;
  readonly metrics: ApiMetrics;
  /** Each client's webhook signing secret is derived from it (`clientWebhookSecret`). */
  readonly webhookSecret: string;
  /** How uploads' pixel data is proved whole: DICOM frames on a pool of threads (closed with the connections). */
  readonly intakeChecks: IntakeChecks;
}

/** Everything a route or processor needs: the dependencies plus the stores built on them. */
export interface ApiContext extends ApiDependencies {
  readonly keys: RecordKeys;
  readonly studies: StudyStore;
  readonly batches: BatchStore;
  readonly externalIds: ExternalIdStore;
  readonly idempotency: IdempotencyStore;
  readonly deliveries: DeliveryStore;
  /** Bytes of uploads held in memory at once by this process, over all requests (MAX_INFLIGHT_UPLOAD_BYTES). */
  readonly uploadMemory: UploadMemoryBudget;
  /** What a client's callbackUrl must be (WEBHOOK_REQUIRE_HTTPS, WEBHOOK_ALLOWED_NETWORKS), at submission and again when its webhook is sent. */
  readonly callbackUrls: CallbackUrlPolicy;
}

/** Builds the stores over the dependencies. */
export function createApiContext(deps: ApiDependencies): ApiContext {
  const keys = recordKeys(deps.config.queuePrefix);
  return {
    ...deps,
    keys,
    studies: new StudyStore(deps.redis, keys),
    batches: new BatchStore(deps.redis, keys),
    externalIds: new ExternalIdStore(deps.redis, keys),
    idempotency: new IdempotencyStore(deps.redis, keys, deps.config.idempotencyTtlSeconds),
    deliveries: new DeliveryStore(deps.redis, keys),
    uploadMemory: new UploadMemoryBudget(deps.config.maxInflightUploadBytes, deps.metrics.registry),
    callbackUrls: callbackUrlPolicy(deps.config),
  };
}
