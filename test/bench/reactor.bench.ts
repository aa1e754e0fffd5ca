/**
 * Reactor bench: write → subscriber-visible latency, re-executions and DB queries per write, CPU
 * and peak RSS, for N live subscribers held in-process through the server-side caller (no
 * network), Tether against the hand-written baseline (see reactorApps.ts), on each engine.
 *
 * Scenarios (each on a fresh database, per engine × system × N):
 * - same-query: N subscribers of tasks.byProject({ projectId: "p1" }); every write adds a task to
 *   p1, so every subscriber must see it. Latency samples: one per subscriber per write.
 * - distinct-filters: subscriber i watches tasks.byAssignee({ assigneeId: `u${i}` }) (N users);
 *   each write adds a task assigned to one of them. Latency samples: the affected subscriber.
 * Writes are sequential (tasks.add through the caller) with a short gap; each is timed from just
 * before the mutation call until every target's data holds the new row, and the next write waits
 * until the previous one's work is over (baseline: all N refetches delivered).
 *
 * Columns: p50Ms/p99Ms/maxMs over all latency samples; reExecPerWrite = reactor re-executions
 * (Tether) or refetches (baseline) per write; dbQueriesPerWrite = SQL statements Prisma sent
 * (the mutation's own included: Tether's is BEGIN, INSERT, xid lookup, COMMIT; the baseline's a
 * single INSERT), readQueriesPerWrite = the SELECTs among them, feedQueriesPerWrite = change-feed
 * reads of _tether_changes (see reactorStore.ts); messagesPerWrite = messages subscribers
 * received; cpuPercent/cpuMsPerWrite = this process's CPU (user+system, all threads) over the
 * write phase, gaps included — PGlite runs in this process, a Postgres server's CPU is not
 * counted; peakRssMb = peak RSS from opening the subscriptions to the last write (rssBeforeMb:
 * before the case's store was opened); setupMs = time to open all N subscriptions and receive
 * their first messages.
 *
 * Targets from the issue: p99 ≤ 25 ms at 1,000 subscribers on Postgres; 10,000 distinct-filter
 * subscribers with one affected → ≤ 2 re-executions per write; 10,000 subscriptions on one node
 * under 2 GB RSS.
 */
import type { Engine } from "@tether/server";
import { createChangeFeed } from "@tether/server/internal";
import { collectGarbage, now, resourceMeter, round, sleep, summarize, type BenchOptions, type BenchResult } from "./harness.ts";
import { buildBaselineBench, buildTetherBench, type BenchContext } from "./reactorApps.ts";
import { createBenchStore, delta, snapshot, type BenchStore } from "./reactorStore.ts";
import { SubscriberPool, type OpenStream } from "./reactorSubscribers.ts";

type System = "tether" | "baseline";
type Scenario = "same-query" | "distinct-filters";

interface Plan {
  subscribers: number;
  /** Writes per case, unless the write budget runs out first (never fewer than minWrites). */
  writes: number;
  minWrites: number;
  writeBudgetMs: number;
  gapMs: number;
  /** Subscriptions opened at once. */
  chunk: number;
  /** Longest a single write may take to reach all its targets. */
  writeTimeoutMs: number;
}

const WRITER: BenchContext = { user: { id: "writer" } };
const subscriberCtx = (i: number): BenchContext => ({ user: { id: `u${i}` } });
/** Write k affects subscriber (k·7919 + 1) mod N: spread over the range, distinct for k < N. */
const targetOf = (k: number, n: number) => (k * 7919 + 1) % n;

interface Harnessed {
  openStream: OpenStream;
  write(k: number): Promise<unknown>;
  reExecutions(): number;
  /** Resolves once the work a write started is over (all of it, not only the targets'). */
  quiesce(messagesBefore: number): Promise<void>;
  check(): string | null;
  close(): Promise<void>;
}

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (!predicate()) {
    if (now() > deadline) return false;
    await sleep(2);
  }
  return true;
}

async function seed(bench: BenchStore, scenario: Scenario, n: number): Promise<void> {
  const db = bench.store.db;
  await db.user.create({ data: { id: "owner", email: "owner@bench", name: "Owner" } });
  await db.project.create({ data: { id: "p1", name: "Bench", ownerId: "owner" } });
  if (scenario === "distinct-filters") {
    for (let start = 0; start < n; start += 1000) {
      const data = Array.from({ length: Math.min(1000, n - start) }, (_, j) => ({ id: `u${start + j}`, email: `u${start + j}@bench`, name: `User ${start + j}` }));
      await db.user.createMany({ data });
    }
  }
}

function writeInput(scenario: Scenario, k: number, n: number) {
  const title = `write-${k}`;
  return scenario === "same-query"
    ? { projectId: "p1", title }
    : { projectId: "p1", title, assigneeId: `u${targetOf(k, n)}` };
}

async function harnessTether(bench: BenchStore, scenario: Scenario, pool: SubscriberPool, n: number): Promise<Harnessed> {
  const feed = await createChangeFeed({ sql: bench.countingSql, log: bench.store.log });
  const app = buildTetherBench(bench.store, feed);
  const writer = app.caller(WRITER);
  return {
    openStream: async (i, signal) => {
      const live = scenario === "same-query"
        ? { path: "tasks.byProject", input: { projectId: "p1" } }
        : { path: "tasks.byAssignee", input: { assigneeId: `u${i}` } };
      return (await app.caller(subscriberCtx(i), signal).$live(live)) as AsyncIterable<unknown>;
    },
    write: (k) => writer.tasks.add(writeInput(scenario, k, n)),
    reExecutions: () => app.tether.stats.live().reExecutions,
    quiesce: async () => undefined, // the reactor's work for a write is the targets' re-execution
    check: () => {
      const stats = app.tether.stats.live();
      const groups = scenario === "same-query" ? 1 : n;
      return stats.subscriptions === n && stats.groups === groups
        ? null
        : `expected ${n} subscriptions in ${groups} groups, reactor has ${stats.subscriptions} in ${stats.groups}`;
    },
    close: async () => {
      await pool.closeAll();
      await app.tether.close();
      await feed.close();
    },
  };
}

async function harnessBaseline(bench: BenchStore, scenario: Scenario, pool: SubscriberPool, n: number): Promise<Harnessed> {
  const app = buildBaselineBench(bench.store);
  const writer = app.caller(WRITER);
  return {
    openStream: async (i, signal) => {
      const caller = app.caller(subscriberCtx(i), signal);
      const stream = scenario === "same-query"
        ? await caller.tasks.onByProject({ projectId: "p1" })
        : await caller.tasks.onByAssignee({ assigneeId: `u${i}` });
      return stream as AsyncIterable<unknown>;
    },
    write: (k) => writer.tasks.add(writeInput(scenario, k, n)),
    reExecutions: () => app.counters.refetches,
    // Every subscriber refetches and yields once per write, changed or not.
    quiesce: async (messagesBefore) => {
      await waitFor(() => pool.messages >= messagesBefore + n, 120_000);
    },
    check: () => (app.listeners() === n ? null : `expected ${n} invalidate listeners, have ${app.listeners()}`),
    close: async () => {
      await pool.closeAll();
    },
  };
}

async function runCase(engine: Engine, scenario: Scenario, system: System, plan: Plan): Promise<BenchResult> {
  const n = plan.subscribers;
  const gcAvailable = await collectGarbage();
  const rssBeforeMb = round(process.memoryUsage.rss() / 1024 / 1024, 1);
  const bench = await createBenchStore(engine, { captureChanges: system === "tether" });
  const notes: string[] = [];
  let harnessed: Harnessed | null = null;
  const pool = new SubscriberPool(system);
  try {
    await seed(bench, scenario, n);
    harnessed = system === "tether" ? await harnessTether(bench, scenario, pool, n) : await harnessBaseline(bench, scenario, pool, n);
    const h = harnessed;

    const overall = resourceMeter();
    const setupStart = now();
    await pool.open(n, plan.chunk, h.openStream);
    const setupMs = round(now() - setupStart);
    await sleep(50);
    const problem = h.check();
    if (problem) notes.push(problem);

    const counters0 = snapshot(bench.counters);
    const reExec0 = h.reExecutions();
    const messages0 = pool.messages;
    const samples: number[] = [];
    const meter = resourceMeter();
    const writesStart = now();
    let writes = 0;
    for (let k = 0; k < plan.writes; k++) {
      if (k >= plan.minWrites && now() - writesStart > plan.writeBudgetMs) {
        notes.push(`writes capped at ${k} of ${plan.writes} (time budget ${plan.writeBudgetMs / 1000} s)`);
        break;
      }
      const targets = scenario === "same-query" ? "all" : [targetOf(k, n)];
      const messagesBefore = pool.messages;
      const { seen } = pool.expect(`write-${k}`, targets, plan.writeTimeoutMs);
      try {
        await h.write(k);
        samples.push(...(await seen));
      } catch (error) {
        notes.push((error as Error).message);
        break;
      }
      await h.quiesce(messagesBefore);
      writes += 1;
      await sleep(plan.gapMs);
    }
    const resources = meter.stop();
    const peak = overall.stop();
    const queries = delta(bench.counters, counters0);
    const perWrite = (value: number) => (writes > 0 ? round(value / writes) : null);
    const latency = summarize(samples);
    if (pool.failures.length > 0) notes.push(`${pool.failures.length} stream failures: ${String(pool.failures[0])}`);
    if (pool.openCount() !== n) notes.push(`${n - pool.openCount()} subscriptions ended early`);
    if (!gcAvailable) notes.push("no gc between scenarios");
    return {
      suite: "reactor",
      scenario,
      engine,
      system,
      transport: "in-process caller",
      subscribers: n,
      writes,
      p50Ms: latency.p50,
      p99Ms: latency.p99,
      maxMs: latency.max,
      reExecPerWrite: perWrite(h.reExecutions() - reExec0),
      dbQueriesPerWrite: perWrite(queries.statements),
      readQueriesPerWrite: perWrite(queries.reads),
      feedQueriesPerWrite: perWrite(queries.feed),
      messagesPerWrite: perWrite(pool.messages - messages0),
      cpuPercent: resources.cpuPercent,
      cpuMsPerWrite: perWrite(resources.cpuMs),
      peakRssMb: peak.peakRssMb,
      rssBeforeMb,
      setupMs,
      note: notes.join("; ") || undefined,
    };
  } finally {
    if (harnessed) await harnessed.close();
    else await pool.closeAll();
    await bench.close();
  }
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  // BENCH_SUBSCRIBERS=1000 (comma list) and BENCH_SYSTEMS=tether run a subset, for profiling.
  const sizes = process.env.BENCH_SUBSCRIBERS
    ? process.env.BENCH_SUBSCRIBERS.split(",").map(Number)
    : options.quick ? [100, 1_000] : [100, 1_000, 10_000];
  const systems = (process.env.BENCH_SYSTEMS?.split(",") ?? ["tether", "baseline"]) as Array<"tether" | "baseline">;
  const base = options.quick ? { writes: 10, writeBudgetMs: 5_000 } : { writes: 30, writeBudgetMs: 15_000 };
  const results: BenchResult[] = [];
  for (const subscribers of sizes) {
    for (const scenario of ["same-query", "distinct-filters"] as const) {
      for (const engine of options.engines) {
        for (const system of systems) {
          // The baseline's writes at 10,000 take seconds each: two are enough to measure them.
          const plan: Plan = { ...base, minWrites: subscribers >= 10_000 ? 2 : 3, subscribers, gapMs: 25, chunk: 500, writeTimeoutMs: 120_000 };
          const started = now();
          const row = await runCase(engine, scenario, system, plan);
          console.error(
            `reactor ${scenario} ${engine} ${system} n=${subscribers}: p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, ` +
              `${row.reExecPerWrite} re-exec/write, ${row.writes} writes, ${round((now() - started) / 1000, 1)} s` +
              (row.note ? ` (${row.note})` : ""),
          );
          results.push(row);
        }
      }
    }
  }
  return results;
}
