/**
 * Reconnect storm: a freshly started node receives every client at once, as after a deploy.
 * The server (this process) serves the fixture app on a fresh database; the clients run in a child
 * process (so their CPU is not the server's event loop) and open SUBS subscriptions (DISTINCT
 * distinct inputs: `tasks.byProject` of DISTINCT projects) over CONNECTIONS WebSockets, all at
 * once. Reported: subscriptions that ended with an error (and their messages), and the time until
 * every subscription holds its first value.
 *
 *   npx tsx test/bench/storm.ts [pglite|postgres] [SUBS=5000] [DISTINCT=500] [CONNECTIONS=100] [TASKS_PER_PROJECT=100]
 *
 * STORM_QUERY_TIMEOUT_MS sets the reactor's queryTimeoutMs (default: the reactor's own, 5 s): a
 * small one stands in for a slower database or a bigger storm on this machine.
 */
import { fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createTRPCClient, createWSClient, wsLink } from "@trpc/client";
import { WebSocket } from "ws";
import { createLogger, createStore, migrate, type Engine } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildApp, type TestRouter } from "../fixtures/app.ts";
import { createTestDatabase } from "../support/databases.ts";

interface ClientReport {
  firstValues: number;
  errors: number;
  errorMessages: Record<string, number>;
  allFirstMs: number | null;
}

const SELF = fileURLToPath(import.meta.url);

async function runClients(wsUrl: string, subs: number, distinct: number, connections: number): Promise<ClientReport> {
  const clients = Array.from({ length: connections }, () => {
    const wsClient = createWSClient({ url: wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
    return { wsClient, trpc: createTRPCClient<TestRouter>({ links: [wsLink({ client: wsClient })] }) };
  });
  const report: ClientReport = { firstValues: 0, errors: 0, errorMessages: {}, allFirstMs: null };
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let settled = 0;
    const settle = () => {
      settled += 1;
      if (settled === subs) resolve();
    };
    for (let i = 0; i < subs; i++) {
      const { trpc } = clients[i % connections]!;
      let first = true;
      trpc.$live.subscribe(
        { path: "tasks.byProject", input: { projectId: `p${i % distinct}` } },
        {
          onData: () => {
            if (!first) return;
            first = false;
            report.firstValues += 1;
            settle();
          },
          onError: (error) => {
            report.errors += 1;
            const key = error.message.slice(0, 120);
            report.errorMessages[key] = (report.errorMessages[key] ?? 0) + 1;
            if (first) {
              first = false;
              settle();
            }
          },
        },
      );
    }
  });
  report.allFirstMs = report.firstValues === subs ? Math.round(performance.now() - t0) : null;
  for (const { wsClient } of clients) await wsClient.close();
  return report;
}

async function runServer(engine: Engine, subs: number, distinct: number, connections: number, tasksPerProject: number): Promise<void> {
  // Seed through one store, then serve through a new one: the serving node starts cold (its
  // Prisma client has not run a query yet), as right after a deploy.
  const database = await createTestDatabase(engine);
  const dataDir = engine === "pglite" ? fs.mkdtempSync(path.join(os.tmpdir(), "tether-storm-")) : undefined;
  const open = () =>
    createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: database.url, dataDir, log: createLogger("storm") });
  const seeding = await open();
  await migrate({ sql: seeding.sql, migrationsDir: "prisma/migrations" });
  await seeding.db.user.create({ data: { id: "owner", email: "owner@x", name: "Owner" } });
  await seeding.db.project.createMany({
    data: Array.from({ length: distinct }, (_, i) => ({ id: `p${i}`, name: `Project ${i}`, ownerId: "owner" })),
  });
  for (let offset = 0; offset < distinct * tasksPerProject; offset += 5_000) {
    const count = Math.min(5_000, distinct * tasksPerProject - offset);
    await seeding.db.task.createMany({
      data: Array.from({ length: count }, (_, j) => ({ projectId: `p${(offset + j) % distinct}`, title: `task ${offset + j}` })),
    });
  }
  await seeding.close();
  const store = await open();
  // A fresh app and server: nothing warmed up, as right after a deploy.
  const queryTimeoutMs = process.env.STORM_QUERY_TIMEOUT_MS ? Number(process.env.STORM_QUERY_TIMEOUT_MS) : undefined;
  const app = buildApp(store, queryTimeoutMs ? { queryTimeoutMs } : {});
  const server = await createTetherServer({ router: app.router, createContext: () => ({ user: null }), port: 0 });
  const child = fork(SELF, ["client", server.wsUrl, String(subs), String(distinct), String(connections)], {
    execArgv: ["--import", "tsx"],
  });
  const report = await new Promise<ClientReport>((resolve, reject) => {
    child.once("message", (message) => resolve(message as ClientReport));
    child.once("exit", (code) => reject(new Error(`client process exited with ${code}`)));
  });
  const stats = app.tether.stats.live();
  console.log(
    JSON.stringify({ engine, subs, distinct, connections, tasksPerProject, queryTimeoutMs, ...report, reactor: stats }, null, 2),
  );
  await server.close();
  await app.tether.close();
  await store.close();
  await database.drop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "client") {
  const [wsUrl, subs, distinct, connections] = rest;
  const report = await runClients(wsUrl!, Number(subs), Number(distinct), Number(connections));
  process.send!(report, () => process.exit(0));
} else {
  const engine = (mode ?? "pglite") as Engine;
  const [subs = "5000", distinct = "500", connections = "100", tasksPerProject = "100"] = rest;
  await runServer(engine, Number(subs), Number(distinct), Number(connections), Number(tasksPerProject));
  process.exit(0);
}
