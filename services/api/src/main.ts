import { CONFIG_EXIT_CODE, ConfigError, SHUTDOWN_PHASE, Shutdown, createLogger, loadConfigOrExit } from '@btd/shared';
import { startApi } from './api.js';
import { loadApiConfig } from './config.js';

const config = loadConfigOrExit(loadApiConfig);
const logger = createLogger({ name: 'api', level: config.logLevel });
const shutdown = new Shutdown({ logger, timeoutMs: config.shutdownTimeoutMs });
// Stopped while it waits for Redis or S3, the API gives up its start and the shutdown exits.
const starting = new AbortController();
shutdown.add('start-up', SHUTDOWN_PHASE.intake, () => starting.abort()).listen();
const api = await startApi(config, logger, [], { signal: starting.signal }).catch((error: unknown): Promise<never> => {
  // Stopped by a signal while it waited: the shutdown under way exits.
  if (shutdown.started) return new Promise<never>(() => {});
  logger.fatal({ err: error }, error instanceof Error ? error.message : 'the API could not start');
  // A setting at fault (a bucket or credentials S3 refuses, a REDIS_URL Redis refuses) exits like invalid configuration.
  process.exit(error instanceof ConfigError ? CONFIG_EXIT_CODE : 1);
});

if (api.local?.created) {
  // Shown once, on the terminal of whoever started it; later starts only say where it is kept.
  console.log(`\nNo API_KEYS configured: created an API key for client "local":\n\n  ${api.local.key}\n\nStored in ${api.local.file}\n`);
} else if (api.local) {
  logger.info({ file: api.local.file }, 'no API_KEYS configured: using the local client key from this file');
}
logger.info({ url: api.url, docs: `${api.url}/docs` }, 'API listening');

shutdown
  .add('stop HTTP intake', SHUTDOWN_PHASE.intake, api.stopIntake)
  .add('stop the pending-submission sweep, drain result and webhook consumers', SHUTDOWN_PHASE.drain, api.drain)
  .add('close queues, Redis and S3', SHUTDOWN_PHASE.connections, api.closeConnections);
