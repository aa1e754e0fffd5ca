/**
 * One server node of the live bench, as its own process (so its CPU is its own): a store on
 * Postgres (URL) or an in-memory PGlite, the task-tracker app of liveWorkload.ts served over HTTP +
 * WebSocket by `createTetherServer`, either as
 * - `tether`: `initTether` queries (`q.<name>`), subscribed through the generic `$live`, and
 *   mutations `tasks.add` / `tasks.update`;
 * - `baseline`: what users hand-write today (as in reactorApps.ts, made multi-node): a plain
 *   tRPC router whose subscription `live({ name, input })` yields the query's result, then
 *   re-runs it on every invalidation; invalidations are a Postgres NOTIFY that the mutations (and
 *   the raw SQL writers) send, which every node LISTENs to and re-emits on an EventEmitter.
 *
 * Talks to the bench over IPC: sends `{ ready: { url, wsUrl } }`, then answers
 * `{ id, op: "stats" | "sql" }`. SIGTERM stops it (and lets `--cpu-prof` write its profile).
 * Config: env LIVE_NODE (LiveNodeConfig). Only public @tether/server APIs are used.
 */
import { EventEmitter, on } from "node:events";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { initTRPC } from "@trpc/server";
import { z } from "zod";
import { createStore, initTether, migrate, type Engine, type SqlClient } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { schema } from "../../generated/tether/index.ts";
import type { AppStore } from "../support/databases.ts";
import { userFromRequest } from "../support/userClient.ts";
import { schedstat } from "./cpuProfile.ts";
import { INVALIDATE_CHANNEL, QUERIES, queryInput, seedSql, taskWriteInput, type QueryName } from "./liveWorkload.ts";

export type LiveSystem = "tether" | "baseline";

export interface LiveNodeConfig {
  engine: Engine;
  /** Postgres URL (absent: in-memory PGlite, prepared by this node). */
  url?: string;
  system: LiveSystem;
  node: number;
}

export interface NodeStatsReply {
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Query executions (Tether: reactor executions; baseline: query runs of subscriptions). */
  executions: number;
  /** Messages handed to subscribers (Tether: reactor messagesSent; baseline: yields). */
  messages: number;
  rssMb: number;
  eventLoopDelayP99Ms: number;
  wsConnections: number;
  subscriptions: number;
  /** The main thread's time on a CPU and runnable waiting for one (cpuProfile.ts `schedstat`), ms. */
  schedRunMs: number | null;
  schedWaitMs: number | null;
}


/** Migrates and seeds a fresh database; the baseline's runs without Tether's capture triggers. */
export async function prepareDatabase(sql: SqlClient, system: LiveSystem): Promise<void> {
  await migrate({ sql, migrationsDir: "prisma/migrations" });
  if (system === "baseline") {
    for (const table of ["User", "Project", "Task", "Attachment"]) {
      await sql.exec(`DROP TRIGGER IF EXISTS "_tether_capture" ON "${table}"; DROP TRIGGER IF EXISTS "_tether_capture_truncate" ON "${table}";`);
    }
  }
  await sql.exec(seedSql());
}

export interface BenchCtx {
  user: { id: string } | null;
}

const queryNames = Object.keys(QUERIES) as QueryName[];

function buildTetherApp(store: AppStore) {
  // The queries read nothing of the context: identical ones share one execution across users.
  const tether = initTether<BenchCtx>().create({
    store,
    schema,
    scope: () => "shared",
    limits: { rate: false, subscriptions: { maxPerConnection: 1_000 }, mutations: { maxQueued: 10_000 } },
  });
  const q = Object.fromEntries(
    queryNames.map((name) => [name, tether.query.input(queryInput).query(({ ctx, input }): Promise<unknown> => QUERIES[name](ctx.db as AppStore["db"], input))]),
  );
  const router = tether.appRouter({
    q: tether.router(q),
    tasks: tether.router({
      add: tether.mutation.input(taskWriteInput).mutation(({ ctx, input }) => ctx.db.task.create({ data: input, select: { id: true } })),
      update: tether.mutation.input(taskWriteInput).mutation(({ ctx, input }) => {
        const { id, ...data } = input;
        return ctx.db.task.update({ where: { id }, data, select: { id: true } });
      }),
    }),
  });
  return {
    router,
    close: () => tether.close(),
    counters: () => {
      const stats = tether.stats.live();
      return { executions: stats.executions, messages: stats.messagesSent, subscriptions: stats.subscriptions };
    },
  };
}

async function buildBaselineApp(store: AppStore) {
  const t = initTRPC.context<BenchCtx>().create();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const counters = { executions: 0, messages: 0, subscriptions: 0 };
  const listening = await store.sql.listen(INVALIDATE_CHANNEL, { onNotify: () => events.emit("invalidate") });
  const invalidate = () => store.sql.query(`SELECT pg_notify('${INVALIDATE_CHANNEL}', '')`);
  const liveInput = z.object({ name: z.enum(queryNames as [QueryName, ...QueryName[]]), input: queryInput });
  const run = (spec: z.infer<typeof liveInput>) => {
    counters.executions += 1;
    return QUERIES[spec.name](store.db, spec.input);
  };
  const router = t.router({
    live: t.procedure.input(liveInput).subscription(async function* ({ input, signal }) {
      counters.subscriptions += 1;
      try {
        const invalidations = on(events, "invalidate", { signal });
        counters.messages += 1;
        yield await run(input);
        for await (const _ of invalidations) {
          counters.messages += 1;
          yield await run(input);
        }
      } finally {
        counters.subscriptions -= 1;
      }
    }),
    tasks: t.router({
      add: t.procedure.input(taskWriteInput).mutation(async ({ input }) => {
        const row = await store.db.task.create({ data: input, select: { id: true } });
        await invalidate();
        return row;
      }),
      update: t.procedure.input(taskWriteInput).mutation(async ({ input }) => {
        const { id, ...data } = input;
        const row = await store.db.task.update({ where: { id }, data, select: { id: true } });
        await invalidate();
        return row;
      }),
    }),
  });
  return { router, close: () => listening.close(), counters: () => ({ ...counters }) };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.LIVE_NODE ?? "{}") as LiveNodeConfig;
  const store: AppStore = await createStore({
    prisma: (adapter) => new PrismaClient({ adapter }),
    url: config.url,
    dataDir: config.url ? undefined : "memory://",
  });
  if (!config.url) await prepareDatabase(store.sql, config.system);
  const app = config.system === "tether" ? buildTetherApp(store) : await buildBaselineApp(store);
  const server = await createTetherServer({
    router: app.router,
    createContext: userFromRequest,
    port: 0,
  });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();

  const stats = (): NodeStatsReply => {
    const cpu = process.cpuUsage();
    const counters = app.counters();
    const sched = schedstat();
    const reply: NodeStatsReply = {
      schedRunMs: sched?.runMs ?? null,
      schedWaitMs: sched?.waitMs ?? null,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      executions: counters.executions,
      messages: counters.messages,
      subscriptions: counters.subscriptions,
      rssMb: process.memoryUsage.rss() / 1024 / 1024,
      eventLoopDelayP99Ms: delay.percentile(99) / 1e6,
      wsConnections: server.stats().wsConnections,
    };
    delay.reset();
    return reply;
  };
  process.on("message", (raw) => {
    const message = raw as { id: number; op: "stats" | "sql"; sql?: string; params?: unknown[] };
    void (async () => {
      try {
        const result = message.op === "stats" ? stats() : await store.sql.query(message.sql!, message.params ?? []);
        process.send!({ id: message.id, result });
      } catch (error) {
        process.send!({ id: message.id, error: (error as Error).message });
      }
    })();
  });
  process.once("SIGTERM", () => {
    void (async () => {
      const timer = setTimeout(() => process.exit(0), 3_000);
      timer.unref();
      await server.close().catch(() => undefined);
      await app.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      process.exit(0);
    })();
  });
  // The bench went away (killed, crashed): do not linger as an orphan.
  process.once("disconnect", () => process.exit(0));
  process.send!({ ready: { url: server.url, wsUrl: server.wsUrl } });
}

if (process.env.LIVE_NODE) await main();
