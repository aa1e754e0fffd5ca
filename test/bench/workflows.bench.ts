/**
 * Durable workflows: throughput of 3-step no-op runs (started in batches, each start its own
 * transaction, until every run completed) and step-to-step latency (time between two consecutive
 * steps' completions in one run, from the step rows' timestamps). Arms: one node (in process, live
 * engine on), and on Postgres three node processes working the runs (`benchNode.ts`, live engine
 * on, as the jobs bench's multi-node arm) while this process only starts them.
 */
import type { ChildProcess } from "node:child_process";
import { loadavg } from "node:os";
import { createTestStore } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";
import { round, resourceMeter, summarize, type BenchOptions, type BenchResult, type Engine } from "./harness.ts";
import { startBenchNode, stopBenchNode } from "./nodeProcess.ts";
import { buildWorkflowBenchApp } from "./workflowsApp.ts";

const load = () => loadavg()[0]!.toFixed(2);

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const runs = options.quick ? 20 : 300;
  const results: BenchResult[] = [];
  for (const engine of options.engines) {
    results.push(await noopRuns(engine, runs, 0));
    if (engine === "postgres") results.push(await noopRuns(engine, runs, 3));
  }
  return results;
}

/** `processes` 0: this process works the runs; else that many node processes do and this one only starts them. */
async function noopRuns(engine: Engine, runs: number, processes: number): Promise<BenchResult> {
  const made = await createTestStore(engine);
  const { tether } = buildWorkflowBenchApp(made.store, { work: processes === 0 });
  const nodes: ChildProcess[] = [];
  try {
    if (processes === 0) await tether.start();
    else await tether.jobRuntime.start();
    for (let i = 0; i < processes; i += 1) nodes.push(await startBenchNode({ url: made.database.url!, app: "workflows", live: true }));
    const client = tether.workflowRuntime.client(null);
    const load0 = load();
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
      scenario: processes === 0 ? "3-step no-op, 1 node" : `3-step no-op, ${processes} node processes`,
      engine,
      runs,
      runsPerSecond: round(runs / seconds, 1),
      stepToStepP50Ms: latency.p50,
      stepToStepP99Ms: latency.p99,
      // With node processes, this process only starts runs: its CPU is not the work's.
      cpuPercentParent: usage.cpuPercent,
      peakRssMb: usage.peakRssMb,
      load1: `${load0} → ${load()}`,
    };
  } finally {
    await Promise.all(nodes.map(stopBenchNode));
    await tether.close();
    await made.close();
  }
}
