// Moved to the shared package so every service logs Redis outages the same way.
export { logConnectionHealth } from '@btd/shared';
