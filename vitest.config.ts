import { defineConfig } from 'vitest/config';

// One worker process: every test file shares the (CPU) Vulkan device through its own Dawn
// instance, and two workers would fight over the machine's two cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/setup.ts'],
  },
});
