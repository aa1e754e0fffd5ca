/**
 * Live bench (`npm run bench -- live`): live queries as users meet them — server nodes and
 * clients in separate processes over real WebSockets (liveNode.ts, liveClients.ts), writes from
 * raw SQL and tRPC mutations (liveWorkload.ts), Tether beside the hand-written baseline in the
 * same run, on each engine (PGlite: one node, it is embedded in it).
 *
 * Workloads (BENCH_LIVE=a,b,c picks; BENCH_ENGINES=pglite,postgres; BENCH_QUICK=1 small sizes):
 * - a "one-query": 1,000 users each subscribed to the same query (tasks of p0, in full), one
 *   `tasks.add` mutation every 20 ms into p0: every subscriber must see every write.
 * - b "mixed": 2 nodes on one Postgres (1 on PGlite), 500 subscriptions over ~150 distinct
 *   queries (filters by project, status, assignee, title prefix, ordered with take, counts,
 *   aggregates, nested includes), 50 writes/s: raw-SQL and mutation inserts and updates.
 * - c "capacity": b's setup (Tether only), the write rate raised step by step until commit →
 *   visible p99 > 250 ms (or the writers fall behind); reports the last rate that held.
 * Writers are open-loop: write k is sent at start + k/rate whether earlier ones returned or not
 * (at most 256 in flight), so a slow write path shows as latency, not as a lower rate.
 * writesPerSec = answered writes / (first send → last answer): a queue of slow writes lowers it.
 *
 * Per node and case: executions/s (Tether: reactor executions; baseline: query runs), CPU ms per
 * execution and CPU % (process.cpuUsage of the node process: its Prisma, tRPC, WebSocket and,
 * on PGlite, database work), messages/s, bytes/s (WebSocket payloads its clients received),
 * commit → visible p50/p99/max over the samples of writes stamped inside the measured window
 * (see liveWorkload.ts for what the stamp is), the writers' own call latency, and the node's
 * event-loop delay p99, and the share of wall time its main thread sat runnable in the
 * kernel's run queue waiting for a CPU (runQueueWaitPercent, /proc schedstat: what a loaded
 * machine costs it, distinct from CPU it used). On Postgres, pg_stat_activity is sampled every 250 ms while writing.
 * BENCH_PROFILE=1 profiles node 0 and client process 0 of each case (cpuProfile.ts) and prints their top functions.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createTRPCClient, getUntypedClient, httpLink } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import { createStore, type Engine } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";
import { printProfiles, profileArgs, profilingEnabled, schedstat } from "./cpuProfile.ts";
import { now, round, sleep, summarize, type BenchOptions, type BenchResult } from "./harness.ts";
import type { ClientsReport, ClientUser, Endpoint, LiveClientsConfig } from "./liveClients.ts";
import { prepareDatabase, type LiveNodeConfig, type LiveSystem, type NodeStatsReply } from "./liveNode.ts";
import { makeWrite, mulberry32, pickQueries, projectId, stamp, stampOf, writeSql, type LiveSpec, type TaskWrite, type WriteVia } from "./liveWorkload.ts";

type Workload = "a" | "b" | "c";

// --- child processes ------------------------------------------------------------------------------

class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  readonly ready: Promise<unknown>;
  private exited = false;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    this.ready = new Promise((resolve, reject) => {
      process.on("message", (raw) => {
        const message = raw as { ready?: unknown; id?: number; result?: unknown; error?: string };
        if (message.ready !== undefined) return resolve(message.ready);
        const waiter = this.pending.get(message.id!);
        if (!waiter) return;
        this.pending.delete(message.id!);
        if (message.error !== undefined) waiter.reject(new Error(`${name}: ${message.error}`));
        else waiter.resolve(message.result);
      });
      process.once("exit", (code, signal) => {
        this.exited = true;
        const error = new Error(`${name} exited (${code ?? signal})`);
        reject(error);
        for (const waiter of this.pending.values()) waiter.reject(error);
        this.pending.clear();
      });
    });
    this.ready.catch(() => undefined);
  }

  static start(name: string, file: string, env: Record<string, string>, nodeArgs: string[] = []): Child {
    const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", fileURLToPath(new URL(file, import.meta.url))], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    return new Child(name, child);
  }

  request<T>(message: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.process.send({ id, ...message });
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.process.once("exit", () => resolve()));
    this.process.kill("SIGTERM");
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 8_000);
    await exited;
    clearTimeout(timer);
  }
}

// --- plans ----------------------------------------------------------------------------------------

interface Plan {
  workload: Workload;
  nodes: number;
  clientProcesses: number;
  users: ClientUser[];
  subscriptions: number;
  distinct: number;
  mix: "one-project" | "mixed";
  rates: number[];
  warmupMs: number;
  durationMs: number;
  drainMs: number;
}

function planFor(workload: Workload, engine: Engine, system: LiveSystem, quick: boolean): Plan {
  const nodes = workload !== "a" && engine === "postgres" ? 2 : 1;
  const durationMs = quick ? 4_000 : 10_000;
  const warmupMs = quick ? 1_000 : 2_000;
  const drainMs = system === "baseline" ? 3_000 : 1_500;
  if (workload === "a") {
    const subscriptions = quick ? 100 : 1_000;
    const spec: LiveSpec = { name: "byProject", input: { projectId: projectId(0) } };
    const users = Array.from({ length: subscriptions }, (_, i) => ({ user: `c${i}`, node: 0, specs: [spec] }));
    return { workload, nodes, clientProcesses: quick ? 2 : 4, users, subscriptions, distinct: 1, mix: "one-project", rates: [50], warmupMs, durationMs, drainMs };
  }
  const subscriptions = quick ? 100 : 500;
  const distinct = quick ? 40 : 150;
  const perUser = 10;
  const specs = pickQueries(distinct);
  const users: ClientUser[] = [];
  for (let j = 0; j < subscriptions; j++) {
    const u = Math.floor(j / perUser);
    if (!users[u]) users[u] = { user: `c${u}`, node: u % nodes, specs: [] };
    users[u]!.specs.push(specs[j % specs.length]!);
  }
  const rates = workload === "b" ? [50] : quick ? [25, 50, 100] : [25, 50, 75, 100, 150, 200, 300, 400, 600];
  return {
    workload,
    nodes,
    clientProcesses: 2,
    users,
    subscriptions,
    distinct: specs.length,
    mix: "mixed",
    rates,
    warmupMs,
    durationMs: workload === "c" ? (quick ? 3_000 : 6_000) : durationMs,
    drainMs,
  };
}

// --- writers --------------------------------------------------------------------------------------

interface Writers {
  write(write: TaskWrite, k: number): Promise<void>;
  close(): Promise<void>;
}

function makeWriters(engine: Engine, system: LiveSystem, url: string | undefined, nodes: Child[], endpoints: Endpoint[]): Writers {
  const notify = system === "baseline";
  const pool = engine === "postgres" ? new pg.Pool({ connectionString: url, max: 8 }) : null;
  const trpc = endpoints.map((endpoint) =>
    getUntypedClient(createTRPCClient<AnyRouter>({ links: [httpLink({ url: `${endpoint.url}/trpc`, headers: { "x-user": "writer" } })] })),
  );
  return {
    async write(write, k) {
      if (write.via === "sql") {
        const { sql, params } = writeSql(write, notify);
        // Postgres: a separate client, like a script or another service; PGlite is inside node 0.
        if (pool) await pool.query(sql, params);
        else await nodes[0]!.request({ op: "sql", sql, params });
      } else {
        const { kind, via: _via, ...input } = write;
        await trpc[k % trpc.length]!.mutation(kind === "insert" ? "tasks.add" : "tasks.update", input);
      }
    },
    close: async () => {
      await pool?.end();
    },
  };
}

interface DriveResult {
  sent: number;
  done: number;
  failed: number;
  errors: string[];
  /** Call latency (send → answer) per way of writing. */
  sqlMs: number[];
  mutationMs: number[];
  startedAt: number;
  endedAt: number;
  /** Epoch ms of the window's first and last stamp. */
  fromMs: number;
  toMs: number;
  /**
   * Which writer made each stamp, by the stamp's ms (`Math.round(µs / 1000)`, the resolution
   * aggregates carry): latency samples split into raw SQL (≈ commit → visible) and mutations
   * (write → visible). "both" when two kinds share a ms: counted in the totals only.
   */
  viaByStampMs: Map<number, WriteVia | "both">;
  /** The writing process's main thread: CPU ms and run-queue wait ms during the drive. */
  cpuMs: number;
  runQueueWaitMs: number | null;
}

async function drive(writers: Writers, plan: Plan, rate: number, durationMs: number, tag: string, epochMs: number, seed: number): Promise<DriveResult> {
  const random = mulberry32(seed);
  const result: DriveResult = { sent: 0, done: 0, failed: 0, errors: [], sqlMs: [], mutationMs: [], viaByStampMs: new Map(), startedAt: now(), endedAt: 0, fromMs: Date.now(), toMs: 0, cpuMs: 0, runQueueWaitMs: null };
  const cpu0 = process.cpuUsage();
  const wait0 = schedstat()?.waitMs ?? null;
  const inFlight = new Set<Promise<void>>();
  const start = now();
  const total = Math.round((rate * durationMs) / 1000);
  for (let k = 0; k < total; k++) {
    const due = start + (k * 1000) / rate;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    while (inFlight.size >= 256) await Promise.race(inFlight);
    const write = stamp(makeWrite(k, plan.mix, random, tag), k, epochMs);
    const stampMs = Math.round(stampOf(write.title)! / 1000);
    const via = result.viaByStampMs.get(stampMs);
    result.viaByStampMs.set(stampMs, via === undefined || via === write.via ? write.via : "both");
    const t0 = now();
    result.sent += 1;
    const p = writers
      .write(write, k)
      .then(() => {
        result.done += 1;
        (write.via === "sql" ? result.sqlMs : result.mutationMs).push(now() - t0);
      })
      .catch((error: Error) => {
        result.failed += 1;
        if (result.errors.length < 3) result.errors.push(error.message.slice(0, 200));
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  result.toMs = Date.now();
  await Promise.all(inFlight);
  result.endedAt = now();
  const cpu = process.cpuUsage(cpu0);
  result.cpuMs = (cpu.user + cpu.system) / 1000;
  const wait = schedstat()?.waitMs ?? null;
  result.runQueueWaitMs = wait !== null && wait0 !== null ? wait - wait0 : null;
  return result;
}

// --- pg_stat_activity -------------------------------------------------------------------------------

/** Samples what the bench database's backends are doing: mean count per state/wait/statement. */
function activitySampler(url: string | undefined) {
  if (!url) return { stop: async () => [] as string[] };
  const database = new URL(url).pathname.slice(1);
  const client = new pg.Client({ connectionString: url });
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ key: string; n: string }>(
        `SELECT concat_ws(' | ', state, wait_event_type || ':' || wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 50)) AS key, count(*) AS n
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle' GROUP BY 1`,
        [database],
      );
      samples += 1;
      for (const row of rows) counts.set(row.key, (counts.get(row.key) ?? 0) + Number(row.n));
      await sleep(250);
    }
  })().catch(() => undefined);
  return {
    async stop(): Promise<string[]> {
      running = false;
      await loop;
      await client.end().catch(() => undefined);
      return [...counts.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([key, n]) => `${round(n / Math.max(1, samples), 2)}× ${key}`);
    },
  };
}

// --- a case -----------------------------------------------------------------------------------------

interface Measured {
  rate: number;
  drive: DriveResult;
  statsBefore: NodeStatsReply[];
  statsAfter: NodeStatsReply[];
  spanMs: number;
  clients: ClientsReport[];
  activity: string[];
}

function rowsOf(engine: Engine, system: LiveSystem, plan: Plan, m: Measured, label: string): BenchResult[] {
  const seconds = m.spanMs / 1000;
  const writeSeconds = (m.drive.endedAt - m.drive.startedAt) / 1000;
  const sql = summarize(m.drive.sqlMs);
  const mutation = summarize(m.drive.mutationMs);
  const clientCpuMs = m.clients.reduce((n, c) => n + c.cpuMs, 0);
  const clientWaitMs = m.clients.some((c) => c.runQueueWaitMs === null) ? null : m.clients.reduce((n, c) => n + c.runQueueWaitMs!, 0);
  const writeMs = m.drive.endedAt - m.drive.startedAt;
  const errors = m.clients.flatMap((c) => c.errors);
  const all: number[] = [];
  const rows: BenchResult[] = [];
  const byVia = { sql: [] as number[], mutation: [] as number[] };
  for (let node = 0; node < plan.nodes; node++) {
    const latencies: number[] = [];
    let messages = 0;
    let bytes = 0;
    for (const c of m.clients) {
      const r = c.nodes[node]!;
      messages += r.messages;
      bytes += r.bytes;
      for (let i = 0; i < r.stampsMs.length; i++) {
        if (r.stampsMs[i]! < m.drive.fromMs || r.stampsMs[i]! > m.drive.toMs) continue;
        latencies.push(r.latenciesMs[i]!);
        const via = m.drive.viaByStampMs.get(Math.round(r.stampsMs[i]!));
        if (via === "sql" || via === "mutation") byVia[via].push(r.latenciesMs[i]!);
      }
    }
    for (const latency of latencies) all.push(latency); // (spread overflows the stack at 10⁵ samples)
    const before = m.statsBefore[node]!;
    const after = m.statsAfter[node]!;
    const cpuMs = after.cpuUserMs + after.cpuSystemMs - before.cpuUserMs - before.cpuSystemMs;
    const executions = after.executions - before.executions;
    const latency = summarize(latencies);
    const schedWaitMs = after.schedWaitMs !== null && before.schedWaitMs !== null ? after.schedWaitMs - before.schedWaitMs : null;
    const notes: string[] = [];
    if (node === 0 && m.drive.failed > 0) notes.push(`${m.drive.failed} writes failed: ${m.drive.errors.join(" / ")}`);
    if (node === 0 && errors.length > 0) notes.push(`client errors: ${errors.slice(0, 2).join(" / ")}`);
    if (node === 0 && m.activity.length > 0) notes.push(`pg_stat_activity (mean non-idle backends): ${m.activity.join("; ")}`);
    rows.push({
      suite: "live",
      scenario: label,
      engine,
      system,
      node: `${node + 1}/${plan.nodes}`,
      subscriptions: plan.subscriptions,
      distinctQueries: plan.distinct,
      offeredWritesPerSec: m.rate,
      writesPerSec: round(m.drive.done / writeSeconds, 1),
      samples: latency.n,
      expectedSamples: plan.workload === "a" ? m.drive.done * plan.subscriptions : undefined,
      p50Ms: latency.p50,
      p99Ms: latency.p99,
      maxMs: latency.max,
      execPerSec: round(executions / seconds, 1),
      cpuMsPerExec: executions > 0 ? round(cpuMs / executions, 2) : null,
      cpuPercent: round((cpuMs / m.spanMs) * 100, 1),
      runQueueWaitPercent: schedWaitMs === null ? null : round((schedWaitMs / m.spanMs) * 100, 1),
      messagesPerSec: round(messages / seconds, 1),
      kBytesPerSec: round(bytes / 1024 / seconds, 1),
      loopDelayP99Ms: round(after.eventLoopDelayP99Ms, 1),
      rssMb: round(after.rssMb, 0),
      sqlWriteP50Ms: node === 0 ? sql.p50 : undefined,
      sqlWriteP99Ms: node === 0 ? sql.p99 : undefined,
      mutationP50Ms: node === 0 ? mutation.p50 : undefined,
      mutationP99Ms: node === 0 ? mutation.p99 : undefined,
      clientCpuPercent: node === 0 ? round((clientCpuMs / m.spanMs) * 100, 1) : undefined,
      clientRunQueueWaitPercent: node === 0 && clientWaitMs !== null ? round((clientWaitMs / m.spanMs / m.clients.length) * 100, 1) : undefined,
      writerCpuPercent: node === 0 ? round((m.drive.cpuMs / writeMs) * 100, 1) : undefined,
      writerRunQueueWaitPercent: node === 0 && m.drive.runQueueWaitMs !== null ? round((m.drive.runQueueWaitMs / writeMs) * 100, 1) : undefined,
      load1: round(loadavg()[0]!, 1),
      note: notes.join("; ") || undefined,
    });
  }
  // Per writer kind, all nodes: raw SQL ≈ commit → visible (plus the one statement's round trip),
  // mutations = write → visible (HTTP call, transaction, commit, then the live path).
  const sqlVisible = summarize(byVia.sql);
  const mutationVisible = summarize(byVia.mutation);
  Object.assign(rows[0]!, {
    sqlVisibleP50Ms: sqlVisible.p50,
    sqlVisibleP99Ms: sqlVisible.p99,
    mutationVisibleP50Ms: mutationVisible.p50,
    mutationVisibleP99Ms: mutationVisible.p99,
  });
  if (plan.nodes > 1) {
    const latency = summarize(all);
    for (const row of rows) Object.assign(row, { allNodesP50Ms: latency.p50, allNodesP99Ms: latency.p99 });
  }
  return rows;
}

async function runCase(engine: Engine, system: LiveSystem, plan: Plan): Promise<BenchResult[]> {
  const label = { a: "a: 1 query × N subscribers", b: "b: mixed", c: "c: capacity" }[plan.workload];
  let database: TestDatabase | null = null;
  const children: Child[] = [];
  let writers: Writers | null = null;
  const profileDir = join(tmpdir(), `tether-live-profile-${process.pid}-${engine}-${system}-${plan.workload}`);
  try {
    if (engine === "postgres") {
      database = await createTestDatabase("postgres");
      const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: database.url });
      await prepareDatabase(store.sql, system);
      await store.close();
    }
    const nodes: Child[] = [];
    for (let n = 0; n < plan.nodes; n++) {
      const config: LiveNodeConfig = { engine, url: database?.url, system, node: n };
      const node = Child.start(`node ${n + 1}`, "./liveNode.ts", { LIVE_NODE: JSON.stringify(config) }, n === 0 ? profileArgs(profileDir) : []);
      nodes.push(node);
      children.push(node);
    }
    const endpoints = (await Promise.all(nodes.map((node) => node.ready))) as Endpoint[];
    const epochMs = Date.now() - 3_600_000;
    const clients: Child[] = [];
    for (let c = 0; c < plan.clientProcesses; c++) {
      const client = Child.start(`clients ${c + 1}`, "./liveClients.ts", { LIVE_CLIENTS: "1" }, c === 0 ? profileArgs(`${profileDir}-clients`) : []);
      clients.push(client);
      children.push(client);
    }
    await Promise.all(clients.map((client) => client.ready));
    const setupStart = now();
    await Promise.all(
      clients.map((client, c) => {
        const config: LiveClientsConfig = { system, epochMs, nodes: endpoints, users: plan.users.filter((_, u) => u % plan.clientProcesses === c) };
        return client.request({ op: "start", config });
      }),
    );
    const setupMs = round(now() - setupStart, 0);
    writers = makeWriters(engine, system, database?.url, nodes, endpoints);
    await drive(writers, plan, plan.rates[0]!, plan.warmupMs, "warm", epochMs, 7);
    await sleep(plan.drainMs);

    const rows: BenchResult[] = [];
    let sustained: number | null = null;
    for (const [step, rate] of plan.rates.entries()) {
      await Promise.all(clients.map((client) => client.request({ op: "report" }))); // drop what came before
      const statsBefore = await Promise.all(nodes.map((node) => node.request<NodeStatsReply>({ op: "stats" })));
      const spanStart = now();
      const sampler = activitySampler(database?.url);
      const result = await drive(writers, plan, rate, plan.durationMs, `r${step}`, epochMs, 1000 + step);
      const activity = await sampler.stop();
      await sleep(plan.drainMs);
      const statsAfter = await Promise.all(nodes.map((node) => node.request<NodeStatsReply>({ op: "stats" })));
      const spanMs = now() - spanStart;
      const reports = await Promise.all(clients.map((client) => client.request<ClientsReport>({ op: "report" })));
      const stepRows = rowsOf(engine, system, plan, { rate, drive: result, statsBefore, statsAfter, spanMs, clients: reports, activity }, label);
      rows.push(...stepRows);
      const p99 = Math.max(...stepRows.map((r) => Number(r.p99Ms)));
      const keptUp = result.done >= 0.9 * result.sent && Number(stepRows[0]!.writesPerSec) >= 0.8 * rate;
      console.error(
        `live ${label} ${engine} ${system} @${rate}/s: p50 ${stepRows.map((r) => r.p50Ms).join("/")} ms, p99 ${stepRows.map((r) => r.p99Ms).join("/")} ms, ` +
          `${stepRows.map((r) => r.execPerSec).join("/")} exec/s (${stepRows.map((r) => r.cpuMsPerExec).join("/")} cpu ms each), ${stepRows.map((r) => r.messagesPerSec).join("/")} msgs/s, cpu ${stepRows.map((r) => r.cpuPercent).join("/")}% (run-queue wait ${stepRows.map((r) => r.runQueueWaitPercent).join("/")}%), ` +
          `clients wait ${stepRows[0]!.clientRunQueueWaitPercent}%, writer wait ${stepRows[0]!.writerRunQueueWaitPercent}%, ` +
          `writes ${stepRows[0]!.writesPerSec}/s (sql p50 ${stepRows[0]!.sqlWriteP50Ms}, mutation p50 ${stepRows[0]!.mutationP50Ms} ms), ` +
          `visible after raw SQL p50/p99 ${stepRows[0]!.sqlVisibleP50Ms}/${stepRows[0]!.sqlVisibleP99Ms} ms, after mutation ${stepRows[0]!.mutationVisibleP50Ms}/${stepRows[0]!.mutationVisibleP99Ms} ms, ` +
          `setup ${setupMs} ms, load ${stepRows[0]!.load1}` +
          (stepRows[0]!.note ? ` — ${stepRows[0]!.note}` : ""),
      );
      if (plan.workload !== "c") break;
      if (p99 > 250 || !keptUp || !Number.isFinite(p99)) break;
      sustained = rate;
    }
    if (plan.workload === "c") {
      rows.push({
        suite: "live",
        scenario: "c: capacity (summary)",
        engine,
        system,
        node: "all",
        subscriptions: plan.subscriptions,
        distinctQueries: plan.distinct,
        sustainedWritesPerSec: sustained,
        note: `highest offered rate with every node's p99 ≤ 250 ms and the writers keeping up; steps ${plan.rates.join(", ")}/s`,
      });
    }
    return rows;
  } finally {
    await writers?.close();
    // Clients first (their sockets close), then the nodes (node 1 writes its CPU profile on exit).
    const [clientsOnly, nodesOnly] = [children.filter((c) => c.name.startsWith("clients")), children.filter((c) => c.name.startsWith("node"))];
    await Promise.all(clientsOnly.map((child) => child.stop()));
    await Promise.all(nodesOnly.map((child) => child.stop()));
    if (profilingEnabled()) {
      printProfiles(profileDir, `${engine} ${system} ${label} node 1`);
      printProfiles(`${profileDir}-clients`, `${engine} ${system} ${label} client process 1`);
    }
    await database?.drop();
  }
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const workloads = (process.env.BENCH_LIVE?.split(",") ?? ["a", "b", "c"]) as Workload[];
  const engines = (process.env.BENCH_ENGINES?.split(",") as Engine[] | undefined)?.filter((e) => options.engines.includes(e)) ?? options.engines;
  const systems = (process.env.BENCH_SYSTEMS?.split(",") ?? ["tether", "baseline"]) as LiveSystem[];
  const results: BenchResult[] = [];
  for (const workload of workloads) {
    for (const engine of engines) {
      // Capacity is Tether's: the baseline is past saturation at b's rate already.
      for (const system of workload === "c" ? systems.filter((s) => s === "tether") : systems) {
        const started = now();
        results.push(...(await runCase(engine, system, planFor(workload, engine, system, options.quick))));
        console.error(`live ${workload} ${engine} ${system}: ${round((now() - started) / 1000, 1)} s`);
      }
    }
  }
  return results;
}
