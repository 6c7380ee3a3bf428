import { initBackend } from '@btd/model';
import {
  ConfigError,
  SHUTDOWN_PHASE,
  Shutdown,
  closeRedis,
  createLogger,
  createProducerConnection,
  createWorkerConnection,
  ModelRegistry,
  ObjectStore,
  waitForRedis,
} from '@btd/shared';
import { loadTrainerConfig, type TrainerConfig } from './config.js';
import { startTrainer } from './trainer.js';

function readConfig(): TrainerConfig {
  try {
    return loadTrainerConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
}

const config = readConfig();
const logger = createLogger({ name: 'trainer', level: config.logLevel });
const shutdown = new Shutdown({ logger, timeoutMs: config.shutdownTimeoutMs });
shutdown.listen();

const backend = await initBackend({ prefer: config.backend });
logger.info({ backend }, 'tensorflow backend ready');

const store = new ObjectStore(config);
await store.ensureBucket();
const redis = createProducerConnection(config.redisUrl);
const workerConnection = createWorkerConnection(config.redisUrl);
await waitForRedis(redis, config.redisUrl);

const registry = new ModelRegistry({ store, redis, namespace: config.queuePrefix });
const seeded = await registry.seedFromDirectory(config.modelsDir);
logger.info({ seeded }, 'model registry checked');

const trainer = startTrainer({ config, connection: workerConnection, registry, store, logger });
logger.info({ concurrency: config.concurrency }, 'trainer consuming the training queue');

shutdown
  .add('stop trainings', SHUTDOWN_PHASE.drain, () => trainer.close())
  .add('redis', SHUTDOWN_PHASE.connections, async () => {
    await closeRedis(workerConnection);
    await closeRedis(redis);
  })
  .add('object store', SHUTDOWN_PHASE.connections, () => store.close());
