import { initBackend } from '@btd/model';
import {
  CONFIG_EXIT_CODE,
  announceReady,
  ConfigError,
  ModelRegistry,
  ObjectStore,
  SHUTDOWN_PHASE,
  Shutdown,
  closeRedis,
  createLogger,
  createProducerConnection,
  createWorkerConnection,
  liveTrainerDatasets,
  loadConfigOrExit,
  logConnectionHealth,
  openBucket,
  waitForRedisAtStart,
  waitForStore,
  type Logger,
} from '@btd/shared';
import { loadTrainerConfig, type TrainerConfig } from './config.js';
import { publishDatasets } from './dataset-publication.js';
import { createDatasetResolver } from './dataset-source.js';
import { checkEvaluationSets } from './evaluation-sets.js';
import { startTrainer } from './trainer.js';

async function start(config: TrainerConfig, logger: Logger, shutdown: Shutdown): Promise<void> {
  const backend = await initBackend({ prefer: config.backend });
  logger.info({ backend }, 'tensorflow backend ready');

  const store = new ObjectStore(config);
  const redis = createProducerConnection(config.redisUrl);
  const connection = createWorkerConnection(config.redisUrl);
  shutdown
    .add('redis', SHUTDOWN_PHASE.connections, () => Promise.all([closeRedis(redis), closeRedis(connection)]))
    .add('object store', SHUTDOWN_PHASE.connections, () => store.close());
  logConnectionHealth(redis, 'producer', logger);
  logConnectionHealth(connection, 'worker', logger);

  // Redis and S3 may come up after the trainer (Docker Compose, Kubernetes): it waits for them; a refusal stops the start.
  const starting = new AbortController();
  shutdown.add('start-up', SHUTDOWN_PHASE.intake, () => starting.abort());
  const wait = { logger, signal: starting.signal };
  await waitForRedisAtStart(redis, config.redisUrl, { ...wait, timeoutMs: config.redisStartupTimeoutMs });
  await openBucket(store, wait);
  // A mistyped EVAL_SET_* stops the trainer here rather than failing every training after its last epoch.
  await waitForStore('evaluation sets', () => checkEvaluationSets(config, createDatasetResolver(store, config)), wait);
  const registry = new ModelRegistry({ store, redis, namespace: config.queuePrefix });
  // The gate needs a promoted model to compare with; an empty registry gets the bundled ones first.
  const seeded = await waitForStore('model registry', () => registry.seedFromDirectory(config.modelsDir, 'trainer'), wait);
  logger.info({ seeded }, 'model registry checked');

  // The API reads it to refuse, before queueing, a local dataset that no trainer could read; a
  // trainer that cannot read one reads it to tell whether another could.
  const publication = await publishDatasets({ redis, prefix: config.queuePrefix, datasetRoots: config.datasetRoots, logger });
  shutdown.add('dataset roots (withdrawn)', SHUTDOWN_PHASE.intake, () => publication.close());
  const readers = { trainer: publication.trainer, live: () => liveTrainerDatasets(redis, config.queuePrefix), waitMs: config.datasetWaitMs };
  const trainer = startTrainer({ config, connection, registry, store, logger, readers });
  shutdown.add('trainings (handed back to the queue)', SHUTDOWN_PHASE.drain, () => trainer.close());
  logger.info({ prefix: config.queuePrefix, concurrency: config.concurrency }, 'trainer consuming the training queue');
  await announceReady(logger, 'trainer');
}

const config = loadConfigOrExit(() => loadTrainerConfig());
const logger = createLogger({ name: 'trainer', level: config.logLevel });
const shutdown = new Shutdown({ logger, timeoutMs: config.shutdownTimeoutMs });
shutdown.listen();
try {
  await start(config, logger, shutdown);
} catch (error) {
  // Stopped by a signal while it waited for Redis or S3: the shutdown under way exits.
  if (!shutdown.started) {
    logger.fatal({ err: error }, `trainer could not start: ${(error as Error).message}`);
    await shutdown.run('start-up failed');
    // A setting at fault (an unusable EVAL_SET_*, a bucket or credentials S3 refuses, a REDIS_URL Redis refuses) exits like invalid configuration.
    process.exit(error instanceof ConfigError ? CONFIG_EXIT_CODE : 1);
  }
}
