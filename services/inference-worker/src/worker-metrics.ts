import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { once } from '@btd/shared';

/** Prometheus metrics of one worker process. */
export interface WorkerMetrics {
  readonly registry: Registry;
  readonly jobs: Counter<'outcome'>;
  readonly jobSeconds: Histogram<'outcome'>;
  /** 1 from this worker's first deferral in an S3 outage until S3 answers it again (a job or the probe gets through). */
  readonly s3Unavailable: Gauge;
  /** Jobs put back to wait out an S3 outage, without spending an attempt. */
  readonly s3Deferrals: Counter;
  /** Bytes the jobs' decodes hold now, as their headers tell (at most WORKER_MAX_INFLIGHT_DECODE_BYTES). */
  readonly decodeBytes: Gauge;
  /** Jobs waiting for decode memory now. */
  readonly decodesWaiting: Gauge;
  /** Jobs that waited for others' decodes to end before theirs fitted. */
  readonly decodeWaits: Counter;
}

/** Creates the worker's metric registry, with Node's default process metrics. */
export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    jobs: new Counter({ name: 'btd_worker_jobs_total', help: 'Inference job attempts by outcome', labelNames: ['outcome'], registers: [registry] }),
    jobSeconds: new Histogram({
      name: 'btd_worker_job_duration_seconds',
      help: 'Time from a job attempt starting to its end',
      labelNames: ['outcome'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    s3Unavailable: new Gauge({ name: 'btd_worker_s3_unavailable', help: '1 from the first job deferred in an S3 outage until S3 answers again', registers: [registry] }),
    s3Deferrals: new Counter({ name: 'btd_worker_s3_deferrals_total', help: 'Jobs deferred during an S3 outage without spending an attempt', registers: [registry] }),
    decodeBytes: new Gauge({ name: 'btd_worker_decode_bytes_in_memory', help: 'Bytes the jobs decoding and analysing their images hold now, as the headers tell (at most WORKER_MAX_INFLIGHT_DECODE_BYTES)', registers: [registry] }),
    decodesWaiting: new Gauge({ name: 'btd_worker_decodes_waiting', help: 'Jobs waiting for decode memory (WORKER_MAX_INFLIGHT_DECODE_BYTES) before they decode their image', registers: [registry] }),
    decodeWaits: new Counter({ name: 'btd_worker_decode_waits_total', help: 'Jobs that waited for others to end before their decode fitted in WORKER_MAX_INFLIGHT_DECODE_BYTES', registers: [registry] }),
  };
}

/** A running `/metrics` + `/healthz` endpoint. */
export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves the registry on `port` (0 picks a free one). */
export async function startMetricsServer(registry: Registry, port: number): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    if (request.url === '/metrics') {
      registry.metrics().then(
        (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => response.writeHead(500).end(),
      );
    } else if (request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: once(() => new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}
