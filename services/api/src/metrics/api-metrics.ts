import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Job states reported per queue. */
const JOB_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'] as const;

/** The API's Prometheus metrics, on a registry of its own so several apps can share a process. */
export interface ApiMetrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status_code'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  /** Results applied, by verdict label (`failed` for images that could not be analysed). */
  readonly results: Counter<'label'>;
  /** Time a job took where it ran, by queue. */
  readonly jobDuration: Histogram<'queue'>;
  /** From the study's submission to one image's result. */
  readonly submitToResult: Histogram;
  readonly webhookAttempts: Counter<'outcome'>;
  /** 1 from the first PACS export deferred in an S3 outage until S3 answers again (an export or the probe gets through). */
  readonly pacsExportS3Unavailable: Gauge;
  /** PACS exports put back to wait out an S3 outage, without spending an attempt. */
  readonly pacsExportS3Deferrals: Counter;
  /** Entries among the originals failed submissions left that the sweep gave up on, by reason (`refused` by S3 too often, `malformed`). */
  readonly leftOriginalsDropped: Counter<'reason'>;
  /** Studies erased, by trigger (`request`: DELETE, `retention`: the sweep) and outcome (`erased`, `failed`: S3 failed, records kept). */
  readonly studiesErased: Counter<'trigger' | 'outcome'>;
}

function queueGauges(registry: Registry, queues: readonly Queue[]): void {
  new Gauge({
    name: 'btd_queue_jobs',
    help: 'Jobs per queue and state.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of queues) {
        // A scrape while Redis is down still answers; the missing series show the outage.
        const counts = await queue.getJobCounts(...JOB_STATES).catch(() => undefined);
        for (const state of JOB_STATES) if (counts) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'btd_queue_workers',
    help: 'Workers connected to each queue (all processes).',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of queues) {
        const workers = await queue.getWorkers().catch(() => undefined);
        if (workers) this.set({ queue: queue.name }, workers.length);
      }
    },
  });
}

/** Creates the metrics; `queues` are inspected on every scrape for depth and worker count. */
export function createApiMetrics(queues: readonly Queue[]): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  queueGauges(registry, queues);
  const registers = [registry];
  const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  return {
    registry,
    httpRequests: new Counter({ name: 'btd_http_requests_total', help: 'HTTP requests.', labelNames: ['method', 'route', 'status_code'], registers }),
    httpDuration: new Histogram({
      name: 'btd_http_request_duration_seconds',
      help: 'HTTP request latency.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: seconds,
      registers,
    }),
    results: new Counter({ name: 'btd_results_total', help: 'Image results applied, by label.', labelNames: ['label'], registers }),
    jobDuration: new Histogram({ name: 'btd_job_duration_seconds', help: 'Job run time, by queue.', labelNames: ['queue'], buckets: seconds, registers }),
    submitToResult: new Histogram({
      name: 'btd_submit_to_result_seconds',
      help: 'Time from study submission to an image result.',
      buckets: seconds,
      registers,
    }),
    webhookAttempts: new Counter({ name: 'btd_webhook_attempts_total', help: 'Webhook delivery attempts, by outcome.', labelNames: ['outcome'], registers }),
    pacsExportS3Unavailable: new Gauge({ name: 'btd_pacs_export_s3_unavailable', help: '1 from the first PACS export deferred in an S3 outage until S3 answers again.', registers }),
    pacsExportS3Deferrals: new Counter({ name: 'btd_pacs_export_s3_deferrals_total', help: 'PACS exports deferred during an S3 outage without spending an attempt.', registers }),
    leftOriginalsDropped: new Counter({
      name: 'btd_left_originals_dropped_total',
      help: 'Originals failed submissions left that the sweep gave up removing (refused by S3 too often, or a malformed entry); they stay in the bucket.',
      labelNames: ['reason'],
      registers,
    }),
    studiesErased: new Counter({
      name: 'btd_studies_erased_total',
      help: 'Studies erased, by trigger (request, retention) and outcome (erased; failed: S3 failed, records kept for a retry).',
      labelNames: ['trigger', 'outcome'],
      registers,
    }),
  };
}
