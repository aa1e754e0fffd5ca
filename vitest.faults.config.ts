import { defineConfig } from "vitest/config";

// `npm run test:faults`: the fault suite in full (larger runs, the soak). One file at a time: the
// scenarios own the machine's CPU while they measure staleness, RSS and lag.
export default defineConfig({
  test: {
    include: ["test/faults/**/*.faults.ts", "test/redteamWorkflows/crash.test.ts"],
    testTimeout: 30 * 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    env: { TETHER_LOG_LEVEL: "silent", CHECKPOINT_DISABLE: "1", FAULTS_FULL: "1" },
  },
});
