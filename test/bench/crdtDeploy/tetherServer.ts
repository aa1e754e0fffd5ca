/**
 * The Tether side of the deployment bench, as its own process: the test suite's CRDT app (a
 * `Note` whose `body` is `/// @crdt(text)`, note policies: project owner and members may read and
 * write) on Postgres (`url`) or PGlite (`dataDir`, reopened after a SIGKILL), served by
 * `createTetherServer` on a fixed port so editors reconnect to the same address after a restart.
 * Only public API: `createStore`, `migrate`, `initTether` (through buildCrdtApp), `createTetherServer`.
 *
 * GET /bench/body answers `{ body }`: the projected `Note.body` column, for the convergence check.
 */
import { createStore, migrate } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../../generated/prisma/client.ts";
import { buildCrdtApp } from "../../support/crdtApp.ts";
import { userFromRequest } from "../../support/userClient.ts";
import { announceReady, childConfig } from "./processes.ts";

export interface TetherServerConfig {
  url?: string;
  dataDir?: string;
  port: number;
  noteId: string;
  /** Users e0..e<n-1>; e0 owns the note's project, the others are members. */
  users: number;
}

const config = childConfig<TetherServerConfig>();
const store = await createStore({
  prisma: (adapter) => new PrismaClient({ adapter }),
  url: config.url,
  dataDir: config.dataDir,
  reconnect: { initialDelayMs: 20, maxDelayMs: 500 },
});
await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });

// Seeded on the first start only (a restart finds the rows).
if (!(await store.db.note.findUnique({ where: { id: config.noteId } }))) {
  const ids = Array.from({ length: config.users }, (_, i) => `e${i}`);
  await store.db.user.createMany({ data: ids.map((id) => ({ id, email: `${id}@bench`, name: id })), skipDuplicates: true });
  await store.db.project.create({ data: { id: config.noteId, name: config.noteId, ownerId: ids[0]! } });
  await store.db.projectMember.createMany({ data: ids.slice(1).map((userId) => ({ projectId: config.noteId, userId })) });
  await store.db.note.create({ data: { id: config.noteId, projectId: config.noteId, body: "" } });
}

const app = buildCrdtApp(store);
await app.tether.start();
const server = await createTetherServer({
  router: app.router,
  createContext: userFromRequest,
  port: config.port,
  host: "127.0.0.1",
  closeGraceMs: 200,
  extraRoutes: (req, res) => {
    if (req.url !== "/bench/body") return false;
    void store.db.note.findUnique({ where: { id: config.noteId } }).then(
      (note) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ body: note?.body ?? null }));
      },
      (error: unknown) => {
        res.writeHead(500);
        res.end(String(error));
      },
    );
    return true;
  },
});
announceReady({ port: server.port });

process.once("SIGTERM", () => {
  void (async () => {
    await server.close();
    await app.tether.close();
    await store.close();
    process.exit(0);
  })();
});
