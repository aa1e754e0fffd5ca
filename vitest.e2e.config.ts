import { defineConfig } from "vitest/config";

// Browser tests of the demo (test/e2e): run by `npm test` after the rest of the suite, one file at
// a time. They need /usr/bin/chromium (apt-get install -y chromium; .ci/run installs it).
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 400_000,
    maxWorkers: 1,
    env: { TETHER_LOG_LEVEL: "silent", CHECKPOINT_DISABLE: "1", NEXT_TELEMETRY_DISABLED: "1" },
  },
});
