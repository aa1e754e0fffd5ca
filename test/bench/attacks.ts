/**
 * Replays issue 11's transport attacks against a Tether server on Postgres and reports, per attack,
 * the server's peak RSS (VmHWM of its process), the worst `/healthz` latency seen meanwhile, and
 * how long another user's write took. Each attack gets a fresh server process; the attacking
 * clients run in this process, the `/healthz` prober in a worker thread (its own event loop).
 *
 *   npx tsx test/bench/attacks.ts            # all attacks (needs Postgres at 127.0.0.1:5432)
 *   ATTACKS=live npx tsx test/bench/attacks.ts
 *
 * Attacks: `idle` — none, the baseline; `live` — 1,000 identical `$live` subscriptions on a ~384 KB result from one socket that
 * never reads; `batch` — one HTTP batch of 1,000 `tasks.add`, and one GET batching 1,000 queries of
 * a ~48 KB result; `flood` — 10,000 queries on one WebSocket. Not a test: numbers for the notes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { WebSocket } from "ws";
import { createStore, migrate } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildApp } from "../fixtures/app.ts";
import { createTestDatabase } from "../support/databases.ts";
import { userFromRequest } from "../support/userClient.ts";

const self = fileURLToPath(import.meta.url);

// ------------------------------------------------------------------------------------------------
// Server process: the fixture app on the given database, plus /healthz and /stats.

async function serve(url: string): Promise<void> {
  const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url });
  const app = buildApp(store);
  const server = await createTetherServer({
    router: app.router,
    createContext: userFromRequest,
    extraRoutes: (req, res) => {
      if (req.url === "/healthz") {
        res.end("ok");
        return true;
      }
      if (req.url === "/stats") {
        res.end(JSON.stringify({ transport: server.stats(), reactor: app.tether.stats.live() }));
        return true;
      }
      return false;
    },
  });
  process.on("SIGTERM", () => process.exit(0)); // lets --cpu-prof write its profile
  process.stdout.write(`${JSON.stringify({ url: server.url, wsUrl: server.wsUrl })}\n`);
}

// ------------------------------------------------------------------------------------------------
// Attacking side.

interface Running {
  child: ChildProcess;
  url: string;
  wsUrl: string;
}

async function startServer(dbUrl: string): Promise<Running> {
  // BENCH_CPU_PROF=<dir> profiles each server process (written when it is stopped).
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", self, "--server", dbUrl], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf("\n");
      if (newline >= 0) resolve(buffered.slice(0, newline));
    });
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, ...(JSON.parse(line) as { url: string; wsUrl: string }) };
}

/** Peak resident set of a process so far (Linux), MB. */
function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Math.round(Number(match[1]) / 1024) : NaN;
}

/** Probes `/healthz` every 50 ms from its own thread; `stop()` gives the worst latency, ms. */
function healthProbe(url: string): { stop(): Promise<number> } {
  const worker = new Worker(
    `const { parentPort, workerData } = require("node:worker_threads");
     let worst = 0, stopping = false;
     parentPort.on("message", () => { stopping = true; });
     (async () => {
       while (!stopping) {
         const t0 = performance.now();
         try { await (await fetch(workerData + "/healthz")).text(); } catch {}
         worst = Math.max(worst, performance.now() - t0);
         await new Promise((r) => setTimeout(r, 50));
       }
       parentPort.postMessage(worst);
     })();`,
    { eval: true, workerData: url },
  );
  return {
    stop: () =>
      new Promise<number>((resolve) => {
        worker.once("message", (worst: number) => {
          void worker.terminate();
          resolve(Math.round(worst));
        });
        worker.postMessage("stop");
      }),
  };
}

async function stats(url: string): Promise<{ transport: Record<string, number>; reactor: Record<string, number> }> {
  try {
    return (await (await fetch(`${url}/stats`)).json()) as never;
  } catch (error) {
    return { transport: { statsFailed: 1 }, reactor: {}, error: String((error as Error).cause ?? error) } as never;
  }
}

async function trpcPost(url: string, user: string, path: string, inputs: unknown[]): Promise<Response> {
  const body = Object.fromEntries(inputs.map((input, i) => [String(i), input]));
  return fetch(`${url}/trpc/${inputs.map(() => path).join(",")}?batch=1`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-user": user },
    body: JSON.stringify(body),
  });
}

/** Another user's write during an attack, ms (or the error). */
async function victimWrite(url: string): Promise<string> {
  const t0 = performance.now();
  try {
    const response = await trpcPost(url, "bob", "tasks.add", [{ projectId: "p2", title: "victim" }]);
    const ms = Math.round(performance.now() - t0);
    return response.ok ? `${ms} ms` : `HTTP ${response.status} after ${ms} ms`;
  } catch (error) {
    return `failed after ${Math.round(performance.now() - t0)} ms: ${String((error as Error).cause ?? error)}`;
  }
}

function openWs(wsUrl: string, user: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl, { headers: { "x-user": user } });
    socket.once("open", () => resolve(socket));
    socket.once("error", reject);
  });
}

const chunks = <T>(items: T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

async function waitUntil(condition: () => Promise<boolean> | boolean, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await sleep(100);
  }
  return false;
}

type Attack = (server: Running) => Promise<Record<string, unknown>>;

const attacks: Record<string, Attack> = {
  /** No attack: the server's own baseline (modules, Prisma, pools). */
  async idle({ url }) {
    await sleep(2000);
    return { victimWrite: await victimWrite(url) };
  },
  /** Finding 4: 1,000 identical $live on a ~384 KB result, socket never read. */
  async live({ url, wsUrl }) {
    const socket = await openWs(wsUrl, "mallory");
    socket.on("error", () => undefined);
    (socket as unknown as { _socket: Socket })._socket.pause();
    const subs = Array.from({ length: 1000 }, (_, i) => ({
      id: i + 1,
      method: "subscription",
      params: { path: "$live", input: { path: "tasks.byProject", input: { projectId: "big" } } },
    }));
    for (const chunk of chunks(subs, 50)) socket.send(JSON.stringify(chunk));
    const write = victimWrite(url);
    const cut = await waitUntil(async () => (await stats(url)).transport.wsConnections === 0, 60_000);
    const result = { socketCut: cut, victimWrite: await write, ...(await stats(url)).transport };
    socket.terminate();
    return result;
  },
  /** Finding 5: 1,000 mutations in one HTTP batch; 1,000 queries in one GET. */
  async batch({ url }) {
    const t0 = performance.now();
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ projectId: "p1", title: `b${i}` }));
    const writes = trpcPost(url, "alice", "tasks.add", inputs);
    const victim = victimWrite(url);
    const response = await writes;
    const answers = (await response.json()) as Array<{ error?: { data?: { code?: string; httpStatus?: number } } }> | { error: unknown };
    const list = Array.isArray(answers) ? answers : [answers];
    const codes: Record<string, number> = {};
    for (const answer of list) {
      const code = "error" in answer && answer.error ? String((answer.error as { data?: { code?: string } }).data?.code) : "ok";
      codes[code] = (codes[code] ?? 0) + 1;
    }
    const writeMs = Math.round(performance.now() - t0);
    // The largest batch the defaults admit: does it still run without starving the pool?
    const fifty = (await (await trpcPost(url, "alice", "tasks.add", inputs.slice(0, 50))).json()) as Array<{ error?: unknown }>;
    const fiftyFailed = fifty.filter((answer) => answer.error).length;
    const input = encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [String(i), { projectId: "mid" }]))));
    const t1 = performance.now();
    const get = await fetch(`${url}/trpc/${Array(1000).fill("tasks.byProject").join(",")}?batch=1&input=${input}`, { headers: { "x-user": "alice" } });
    const getBytes = (await get.arrayBuffer()).byteLength;
    return {
      postStatus: response.status,
      postAnswers: codes,
      postMs: writeMs,
      batchOf50Failed: fiftyFailed,
      victimWrite: await victim,
      getStatus: get.status,
      getResponseMb: Math.round((getBytes / 1024 / 1024) * 10) / 10,
      getMs: Math.round(performance.now() - t1),
    };
  },
  /** Finding 5: 10,000 queries on one WebSocket, all answers read. */
  async flood({ url, wsUrl }) {
    const socket = await openWs(wsUrl, "alice");
    let answered = 0;
    let errors = 0;
    socket.on("message", (data) => {
      if (String(data) === "PING") return socket.send("PONG"); // tRPC's heartbeat
      const parsed = JSON.parse(String(data)) as unknown;
      for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
        answered += 1;
        if ((message as { error?: unknown }).error) errors += 1;
      }
    });
    const t0 = performance.now();
    const calls = Array.from({ length: 10_000 }, (_, i) => ({ id: i + 1, method: "query", params: { path: "tasks.byProject", input: { projectId: "p1" } } }));
    for (const chunk of chunks(calls, 50)) socket.send(JSON.stringify(chunk));
    const victim = victimWrite(url);
    const done = await waitUntil(() => answered >= 10_000, 180_000);
    const result = { allAnswered: done, answered, errors, floodMs: Math.round(performance.now() - t0), victimWrite: await victim };
    socket.terminate();
    return result;
  },
};

async function seed(dbUrl: string): Promise<void> {
  const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: dbUrl });
  await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
  await store.db.user.createMany({
    data: ["alice", "bob", "mallory"].map((id) => ({ id, email: `${id}@x`, name: id })),
  });
  await store.db.project.createMany({
    data: [
      { id: "p1", name: "One", ownerId: "alice" },
      { id: "p2", name: "Two", ownerId: "bob" },
      { id: "big", name: "Big", ownerId: "mallory" },
      { id: "mid", name: "Mid", ownerId: "alice" },
    ],
  });
  // ~384 KB and ~48 KB results (2 KB titles), and a small one for the flood.
  const rows = (projectId: string, n: number, title: string) =>
    Array.from({ length: n }, (_, i) => ({ id: `${projectId}-${i}`, projectId, title }));
  await store.db.task.createMany({ data: [...rows("big", 192, "t".repeat(2000)), ...rows("mid", 24, "t".repeat(2000)), ...rows("p1", 5, "small")] });
  await store.close();
}

async function main(): Promise<void> {
  const database = await createTestDatabase("postgres");
  const chosen = (process.env.ATTACKS ?? "idle,live,batch,flood").split(",");
  try {
    await seed(database.url!);
    for (const name of chosen) {
      const server = await startServer(database.url!);
      const probe = healthProbe(server.url);
      await sleep(300); // a few healthy probes first
      let outcome: Record<string, unknown>;
      try {
        outcome = await attacks[name]!(server);
      } catch (error) {
        outcome = { failed: String(error) };
      }
      const worstHealthzMs = await probe.stop();
      const rss = peakRssMb(server.child.pid!);
      server.child.kill("SIGTERM");
      await new Promise((resolve) => server.child.once("exit", resolve));
      console.log(JSON.stringify({ attack: name, serverPeakRssMb: rss, worstHealthzMs, ...outcome }));
    }
  } finally {
    await database.drop();
  }
}

if (process.argv[2] === "--server") await serve(process.argv[3]!);
else await main();
