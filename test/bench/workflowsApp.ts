/**
 * The workflows bench's app: a 3-step no-op workflow. Used in process by workflows.bench.ts and
 * in child processes by benchNode.ts (the multi-node arm).
 */
import { initTether } from "@tether/server";
import { schema } from "../../generated/tether/index.ts";
import type { AppStore } from "../support/databases.ts";

export function buildWorkflowBenchApp(store: AppStore, options: { work: boolean }) {
  const tether = initTether<{ user: null }>().create({
    store,
    schema,
    limits: { rate: false },
    jobs: { work: options.work, limits: { pollingIntervalSeconds: 0.5 } },
    workflows: { limits: { concurrency: 16 } },
  });
  const workflows = tether.workflows({
    noop: tether.workflow.run(async ({ step }) => {
      await step.run("one", () => 1);
      await step.run("two", () => 2);
      await step.run("three", () => 3);
      return "ok";
    }),
  });
  return { tether, workflows };
}
