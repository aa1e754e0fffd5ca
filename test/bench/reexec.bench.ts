/**
 * `npm run bench -- reexec`: CPU milliseconds of this process per live-query re-execution, on
 * both engines, for each optimisation switched off ("before") and on ("after").
 *
 * One process, no network: G groups (distinct queries of four shapes — ordered page by project,
 * count, nested include with _count, prefix search) each with one in-process subscriber draining
 * its `$live` stream. A round changes one task per project by raw SQL, then re-runs every group
 * (`reactor.invalidateAll()`) and waits until all are idle again and every subscriber has its
 * message. The reactor's feed is a silent stub: the rounds alone decide what runs, so every
 * variant does exactly the same executions. CPU is process.cpuUsage() over the measured rounds
 * (user+system, all threads of this process — PGlite's work included, Postgres' excluded).
 *
 * Variants: "before" = plan cache off, no multiplexing; "+planCache"; "+multiplex" (both on).
 */
import { initTether, createStore, migrate, type ChangeFeed, type Engine, type ReactorConfig } from "@tether/server";
import { z } from "zod";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { schema } from "../../generated/tether/index.ts";
import { createTestDatabase } from "../support/databases.ts";
import { messageCounter, round, type BenchOptions, type BenchResult } from "./harness.ts";
import { tetherInternals } from "@tether/server/internal";

interface Variant {
  name: string;
  planCache: boolean;
  reactor: Partial<ReactorConfig>;
}

const VARIANTS: Variant[] = [
  { name: "before", planCache: false, reactor: { multiplexStatements: false } },
  { name: "+planCache", planCache: true, reactor: { multiplexStatements: false } },
  { name: "+multiplex", planCache: true, reactor: { multiplexStatements: true } },
];

/** A feed that never delivers: the bench decides when groups re-run. */
const silentFeed: ChangeFeed = {
  subscribe: async () => ({ position: () => "0", caughtUp: async () => undefined, close: () => undefined }),
  currentPosition: async () => "0",
  trim: async () => ({ deleted: 0, horizon: null }),
  stats: () => ({ subscribers: 0, deliveredTransactions: 0, reads: 0, lastLagMs: null, resyncs: 0, listenerReconnects: 0 }),
  close: async () => undefined,
};


async function measure(engine: Engine, variant: Variant, sizes: { projects: number; tasks: number; rounds: number }): Promise<BenchResult> {
  const database = await createTestDatabase(engine);
  const store = await createStore({
    prisma: (adapter) => new PrismaClient({ adapter }),
    url: database.url,
    dataDir: database.dataDir,
    planCache: variant.planCache ? {} : false,
  });
  try {
    await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
    await store.sql.query(`INSERT INTO "User" (id, email, name) VALUES ('u1', 'u1@x', 'U')`);
    for (let p = 0; p < sizes.projects; p++) {
      await store.sql.query(`INSERT INTO "Project" (id, name, "ownerId") VALUES ($1, $2, 'u1')`, [`p${p}`, `Project ${p}`]);
      await store.sql.query(
        `INSERT INTO "Task" (id, "projectId", title, position, done, "assigneeId", "updatedAt")
         SELECT 'p${p}t' || g, $1, 'task ' || g, g, g % 3 = 0, CASE WHEN g % 2 = 0 THEN 'u1' END, now() FROM generate_series(1, ${sizes.tasks}) g`,
        [`p${p}`],
      );
    }
    const tether = initTether<{ user: null }>().create({ store, schema, feed: silentFeed, scope: () => "shared", reactor: variant.reactor });
    const byProject = z.object({ projectId: z.string() });
    const router = tether.appRouter({
      page: tether.query.input(byProject).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { projectId: input.projectId }, orderBy: [{ position: "asc" }, { id: "asc" }], take: 20 })),
      open: tether.query.input(byProject).query(({ ctx, input }) => ctx.db.task.count({ where: { projectId: input.projectId, done: false } })),
      project: tether.query.input(byProject).query(({ ctx, input }) =>
        ctx.db.project.findUnique({
          where: { id: input.projectId },
          include: { tasks: { orderBy: { position: "asc" }, take: 5 }, _count: { select: { tasks: true } } },
        })),
      search: tether.query.input(byProject).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { projectId: input.projectId, title: { startsWith: "task 1" } }, orderBy: { id: "asc" } })),
    });
    const caller = tether.createCallerFactory(router)({ user: null });
    const controller = new AbortController();
    const messages = messageCounter();
    const messagesReach = messages.reach;
    for (let p = 0; p < sizes.projects; p++) {
      for (const path of ["page", "open", "project", "search"]) {
        messages.drain((await caller.$live({ path, input: { projectId: `p${p}` } })) as AsyncIterable<unknown>);
      }
    }
    const groups = sizes.projects * 4;
    const reactor = tetherInternals(tether).reactor;
    await messagesReach(groups);
    const runRound = async (r: number) => {
      // The first task of every project changes title and done: every group's result changes
      // (page, search and the project's first tasks show it, the open count flips), so each
      // round re-runs, diffs and sends one message per group.
      await store.sql.query(`UPDATE "Task" SET title = 'task 1' || $1::text || id, done = NOT done WHERE id LIKE '%t1'`, [String(r)]);
      const got = messages.received();
      reactor.invalidateAll();
      await messagesReach(got + groups);
    };
    for (let r = 0; r < 3; r++) await runRound(r); // warm-up (JIT, plan cache, pools)
    const start = reactor.stats().reExecutions;
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let r = 0; r < sizes.rounds; r++) await runRound(100 + r);
    const wallMs = performance.now() - wall0;
    const cpu = process.cpuUsage(cpu0);
    const executions = reactor.stats().reExecutions - start;
    if (executions !== groups * sizes.rounds) throw new Error(`expected ${groups * sizes.rounds} re-executions, saw ${executions}`);
    controller.abort();
    await tether.close();
    await messages.ended();
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return {
      suite: "reexec",
      scenario: variant.name,
      engine,
      groups,
      reExecutions: executions,
      cpuMsPerExecution: round(cpuMs / executions, 3),
      wallMsPerRound: round(wallMs / sizes.rounds, 1),
      loadAvg1m: round((await import("node:os")).loadavg()[0]!, 2),
    };
  } finally {
    await store.close();
    await database.drop();
  }
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const sizes = options.quick ? { projects: 5, tasks: 30, rounds: 5 } : { projects: 50, tasks: 60, rounds: 40 };
  const only = process.env.BENCH_VARIANTS?.split(",");
  const results: BenchResult[] = [];
  for (const engine of options.engines) {
    for (const variant of VARIANTS) {
      if (only && !only.some((name) => variant.name.startsWith(name))) continue;
      results.push(await measure(engine, variant, sizes));
    }
  }
  return results;
}
