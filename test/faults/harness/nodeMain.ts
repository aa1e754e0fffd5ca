/**
 * One Tether node as its own process (so SIGKILL is real): store + the fixture app + the
 * transport, on the database the parent names. Prints `READY <port>` when it serves. Config comes
 * as JSON in FAULTS_NODE (see NodeConfig). `/faults/stats` reports what the scenarios measure.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createStore, migrate, type SqlClient } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../../generated/prisma/client.ts";
import { buildApp } from "../../fixtures/app.ts";
import { seedAliceAndBob } from "../../support/seed.ts";
import { userFromRequest } from "../../support/userClient.ts";
import type { NodeConfig } from "./nodeProcess.ts";

const config = JSON.parse(process.env.FAULTS_NODE ?? "{}") as NodeConfig;

const opened = await createStore({
  prisma: (adapter) => new PrismaClient({ adapter }),
  url: config.url,
  dataDir: config.dataDir,
  reconnect: { initialDelayMs: 20, maxDelayMs: 500 },
});
await migrate({ sql: opened.sql, migrationsDir: "prisma/migrations" });
// Every scenario writes into Alice's project "p1" (Bob's "p2" stays for cross-project noise).
if ((await opened.db.user.count()) === 0) await seedAliceAndBob(opened, { alice: ["p1", "One"], bob: ["p2", "Two"] });

// A node whose NOTIFYs never arrive: its LISTEN connection is up, but every notification is
// dropped here, so the feed's poll (and the reactor's sweep) are all it has.
const sql: SqlClient = config.noNotify
  ? new Proxy(opened.sql, {
      get(target, key) {
        if (key === "listen") {
          return (channel: string, handlers: Parameters<SqlClient["listen"]>[1]) =>
            target.listen(channel, { ...handlers, onNotify: () => undefined });
        }
        const value = Reflect.get(target, key) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    })
  : opened.sql;
const store = { ...opened, sql };

// Rate limits off: the writers are one anonymous caller doing tens of writes a second, far above
// the default per-caller budget; this suite measures faults, not the limiter (tested elsewhere).
const app = buildApp(store, config.reactor ?? {}, { rate: false });
await app.tether.start();

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

const server = await createTetherServer({
  router: app.router,
  createContext: userFromRequest,
  port: config.port ?? 0,
  closeGraceMs: 200,
  ...(config.server ?? {}),
  extraRoutes: (req, res) => {
    if (req.url !== "/faults/stats") return false;
    const memory = process.memoryUsage();
    const body = {
      pid: process.pid,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      // Since the previous read: the scenarios sample once a second.
      eventLoopLagMaxMs: lag.max / 1e6,
      eventLoopLagMeanMs: Number.isNaN(lag.mean) ? 0 : lag.mean / 1e6,
      reactor: app.tether.stats.live(),
      transport: server.stats(),
    };
    lag.reset();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
    return true;
  },
});
process.stdout.write(`READY ${server.port}\n`);

const stop = async () => {
  await server.close();
  await app.tether.close();
  await store.close();
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
