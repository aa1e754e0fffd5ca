/**
 * One run of the deployment workload: a server (Tether or Hocuspocus) in its own process, N
 * editors each in its own process over real WebSockets, keystrokes at a fixed total rate (open
 * loop, editor n mod N types keystroke n, one character at a random position), and — when asked —
 * the server SIGKILLed once mid-run and started again on the same port and database while the
 * editors keep typing. Afterwards: wait until every editor holds every keystroke, check that all
 * texts (and, for Tether, the `Note.body` column) are equal, compute the metrics.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createTestDatabase, POSTGRES_ADMIN_URL, type TestDatabase } from "../../support/databases.ts";
import { round, sleep, type Engine } from "../harness.ts";
import type { EditorConfig, EditorReport, System } from "./editor.ts";
import type { HocuspocusServerConfig } from "./hocuspocusServer.ts";
import { checkConverged, computeMetrics, type WorkloadMetrics } from "./metrics.ts";
import { cpuMsOf, startChild, wallNow, type Child } from "./processes.ts";
import type { TetherServerConfig } from "./tetherServer.ts";

export interface WorkloadOptions {
  system: System;
  engine: Engine;
  editors: number;
  /** Keystrokes per second, all editors together. */
  ratePerSec: number;
  seconds: number;
  /** SIGKILL the server at this share of the run (0..1) and restart it; null: no kill. */
  killAt: number | null;
  /** Longest wait for convergence after the typing stops, ms. */
  convergeTimeoutMs: number;
  seed: number;
}

export interface WorkloadResult extends WorkloadMetrics {
  system: System;
  engine: Engine;
  editors: number;
  ratePerSec: number;
  achievedPerSec: number;
  /** Server CPU over the measured window (both processes when restarted), % of one core. */
  serverCpuPct: number | null;
  /** Mean non-idle Postgres backends of the run's database over the window (null on PGlite). */
  pgActiveBackends: number | null;
  /** Most connections the run's database had at once. */
  pgMaxConnections: number | null;
  /** Server start to ready after the SIGKILL, ms. */
  restartMs: number | null;
  /** Tether: from the last editor converging until `Note.body` equalled the text, ms. */
  columnLagMs: number | null;
  /** Tether: failed pushes by code over the run ("CONFLICT:12 transport:3"), re-sent by the client. */
  pushFailures: string;
  loadAvg: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (await condition()) return;
    if (Date.now() - start > timeoutMs) throw new Error(`crdt deploy bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

interface Status {
  status: string;
  pending: number;
  version: Record<string, number>;
}

/** Every editor holds every editor's keystrokes (own counters from each one's own version). */
async function allHoldAll(editors: Child[]): Promise<boolean> {
  const statuses = await Promise.all(editors.map((e) => e.request<Status>({ type: "status" })));
  const peers = editors.map((e) => (e.ready as { peer: string }).peer);
  const own = peers.map((peer, i) => statuses[i]!.version[peer] ?? 0);
  return statuses.every((s) => s.pending === 0 && peers.every((peer, i) => (s.version[peer] ?? 0) >= own[i]!));
}

/** Samples the run's database in pg_stat_activity (Postgres only). */
function backendSampler(adminUrl: string, database: string) {
  const client = new pg.Client({ connectionString: adminUrl });
  let active = 0;
  let samples = 0;
  let maxConnections = 0;
  let stopped = false;
  const done = (async () => {
    await client.connect();
    while (!stopped) {
      const { rows } = await client.query<{ active: string; total: string }>(
        `SELECT count(*) FILTER (WHERE state IS DISTINCT FROM 'idle') AS active, count(*) AS total
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [database],
      );
      active += Number(rows[0]!.active);
      maxConnections = Math.max(maxConnections, Number(rows[0]!.total));
      samples += 1;
      await sleep(200);
    }
    await client.end();
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      return { active: samples ? round(active / samples, 2) : 0, maxConnections };
    },
  };
}

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  const { system, engine } = options;
  if (system === "hocuspocus" && engine !== "postgres") throw new Error("Hocuspocus runs on Postgres only here");
  let database: TestDatabase | null = null;
  let dataDir: string | null = null;
  if (engine === "postgres") database = await createTestDatabase("postgres");
  else dataDir = mkdtempSync(join(tmpdir(), "tether-crdt-deploy-"));
  const noteId = "deploy";
  const port = await freePort();
  const serverConfig: TetherServerConfig | HocuspocusServerConfig =
    system === "tether"
      ? { url: database?.url, dataDir: dataDir ?? undefined, port, noteId, users: options.editors }
      : { url: database!.url!, port };
  const serverFile = system === "tether" ? "./tetherServer.ts" : "./hocuspocusServer.ts";
  const startServer = () => startChild<{ port: number }>(`${system} server`, serverFile, serverConfig);
  let server = await startServer();
  const editors: Child<{ peer: string }>[] = [];
  let sampler: ReturnType<typeof backendSampler> | null = null;
  try {
    const url = system === "tether" ? `http://127.0.0.1:${port}` : `ws://127.0.0.1:${port}`;
    // A few at a time: 20 Node processes starting at once on 2 cores take long and time out.
    for (let i = 0; i < options.editors; i += 4) {
      const batch = Array.from({ length: Math.min(4, options.editors - i) }, (_, k) => {
        const config: EditorConfig = { system, url, noteId, index: i + k, seed: options.seed * 1000 + i + k };
        return startChild<{ peer: string }>(`editor ${i + k}`, "./editor.ts", config);
      });
      editors.push(...(await Promise.all(batch)));
    }
    // Warm-up: one keystroke each, everyone holds everything.
    for (const e of editors) e.send({ type: "type" });
    await waitFor("the warm-up keystrokes to reach everyone", () => allHoldAll(editors), options.convergeTimeoutMs);

    if (database) sampler = backendSampler(POSTGRES_ADMIN_URL, new URL(database.url!).pathname.slice(1));
    const total = Math.round(options.ratePerSec * options.seconds);
    const intervalMs = 1000 / options.ratePerSec;
    const killIndex = options.killAt === null ? -1 : Math.floor(total * options.killAt);
    let killAt: number | null = null;
    let restartMs: number | null = null;
    let readyAt: number | null = null;
    let restarted: Promise<void> = Promise.resolve();
    // Server CPU: the first process up to the kill, the second from its READY.
    let cpuMs = 0;
    let cpuFrom = cpuMsOf(server.pid) ?? NaN;
    const from = wallNow();
    const start = performance.now();
    for (let n = 0; n < total; n++) {
      const wait = start + n * intervalMs - performance.now();
      if (wait > 1) await sleep(Math.floor(wait));
      if (n === killIndex) {
        cpuMs += (cpuMsOf(server.pid) ?? NaN) - cpuFrom;
        killAt = wallNow();
        await server.kill("SIGKILL");
        const t0 = performance.now();
        restarted = startServer().then((s) => {
          server = s;
          readyAt = wallNow();
          restartMs = round(performance.now() - t0);
          cpuFrom = cpuMsOf(s.pid) ?? NaN;
        });
      }
      editors[n % editors.length]!.send({ type: "type" });
    }
    const typingMs = performance.now() - start;
    await restarted;
    await waitFor("every editor to hold every keystroke", () => allHoldAll(editors), options.convergeTimeoutMs, 50);
    cpuMs += (cpuMsOf(server.pid) ?? NaN) - cpuFrom;
    const windowMs = wallNow() - from - (restartMs ?? 0);
    const backends = sampler ? await sampler.stop() : null;
    sampler = null;
    const reports = await Promise.all(editors.map((e) => e.request<EditorReport>({ type: "report" })));
    const text = checkConverged(reports);
    let columnLagMs: number | null = null;
    if (system === "tether") {
      const t0 = performance.now();
      let body: string | null = null;
      await waitFor(
        "Note.body to equal the editors' text",
        async () => {
          const response = await fetch(`http://127.0.0.1:${port}/bench/body`);
          body = ((await response.json()) as { body: string | null }).body;
          return body === text;
        },
        30_000,
        50,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)} (column has ${String(body).length} chars, text ${text.length})`);
      });
      columnLagMs = round(performance.now() - t0);
    }
    const metrics = computeMetrics(reports, from, killAt, readyAt);
    return {
      system,
      engine,
      editors: options.editors,
      ratePerSec: options.ratePerSec,
      achievedPerSec: round((total / typingMs) * 1000, 1),
      ...metrics,
      serverCpuPct: Number.isFinite(cpuMs) ? round((cpuMs / windowMs) * 100, 1) : null,
      pgActiveBackends: backends?.active ?? null,
      pgMaxConnections: backends?.maxConnections ?? null,
      restartMs,
      columnLagMs,
      pushFailures: Object.entries(
        reports.reduce<Record<string, number>>((all, r) => {
          for (const [code, n] of Object.entries(r.pushFailures)) all[code] = (all[code] ?? 0) + n;
          return all;
        }, {}),
      )
        .map(([code, n]) => `${code}:${n}`)
        .join(" "),
      loadAvg: round(loadavg()[0]!, 2),
    };
  } finally {
    if (sampler) await sampler.stop().catch(() => undefined);
    await Promise.all(editors.map((e) => e.request({ type: "close" }).catch(() => undefined)));
    await Promise.all(editors.map((e) => e.kill()));
    await server.kill();
    if (database) await database.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}
