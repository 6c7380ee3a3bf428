/**
 * @packageDocumentation
 * Building blocks shared by the btd services: configuration, logging, Redis and S3 access,
 * the queue contracts between API and workers, object keys and shutdown.
 */
export * from './config/index.js';
export * from './logger.js';
export * from './redis.js';
export * from './redis-lease.js';
export * from './memory-budget.js';
export * from './redis-unavailable.error.js';
export * from './redis-at-start.js';
export * from './wait-at-start.js';
export * from './storage/index.js';
export * from './queues/index.js';
export * from './shutdown.js';
export * from './keys.js';
export * from './model-task.js';
export * from './assert-never.js';
export * from './registry/index.js';
export * from './thread-script.js';
export * from './service-ready.js';
