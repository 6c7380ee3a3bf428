export * from './object-not-found.error.js';
export * from './object-read-interrupted.error.js';
export * from './objects-not-deleted.error.js';
export * from './object-store.js';
export * from './embedded-s3.js';
export * from './store-unavailable.js';
export * from './store-at-start.js';
