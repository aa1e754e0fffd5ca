/**
 * Jobs suite (issue 13): what the job runtime on pg-boss does on one machine.
 *
 * 1. Throughput: N no-op jobs committed in one transaction, then the time from COMMIT until the
 *    last one is completed (counted in `_tether_jobs`, polled every 20 ms). Arms: one node with
 *    the job runtime only; one node that also runs the live engine (reactor + change feed reading
 *    every job-state change, as a real node does); one node with DEFAULT_JOB_LIMITS but
 *    `burstWhenBatchFull: false` (what the burst buys); and on Postgres three worker processes
 *    (PGlite is one process's database). Targets on Postgres: ≥ 1,000 no-op jobs/s on one node.
 * 2. Enqueue→start: an open-loop enqueuer sends one job every 5 ms (200/s), each in its own
 *    transaction (`enqueueNow`), to a node working them; latency from just before the enqueue call
 *    to the handler's start, and from the enqueue's COMMIT returning. Targets: p50 ≤ 20 ms,
 *    p99 ≤ 100 ms.
 * 3. Progress → subscriber: a job reports progress 1..K, one report every 150 ms (over the
 *    100 ms coalescing window, so each is written at once); a `watchJob` of @tether/client over a
 *    real WebSocket (createTetherServer) records when each value arrives. Target p99 ≤ 50 ms.
 */
import type { ChildProcess } from "node:child_process";
import { loadavg } from "node:os";
import type { JobLimits } from "@tether/server";
import { watchJob } from "@tether/client";
import { jobsClientAs, serveJobsApp } from "../fixtures/jobsApp.ts";
import { createTestStore, type AppStore } from "../support/databases.ts";
import { waitFor } from "../support/waitFor.ts";
import { now, resourceMeter, round, sleep, summarize, type BenchOptions, type BenchResult, type Engine } from "./harness.ts";
import { buildBenchApp, type BenchRouter } from "./jobsApp.ts";
import { startBenchNode, stopBenchNode } from "./nodeProcess.ts";

const SUITE = "jobs";

interface Sizes {
  jobs: number;
  latencySeconds: number;
  rate: number;
  progressUpdates: number;
}

const sizes = (quick: boolean): Sizes =>
  quick ? { jobs: 300, latencySeconds: 2, rate: 200, progressUpdates: 10 } : { jobs: 3_000, latencySeconds: 10, rate: 200, progressUpdates: 60 };

const load = () => loadavg()[0]!.toFixed(2);

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const size = sizes(options.quick);
  const results: BenchResult[] = [];
  for (const engine of options.engines) {
    results.push(await throughput(engine, size, { scenario: "throughput: 1 node, jobs only", live: false }));
    results.push(await throughput(engine, size, { scenario: "throughput: 1 node, with live engine", live: true }));
    results.push(await throughput(engine, size, { scenario: "throughput: 1 node, burstWhenBatchFull off", live: false, limits: { burstWhenBatchFull: false } }));
    results.push(await throughput(engine, size, { scenario: "throughput: 1 node, batchSize 16, concurrency 16", live: false, limits: { batchSize: 16, concurrency: 16 } }));
    if (engine === "postgres") results.push(await throughput(engine, size, { scenario: "throughput: 3 node processes, with live engine", live: true, processes: 3 }));
    results.push(await enqueueToStart(engine, size));
    results.push(await progressToSubscriber(engine, size));
  }
  return results;
}

async function completed(store: AppStore): Promise<number> {
  const [row] = await store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "_tether_jobs" WHERE "status" = 'completed'`);
  return row?.n ?? 0;
}

async function throughput(
  engine: Engine,
  size: Sizes,
  arm: { scenario: string; live: boolean; limits?: Partial<JobLimits>; processes?: number },
): Promise<BenchResult> {
  const made = await createTestStore(engine);
  const { store } = made;
  const nodes: ChildProcess[] = [];
  // The enqueuer; with in-process work also the worker.
  const app = buildBenchApp(store, { work: !arm.processes, limits: arm.limits });
  try {
    if (arm.live) await app.tether.start();
    else await app.tether.jobRuntime.start();
    for (let i = 0; i < (arm.processes ?? 0); i += 1) nodes.push(await startBenchNode({ url: made.database.url!, app: "jobs", live: arm.live, limits: arm.limits }));
    const load0 = load();
    // All N in one transaction: workers see them at COMMIT, so the clock measures working only.
    await store.sql.transaction(async (tx) => {
      for (let seq = 0; seq < size.jobs; seq += 1) await app.tether.jobRuntime.enqueueIn(tx, "noop", { seq });
    });
    const meter = resourceMeter();
    const t0 = now();
    // Polled every 20 ms (not waitFor's 5): on PGlite the count shares the one connection.
    while ((await completed(store)) < size.jobs) await sleep(20);
    const seconds = (now() - t0) / 1000;
    const resources = meter.stop();
    return {
      suite: SUITE,
      scenario: arm.scenario,
      engine,
      jobs: size.jobs,
      jobsPerSecond: round(size.jobs / seconds, 1),
      targetJobsPerSecond: engine === "postgres" && !arm.processes && !arm.live ? 1000 : null,
      cpuPercentParent: resources.cpuPercent,
      load1: `${load0} → ${load()}`,
    };
  } finally {
    await Promise.all(nodes.map(stopBenchNode));
    await app.tether.close();
    await made.close();
  }
}

async function enqueueToStart(engine: Engine, size: Sizes): Promise<BenchResult> {
  const made = await createTestStore(engine);
  const sent = new Map<number, { before: number; committed?: number }>();
  const started = new Map<number, number>();
  const app = buildBenchApp(made.store, { work: true, onStart: (seq) => started.set(seq, now()) });
  try {
    await app.tether.start();
    // Warm-up: first queries, prepared plans.
    for (let seq = -20; seq < 0; seq += 1) await app.tether.jobRuntime.enqueueNow("noop", { seq });
    await waitFor("warm-up", () => started.has(-1), { timeoutMs: 60_000 });
    const load0 = load();
    const total = size.rate * size.latencySeconds;
    const gapMs = 1000 / size.rate;
    const t0 = now();
    const pending: Promise<unknown>[] = [];
    for (let seq = 0; seq < total; seq += 1) {
      // Open loop: each enqueue at its own slot, whether or not earlier ones returned.
      const due = t0 + seq * gapMs;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      const record: { before: number; committed?: number } = { before: now() };
      sent.set(seq, record);
      pending.push(app.tether.jobRuntime.enqueueNow("noop", { seq }).then(() => (record.committed = now())));
    }
    await Promise.all(pending);
    const achieved = total / ((now() - t0) / 1000);
    await waitFor("every job started", () => started.size >= total + 20, { timeoutMs: 120_000 });
    const fromSend = [...sent].map(([seq, s]) => started.get(seq)! - s.before);
    const fromCommit = [...sent].map(([seq, s]) => started.get(seq)! - s.committed!);
    const a = summarize(fromSend);
    const b = summarize(fromCommit);
    return {
      suite: SUITE,
      scenario: `enqueue→start at ${size.rate} jobs/s (1 node, live engine)`,
      engine,
      jobs: total,
      achievedRate: round(achieved, 1),
      p50Ms: a.p50,
      p99Ms: a.p99,
      maxMs: a.max,
      afterCommitP50Ms: b.p50,
      afterCommitP99Ms: b.p99,
      target: engine === "postgres" ? "p50 ≤ 20, p99 ≤ 100" : null,
      load1: `${load0} → ${load()}`,
    };
  } finally {
    await app.tether.close();
    await made.close();
  }
}

async function progressToSubscriber(engine: Engine, size: Sizes): Promise<BenchResult> {
  const made = await createTestStore(engine);
  const reported = new Map<number, number>();
  const arrived = new Map<number, number>();
  const app = buildBenchApp(made.store, { work: true, onReport: (_id, value) => reported.set(value, now()) });
  await app.tether.start();
  const server = await serveJobsApp(app.router);
  const client = jobsClientAs<BenchRouter>(server, "alice");
  try {
    const load0 = load();
    // Delayed start: the watch is live before the first report.
    const id = await app.tether.jobRuntime.enqueueNow("probe", { updates: size.progressUpdates, gapMs: 150 }, { delay: 1500 }, { id: "alice" });
    let done = false;
    const stop = watchJob(client, id, (w) => {
      const value = w.job?.progress;
      if (value !== undefined && value > 0 && !arrived.has(value)) arrived.set(value, now());
      if (w.job?.status === "completed") done = true;
    });
    await waitFor("probe completed", () => done, { timeoutMs: 120_000 });
    stop();
    const latencies = [...arrived].filter(([value]) => reported.has(value)).map(([value, at]) => at - reported.get(value)!);
    const s = summarize(latencies);
    return {
      suite: SUITE,
      scenario: "progress → watchJob subscriber (WebSocket)",
      engine,
      updates: size.progressUpdates,
      delivered: latencies.length,
      p50Ms: s.p50,
      p99Ms: s.p99,
      maxMs: s.max,
      target: engine === "postgres" ? "p99 ≤ 50" : null,
      load1: `${load0} → ${load()}`,
    };
  } finally {
    await client.close();
    await server.close();
    await app.tether.close();
    await made.close();
  }
}
