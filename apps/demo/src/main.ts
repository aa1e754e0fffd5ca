/**
 * The demo, foundation stage: migrates and seeds the embedded database, then serves a task list
 * that stays live through the change feed (Server-Sent Events). Live queries over tRPC and the
 * Next.js app replace this page in later stages; the database setup stays.
 */
import http from "node:http";
import { createChangeFeed, createStore, migrate, type FeedEvent } from "@tether/server";
import { PrismaClient } from "../../../generated/prisma/client.ts";
import { renderPage } from "./page.ts";
import { dataDir, migrationsDir } from "./paths.ts";
import { DEMO_PROJECT, seed } from "./seed.ts";

const port = Number(process.env.PORT ?? 3000);
const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), dataDir });
const log = store.log;
const migrated = await migrate({ sql: store.sql, migrationsDir, log });
log.info({ engine: store.engine, at: store.location, applied: migrated.applied }, "database ready");
if (await seed(store.db)) log.info("seeded the demo user and project");

const feed = await createChangeFeed({ sql: store.sql, log });
const streams = new Set<http.ServerResponse>();
await feed.subscribe((event: FeedEvent) => {
  const payload =
    event.type === "resync"
      ? { type: "resync" }
      : { type: "changes", changes: event.changes.map((c) => ({ table: c.table, op: c.op, pk: c.pk, at: c.at })) };
  for (const res of streams) res.write(`data: ${JSON.stringify(payload)}\n\n`);
});

const listTasks = () =>
  store.db.task.findMany({ where: { projectId: DEMO_PROJECT.id }, orderBy: [{ position: "asc" }, { createdAt: "asc" }] });

async function readBody(req: http.IncomingMessage): Promise<URLSearchParams> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error("body too large");
  }
  return new URLSearchParams(body);
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method === "GET" && url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(renderPage(await listTasks()));
    } else if (req.method === "GET" && url.pathname === "/api/tasks") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(await listTasks()));
    } else if (req.method === "GET" && url.pathname === "/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      res.write(": live\n\n");
      streams.add(res);
      req.on("close", () => streams.delete(res));
    } else if (req.method === "POST" && url.pathname === "/api/tasks") {
      const form = await readBody(req);
      const title = form.get("title")?.trim();
      if (!title || title.length > 200) {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "title must be 1–200 characters" }));
        return;
      }
      const count = await store.db.task.count({ where: { projectId: DEMO_PROJECT.id } });
      await store.db.task.create({ data: { projectId: DEMO_PROJECT.id, title, position: count } });
      res.writeHead(204).end();
    } else if (req.method === "POST" && url.pathname.startsWith("/api/tasks/") && url.pathname.endsWith("/toggle")) {
      const id = decodeURIComponent(url.pathname.split("/")[3] ?? "");
      const task = await store.db.task.findUnique({ where: { id } });
      if (!task) {
        res.writeHead(404).end();
        return;
      }
      await store.db.task.update({ where: { id }, data: { done: !task.done } });
      res.writeHead(204).end();
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  } catch (error) {
    log.error({ err: (error as Error).message }, "request failed");
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error");
  }
});

server.listen(port, () => log.info(`Tether demo on http://localhost:${port} (${store.engine})`));

async function shutdown() {
  for (const res of streams) res.end();
  server.close();
  await feed.close();
  await store.close();
  process.exit(0);
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
