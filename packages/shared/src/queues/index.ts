export * from './queue-options.js';
export * from './inference.queue.js';
export * from './results.queue.js';
export * from './webhooks.queue.js';
export * from './training.queue.js';
export * from './close-worker.js';
export * from './s3-outage.js';
export * from './trainer-datasets.js';
