import { hostname } from 'node:os';
import {
  CONFIG_EXIT_CODE,
  announceReady,
  ConfigError,
  ObjectStore,
  SHUTDOWN_PHASE,
  Shutdown,
  closeRedis,
  createLogger,
  createProducerConnection,
  createResultsQueue,
  createWorkerConnection,
  loadConfigOrExit,
  logConnectionHealth,
  openBucket,
  waitForRedisAtStart,
  waitForStore,
  type Logger,
} from '@btd/shared';
import { loadWorkerConfig, type WorkerConfig } from './config.js';
import { startInferenceWorker } from './inference-worker.js';
import { openModelSource } from './model-source.js';
import { createWorkerMetrics, startMetricsServer } from './worker-metrics.js';

async function start(config: WorkerConfig, workerId: string, logger: Logger, shutdown: Shutdown): Promise<void> {
  const producer = createProducerConnection(config.redisUrl);
  const connection = createWorkerConnection(config.redisUrl);
  const store = new ObjectStore(config);
  const metrics = createWorkerMetrics();
  const results = createResultsQueue(producer, config.queuePrefix);
  // Registered before anything can fail, in the order they must close within their phase.
  shutdown
    .add('results queue', SHUTDOWN_PHASE.connections, () => results.close())
    .add('redis', SHUTDOWN_PHASE.connections, () => Promise.all([closeRedis(producer), closeRedis(connection)]))
    .add('object store', SHUTDOWN_PHASE.connections, () => store.close());
  logConnectionHealth(producer, 'producer', logger);
  logConnectionHealth(connection, 'worker', logger);
  // The queue re-emits its connection's errors; they are logged once above.
  results.on('error', () => {});

  // Redis and S3 may come up after the worker (Docker Compose, Kubernetes): it waits for them; a refusal stops the start.
  const starting = new AbortController();
  shutdown.add('start-up', SHUTDOWN_PHASE.intake, () => starting.abort());
  const wait = { logger, signal: starting.signal };
  await waitForRedisAtStart(producer, config.redisUrl, { ...wait, timeoutMs: config.redisStartupTimeoutMs });
  await openBucket(store, wait);
  // With a model thread dead every job would fail here: stop taking them (those in flight fail this
  // attempt and are retried, by other workers) and exit non-zero, so that the supervisor restarts this one.
  const onBroken = (error: Error) => {
    logger.fatal({ err: error }, 'a model thread died; shutting down so that the worker is restarted');
    void shutdown.run('model thread died').then(() => process.exit(1));
  };
  const models = await waitForStore('models', () => openModelSource({ config, workerId, store, redis: producer, logger, metrics: metrics.registry, onBroken }), wait);
  shutdown.add('models', SHUTDOWN_PHASE.resources, () => models.close());

  const running = startInferenceWorker({ config: { ...config, workerId }, connection, store, results, models, logger, metrics });
  shutdown.add('inference worker', SHUTDOWN_PHASE.drain, () => running.close());
  if (config.metricsPort > 0) {
    const server = await startMetricsServer(metrics.registry, config.metricsPort);
    shutdown.add('metrics endpoint', SHUTDOWN_PHASE.connections, () => server.close());
  }
  logger.info({ prefix: config.queuePrefix, concurrency: config.concurrency, modelSource: config.modelSource }, 'inference worker ready');
  await announceReady(logger, 'inference-worker');
}

const config = loadConfigOrExit(() => loadWorkerConfig());
const workerId = config.workerId ?? `${hostname()}-${process.pid}`;
const logger = createLogger({ name: 'inference-worker', level: config.logLevel }).child({ workerId });
const shutdown = new Shutdown({ logger, timeoutMs: config.shutdownTimeoutMs });
shutdown.listen();
try {
  await start(config, workerId, logger, shutdown);
} catch (error) {
  // Stopped by a signal while it waited for Redis or S3: the shutdown under way exits.
  if (!shutdown.started) {
    logger.fatal({ err: error }, `inference worker could not start: ${(error as Error).message}`);
    await shutdown.run('start-up failed');
    // A setting at fault (a bucket or credentials S3 refuses, a REDIS_URL Redis refuses) exits like invalid configuration.
    process.exit(error instanceof ConfigError ? CONFIG_EXIT_CODE : 1);
  }
}
