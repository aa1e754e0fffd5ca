import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // test/faults/*.faults.ts run here in their short form (FAULTS_FULL unset); the soak only in
    // `npm run test:faults` (vitest.faults.config.ts), which runs every scenario in full.
    include: ["packages/*/src/**/*.test.ts", "packages/*/src/**/*.test.tsx", "test/**/*.test.ts", "test/**/*.test.tsx", "test/faults/*.faults.ts"],
    // The browser tests run afterwards, alone (vitest.e2e.config.ts): a Next build and Chromium
    // beside the rest of the suite would starve its timing-sensitive tests on 2 cores.
    exclude: ["**/node_modules/**", "test/bench/**", "test/e2e/**", "test/faults/soak.faults.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file opens its own databases; PGlite is CPU-heavy, so keep parallelism modest on 2 cores.
    maxWorkers: 2,
    env: { TETHER_LOG_LEVEL: "silent", CHECKPOINT_DISABLE: "1" },
  },
});
