/**
 * A Tether node as its own process (SIGKILL is real): the CRDT test app (notes.get live query,
 * notes.setBody, $crdt on Note.body, presence rooms note:<id>) on the database the parent names.
 * RED_NODE: { node, url?, dataDir?, port, seed? }. Prints READY once it listens.
 */
import { createStore, migrate } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { buildCrdtApp } from "../support/crdtApp.ts";
import { userFromRequest } from "../support/userClient.ts";
import { seedSharedNote } from "../support/seed.ts";

const config = JSON.parse(process.env.RED_NODE ?? "{}") as { url?: string; dataDir?: string; port: number; seed?: boolean };
const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: config.url, dataDir: config.dataDir });
await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
if (config.seed) {
  await seedSharedNote(store.db);
}
const app = buildCrdtApp(store);
await app.tether.start();
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
