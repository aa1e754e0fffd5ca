import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/src/**/*.test.tsx", "test/**/*.test.ts", "test/**/*.test.tsx"],
    exclude: ["**/node_modules/**", "test/bench/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file opens its own databases; PGlite is CPU-heavy, so keep parallelism modest on 2 cores.
    maxWorkers: 2,
    env: { TETHER_LOG_LEVEL: "silent", CHECKPOINT_DISABLE: "1" },
  },
});
