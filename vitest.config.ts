import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Two fault scenarios run here in their short form (FAULTS_FULL unset, ~1 min); every scenario,
    // in full and with the soak, runs in `npm run test:faults` (vitest.faults.config.ts).
    include: ["packages/*/src/**/*.test.ts", "packages/*/src/**/*.test.tsx", "test/**/*.test.ts", "test/**/*.test.tsx", "test/faults/fuzz.faults.ts", "test/faults/postgres.faults.ts"],
    // The browser tests run afterwards, alone (vitest.e2e.config.ts): a Next build and Chromium
    // beside the rest of the suite would starve its timing-sensitive tests on 2 cores.
    // The red team's SIGKILL scenarios for workflows repeat what workflowsNodes.test.ts proves
    // (kill inside a step, between steps, in a sleep; one of two nodes) at a cost of ~95 s, over
    // npm test's 15-minute budget: they run with the fault suite (`npm run test:faults`).
    // Red-team findings not fixed yet run in `npm run test:open` (vitest.open.config.ts).
    exclude: ["**/node_modules/**", "test/bench/**", "test/e2e/**", "test/redteamWorkflows/crash.test.ts", "test/**/open/**"],
    // Safety bounds only (tests wait for conditions): generous, so a loaded 2-core machine fails nothing by starving.
    // One migrated PGlite database per run, loaded by every PGlite test store (test/support/pgliteTemplate.ts).
    globalSetup: ["test/support/pgliteTemplate.ts"],
    testTimeout: 90_000,
    hookTimeout: 240_000,
    // Each file opens its own databases; PGlite is CPU-heavy, so keep parallelism modest on 2 cores.
    maxWorkers: 2,
    env: { TETHER_LOG_LEVEL: "silent", CHECKPOINT_DISABLE: "1" },
  },
});
