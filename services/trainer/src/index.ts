export * from './config.js';
export * from './trainer.js';
export * from './training.processor.js';
export * from './promotion-gate.js';
export * from './dataset-source.js';
export * from './dataset-publication.js';
export * from './dataset-spec.js';
export * from './evaluation-sets.js';
