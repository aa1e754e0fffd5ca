/**
 * One CRDT node as its own process (so SIGKILL is real): store + the CRDT test app on the
 * database the parent names (CRDT_NODE: { url?, dataDir?, port, seed?, projectionDelayMs? }),
 * served on `port`. Prints `READY` once it listens. SIGTERM stops it gracefully.
 */
import { createStore, migrate } from "@tether/server";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildCrdtApp } from "./crdtApp.ts";
import { createTetherServer } from "@tether/server/adapters/node";
import { userFromRequest } from "./userClient.ts";
import { seedSharedNote } from "./seed.ts";

const config = JSON.parse(process.env.CRDT_NODE ?? "{}") as { url?: string; dataDir?: string; port: number; seed?: boolean; projectionDelayMs?: number };
const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: config.url, dataDir: config.dataDir });
await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
if (config.seed) {
  await seedSharedNote(store.db);
}
const app = buildCrdtApp(store, config.projectionDelayMs === undefined ? {} : { projectionDelayMs: config.projectionDelayMs });
await app.tether.start(); // projects what a killed node left due
const server = await createTetherServer({ router: app.router, createContext: userFromRequest, port: config.port, host: "127.0.0.1", closeGraceMs: 100 });
process.stdout.write("READY\n");

process.once("SIGTERM", () => {
  void (async () => {
    await server.close();
    await app.tether.close();
    await store.close();
    process.exit(0);
  })();
});
