export * from './config.js';
export * from './model-provider.js';
export * from './directory-model-provider.js';
export * from './inference.processor.js';
export * from './inference-worker.js';
export * from './result-documents.js';
export * from './worker-metrics.js';
export * from './model-thread.js';
