import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["redteam/jobs2/**/*.test.ts"],
    testTimeout: 90_000,
    hookTimeout: 240_000,
    maxWorkers: 1,
    env: { TETHER_LOG_LEVEL: "silent", CHECKPOINT_DISABLE: "1" },
  },
});
