import { defineConfig } from 'vitest/config';

// Two projects: `unit` (test/unit, test/pipeline) needs no servers; `integration` checks first that
// the real PostgreSQL and Kafka answer (test/support/global-setup.ts). Files run one at a time:
// integration tests start engines with worker pools, and on 2 cores they would starve each other.
export default defineConfig({
  test: {
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/pipeline/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], globalSetup: ['test/support/global-setup.ts'] } },
    ],
  },
});
