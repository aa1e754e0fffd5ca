/**
 * CRDT suite (`npm run bench -- crdt`): collaborative text (`Note.body`, `/// @crdt(text)`) the
 * way a deployment runs it — the server in its own process, every editor in its own process over
 * real WebSockets (test/bench/crdtDeploy/). Scenarios, chosen with BENCH_CRDT_SCENARIOS
 * (comma-separated; default all):
 *
 * - `workload`: Tether vs Hocuspocus 4.7 (+ extension-database on the same Postgres) side by
 *   side — 20 editors, 50 keystrokes/s in all at random positions, the server SIGKILLed once at
 *   40% of the run and restarted on the same port and database. BENCH_CRDT_ROUNDS rounds
 *   (default 3) alternating which system goes first; one row per round and system, and a
 *   `median` row per system (median of each metric over the rounds).
 * - `scale`: the same without the kill at 50 editors and 100 keystrokes/s, both systems, once.
 * - `ingest`: how many single-character updates one document acknowledges per second: a Tether
 *   server process, 20 pushers in this process (their own users, own LoroDocs, plain tRPC over
 *   HTTP batch), each pushing one character and waiting for the ack, closed loop; every engine.
 * - `pglite`: the workload on Tether with PGlite (one round; SIGKILL and reopen of its data dir).
 *
 * Every run checks that every editor ends on the same text and version, and Tether's `Note.body`
 * equals it, or throws. BENCH_QUICK=1: small sizes (4–8 editors, 10–20/s; the workload still runs
 * 20 s, so that a slow restart leaves keystrokes typed after every editor re-synced).
 * Metrics: see crdtDeploy/metrics.ts. The machine's load average is in every row (`loadAvg`).
 */
import { createTRPCClient, httpBatchLink, TRPCClientError, type TRPCClient } from "@trpc/client";
import { LoroDoc } from "loro-crdt";
import { loadavg } from "node:os";
import type { CrdtRouter } from "../support/crdtApp.ts";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";
import { random } from "../support/random.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMsOf, startChild } from "./crdtDeploy/processes.ts";
import type { TetherServerConfig } from "./crdtDeploy/tetherServer.ts";
import { runWorkload, type WorkloadOptions, type WorkloadResult } from "./crdtDeploy/workload.ts";
import { now, round, summarize, type BenchOptions, type BenchResult, type Engine } from "./harness.ts";

const SUITE = "crdt";
const SCENARIOS = ["workload", "scale", "ingest", "pglite"] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Sizes {
  workload: Pick<WorkloadOptions, "editors" | "ratePerSec" | "seconds">;
  scale: Pick<WorkloadOptions, "editors" | "ratePerSec" | "seconds">;
  ingest: { pushers: number; seconds: number };
  rounds: number;
  convergeTimeoutMs: number;
}

function sizes(quick: boolean): Sizes {
  const rounds = Number(process.env.BENCH_CRDT_ROUNDS ?? (quick ? 1 : 3));
  return quick
    ? {
        workload: { editors: 4, ratePerSec: 10, seconds: 20 },
        scale: { editors: 8, ratePerSec: 20, seconds: 6 },
        ingest: { pushers: 8, seconds: 3 },
        rounds,
        convergeTimeoutMs: 180_000,
      }
    : {
        workload: { editors: 20, ratePerSec: 50, seconds: 20 },
        scale: { editors: 50, ratePerSec: 100, seconds: 15 },
        ingest: { pushers: 20, seconds: 10 },
        rounds,
        convergeTimeoutMs: 300_000,
      };
}

/** A workload result as a flat bench row. */
function row(scenario: string, r: WorkloadResult): BenchResult {
  return {
    suite: SUITE,
    scenario,
    engine: r.engine,
    system: r.system,
    editors: r.editors,
    ratePerSec: r.ratePerSec,
    achievedPerSec: r.achievedPerSec,
    keystrokes: r.keystrokes,
    pairs: r.pairs,
    beforeP50Ms: r.before.p50,
    beforeP99Ms: r.before.p99,
    outageP50Ms: r.outage.p50,
    afterP50Ms: r.after.p50,
    afterP99Ms: r.after.p99,
    allP50Ms: r.all.p50,
    allP99Ms: r.all.p99,
    resyncMs: r.resyncMs,
    drainMs: r.drainMs,
    ackP50Ms: r.ack?.p50 ?? null,
    ackP99Ms: r.ack?.p99 ?? null,
    sentP50Ms: r.sent?.p50 ?? null,
    sentP99Ms: r.sent?.p99 ?? null,
    serverCpuPct: r.serverCpuPct,
    pgActiveBackends: r.pgActiveBackends,
    pgMaxConnections: r.pgMaxConnections,
    restartMs: r.restartMs,
    columnLagMs: r.columnLagMs,
    pushFailures: r.pushFailures,
    textLength: r.textLength,
    converged: true,
    loadAvg: r.loadAvg,
  };
}

function median(values: number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v.length % 2 ? v[(v.length - 1) / 2]! : round((v[v.length / 2 - 1]! + v[v.length / 2]!) / 2);
}

/** Per numeric metric, the median over the rounds' rows. */
function medianRow(scenario: string, rows: BenchResult[]): BenchResult {
  const out: BenchResult = { ...rows[0]!, scenario };
  for (const key of Object.keys(rows[0]!)) {
    if (typeof rows[0]![key] === "number") out[key] = median(rows.map((r) => r[key] as number));
  }
  out.rounds = rows.length;
  return out;
}

function log(r: BenchResult): void {
  console.error(
    `crdt ${r.engine} ${r.scenario} ${r.system ?? ""}: ` +
      (r.pushesPerSec !== undefined
        ? `${r.pushesPerSec} pushes/s, ack p50 ${r.ackP50Ms} p99 ${r.ackP99Ms} ms`
        : `before p50/p99 ${r.beforeP50Ms}/${r.beforeP99Ms} ms, after ${r.afterP50Ms}/${r.afterP99Ms} ms, resync ${r.resyncMs} ms, drain ${r.drainMs} ms, ack p50/p99 ${r.ackP50Ms}/${r.ackP99Ms}, sent p50/p99 ${r.sentP50Ms}/${r.sentP99Ms}, push failures ${r.pushFailures || "none"}, restart ${r.restartMs} ms, cpu ${r.serverCpuPct}%, pg ${r.pgActiveBackends}, load ${r.loadAvg}`),
  );
}

async function workload(size: Sizes): Promise<BenchResult[]> {
  const rows: Record<"tether" | "hocuspocus", BenchResult[]> = { tether: [], hocuspocus: [] };
  const out: BenchResult[] = [];
  for (let roundNo = 0; roundNo < size.rounds; roundNo++) {
    // Alternate which system runs first: the machine's load drifts over a run.
    const order = roundNo % 2 === 0 ? (["tether", "hocuspocus"] as const) : (["hocuspocus", "tether"] as const);
    for (const system of order) {
      const result = await runWorkload({ system, engine: "postgres", ...size.workload, killAt: 0.4, convergeTimeoutMs: size.convergeTimeoutMs, seed: roundNo + 1 });
      const r = row(`workload round ${roundNo + 1}`, result);
      log(r);
      rows[system].push(r);
      out.push(r);
    }
  }
  for (const system of ["tether", "hocuspocus"] as const) {
    const m = medianRow(`workload median of ${size.rounds}`, rows[system]);
    log(m);
    out.push(m);
  }
  return out;
}

async function scale(size: Sizes): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const system of ["tether", "hocuspocus"] as const) {
    const r = row("scale", await runWorkload({ system, engine: "postgres", ...size.scale, killAt: null, convergeTimeoutMs: size.convergeTimeoutMs, seed: 7 }));
    log(r);
    out.push(r);
  }
  return out;
}

async function pglite(size: Sizes): Promise<BenchResult[]> {
  const r = row("pglite workload", await runWorkload({ system: "tether", engine: "pglite", ...size.workload, killAt: 0.4, convergeTimeoutMs: size.convergeTimeoutMs, seed: 11 }));
  log(r);
  return [r];
}

/**
 * Closed-loop ingest into one document: each pusher inserts one character at a random position
 * of its own copy, pushes just that operation and waits for the ack, for `seconds`. Its updates
 * do not depend on the others' (concurrent edits, merged by the server like any).
 */
async function ingest(engine: Engine, size: Sizes): Promise<BenchResult> {
  let database: TestDatabase | null = null;
  let dataDir: string | null = null;
  if (engine === "postgres") database = await createTestDatabase("postgres");
  else dataDir = mkdtempSync(join(tmpdir(), "tether-crdt-ingest-"));
  const noteId = "ingest";
  const config: TetherServerConfig = { url: database?.url, dataDir: dataDir ?? undefined, port: 0, noteId, users: size.ingest.pushers };
  const server = await startChild<{ port: number }>("tether server", "./tetherServer.ts", config);
  try {
    const url = `http://127.0.0.1:${server.ready.port}/trpc`;
    const pushers = Array.from({ length: size.ingest.pushers }, (_, i) => {
      const client: TRPCClient<CrdtRouter> = createTRPCClient<CrdtRouter>({ links: [httpBatchLink({ url, headers: { "x-user": `e${i}` } })] });
      const doc = new LoroDoc();
      doc.setPeerId(i + 1);
      return { client, doc, rnd: random(500 + i), rtt: [] as number[], acked: 0, retries: 0 };
    });
    const push = async (p: (typeof pushers)[number]) => {
      const text = p.doc.getText("body");
      const before = p.doc.oplogVersion();
      text.insert(Math.floor(p.rnd() * (text.length + 1)), String.fromCharCode(97 + Math.floor(p.rnd() * 26)));
      p.doc.commit();
      const update = p.doc.export({ mode: "update", from: before });
      const t0 = now();
      for (let attempt = 1; ; attempt++) {
        try {
          await p.client.$crdt.push.mutate({ model: "Note", id: noteId, field: "body", update: Buffer.from(update).toString("base64") });
          return now() - t0;
        } catch (error) {
          // What the real client re-sends: a write conflict the server marks retryable, or a
          // dropped connection (no tRPC code). Imports are idempotent, so a repeat is harmless.
          const data = error instanceof TRPCClientError ? (error.data as { code?: string; retryable?: boolean } | undefined) : undefined;
          const retryable = error instanceof TRPCClientError && (data?.retryable === true || !data?.code);
          if (!retryable || attempt >= 20) throw error;
          p.retries += 1;
        }
      }
    };
    // Warm-up: a few pushes each.
    for (let k = 0; k < 3; k++) await Promise.all(pushers.map((p) => push(p)));
    const durationMs = size.ingest.seconds * 1000;
    const cpu0 = cpuMsOf(server.pid);
    const start = now();
    const end = start + durationMs;
    await Promise.all(
      pushers.map(async (p) => {
        while (now() < end) {
          const rtt = await push(p);
          if (now() <= end) {
            p.rtt.push(rtt);
            p.acked += 1;
          }
        }
      }),
    );
    const wallMs = now() - start;
    const cpu1 = cpuMsOf(server.pid);
    const acked = pushers.reduce((n, p) => n + p.acked, 0);
    const rtt = summarize(pushers.flatMap((p) => p.rtt));
    return {
      suite: SUITE,
      scenario: `ingest: ${size.ingest.pushers} pushers, 1 char/push, closed loop, one document`,
      engine,
      system: "tether",
      pushers: size.ingest.pushers,
      seconds: size.ingest.seconds,
      pushesAcked: acked,
      pushesPerSec: round((acked / durationMs) * 1000, 1),
      ackP50Ms: rtt.p50,
      ackP99Ms: rtt.p99,
      retries: pushers.reduce((n, p) => n + p.retries, 0),
      serverCpuPct: cpu0 !== null && cpu1 !== null ? round(((cpu1 - cpu0) / wallMs) * 100, 1) : null,
      loadAvg: round(loadavg()[0]!, 2),
    };
  } finally {
    await server.kill();
    if (database) await database.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const size = sizes(options.quick);
  const wanted = (process.env.BENCH_CRDT_SCENARIOS ?? SCENARIOS.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of wanted) if (!SCENARIOS.includes(s as Scenario)) throw new Error(`unknown crdt scenario "${s}"; known: ${SCENARIOS.join(", ")}`);
  const postgres = options.engines.includes("postgres");
  const results: BenchResult[] = [];
  for (const scenario of wanted as Scenario[]) {
    if (scenario === "workload" && postgres) results.push(...(await workload(size)));
    if (scenario === "scale" && postgres) results.push(...(await scale(size)));
    if (scenario === "pglite") results.push(...(await pglite(size)));
    if (scenario === "ingest") {
      for (const engine of options.engines) {
        const r = await ingest(engine, size);
        log(r);
        results.push(r);
      }
    }
  }
  return results;
}
