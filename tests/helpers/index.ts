export * from './repo-paths.js';
export * from './test-redis.js';
export * from './test-s3.js';
export * from './test-containers.js';
export * from './test-models.js';
export * from './wait-for.js';
export * from './free-port.js';
export * from './service-process.js';
