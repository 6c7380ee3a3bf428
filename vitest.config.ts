import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'tests/**/*.test.ts'],
    // The Redis and S3 the integration tests use: local ones, or containers with TEST_CONTAINERS=true.
    globalSetup: ['tests/helpers/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: integration tests start servers and workers of their own.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
