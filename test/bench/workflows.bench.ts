/**
 * Durable workflows on one node: throughput of 3-step no-op runs (started in batches, each start
 * its own transaction, until every run completed) and step-to-step latency (time between two
 * consecutive steps' completions in one run, from the step rows' timestamps).
 */
import { initTether } from "@tether/server";
import { schema } from "../../generated/tether/index.ts";
import { createTestStore } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";
import { round, resourceMeter, summarize, type BenchOptions, type BenchResult, type Engine } from "./harness.ts";

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const runs = options.quick ? 20 : 300;
  const results: BenchResult[] = [];
  for (const engine of options.engines) results.push(await noopRuns(engine, runs));
  return results;
}

async function noopRuns(engine: Engine, runs: number): Promise<BenchResult> {
  const made = await createTestStore(engine);
  const tether = initTether<{ user: null }>().create({
    store: made.store,
    schema,
    limits: { rate: false },
    jobs: { limits: { pollingIntervalSeconds: 0.5 } },
    workflows: { limits: { concurrency: 16 } },
  });
  tether.workflows({
    noop: tether.workflow.run(async ({ step }) => {
      await step.run("one", () => 1);
      await step.run("two", () => 2);
      await step.run("three", () => 3);
      return "ok";
    }),
  });
  try {
    await tether.start();
    const client = tether.workflowRuntime.client(null);
    const meter = resourceMeter();
    const started = performance.now();
    for (let i = 0; i < runs; i += 10) await Promise.all(Array.from({ length: Math.min(10, runs - i) }, () => client.start("noop", null)));
    await waitFor(
      "all runs completed",
      async () => (await made.store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "_tether_workflows" WHERE status = 'completed'`))[0]!.n === runs,
      { timeoutMs: 600_000 },
    );
    const seconds = (performance.now() - started) / 1000;
    const usage = meter.stop();
    const gaps = await made.store.sql.query<{ ms: number }>(
      `SELECT extract(epoch FROM (s2.finished_at - s1.finished_at)) * 1000 AS ms
       FROM "_tether_workflow_steps" s1 JOIN "_tether_workflow_steps" s2 ON s2.workflow_id = s1.workflow_id AND s2.idx = s1.idx + 1`,
    );
    const latency = summarize(gaps.map((g) => Number(g.ms)));
    return {
      suite: "workflows",
      scenario: "3-step no-op, 1 node",
      engine,
      runs,
      runsPerSecond: round(runs / seconds, 1),
      stepToStepP50Ms: latency.p50,
      stepToStepP99Ms: latency.p99,
      cpuPercent: usage.cpuPercent,
      peakRssMb: usage.peakRssMb,
    };
  } finally {
    await tether.close();
    await made.close();
  }
}
