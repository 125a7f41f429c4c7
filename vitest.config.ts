import { defineConfig } from 'vitest/config';

// One test file at a time, each in a fresh worker process: two workers would fight over the
// machine's two cores for the (CPU) Vulkan device, and a native crash in one file (Dawn, the
// driver) then fails that file by name instead of taking the rest of the run with it.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: 1 } },
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/setup.ts'],
  },
});
