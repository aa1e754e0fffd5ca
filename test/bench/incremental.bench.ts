/**
 * `npm run bench -- incremental`: CPU milliseconds of this process per changed live result, with
 * incremental updates (reactor/incremental) off ("rerun") and on ("incremental"), on both engines.
 *
 * One process, no network, the real change feed: G groups, one per project, each a maintained
 * page (`findMany` where projectId, orderBy position then id, take 20) with one in-process
 * subscriber. A round is one transaction by raw SQL moving one task inside each project's window
 * (a different task and position each round): every group's result changes, and it stays exact
 * to maintain. The round ends when every subscriber has its message. CPU is process.cpuUsage()
 * over the measured rounds (PGlite's work included, Postgres' excluded: on Postgres "rerun" also
 * costs the database a query per group, which this does not show).
 *
 * On Postgres the task ids get an explicit "C" collation: the test database's libc "C.UTF-8" is
 * not a collation Tether reproduces, and without it every group re-runs (see
 * incremental/orderableColumns.ts).
 */
import { initTether, createStore, migrate, type Engine } from "@tether/server";
import { tetherInternals } from "@tether/server/internal";
import { z } from "zod";
import { PrismaClient } from "../../generated/prisma/client.ts";
import { schema } from "../../generated/tether/index.ts";
import { createTestDatabase } from "../support/databases.ts";
import { messageCounter, round, type BenchOptions, type BenchResult } from "./harness.ts";

const VARIANTS = [
  { name: "rerun", incrementalUpdates: false },
  { name: "incremental", incrementalUpdates: true },
];

async function measure(engine: Engine, variant: (typeof VARIANTS)[number], sizes: { projects: number; tasks: number; rounds: number }): Promise<BenchResult> {
  const database = await createTestDatabase(engine);
  const store = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: database.url, dataDir: database.dataDir });
  try {
    await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
    if (engine === "postgres") await store.sql.query(`ALTER TABLE "Task" ALTER COLUMN id TYPE text COLLATE "C"`);
    await store.sql.query(`INSERT INTO "User" (id, email, name) VALUES ('u1', 'u1@x', 'U')`);
    for (let p = 0; p < sizes.projects; p++) {
      await store.sql.query(`INSERT INTO "Project" (id, name, "ownerId") VALUES ($1, $1, 'u1')`, [`p${p}`]);
      await store.sql.query(
        `INSERT INTO "Task" (id, "projectId", title, position, "updatedAt")
         SELECT $1 || 't' || g, $1, 'task ' || g, g, now() FROM generate_series(1, ${sizes.tasks}) g`,
        [`p${p}`],
      );
    }
    const tether = initTether<{ user: null }>().create({ store, schema, scope: () => "shared", reactor: { incrementalUpdates: variant.incrementalUpdates } });
    const router = tether.appRouter({
      page: tether.query.input(z.object({ projectId: z.string() })).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { projectId: input.projectId }, orderBy: [{ position: "asc" }, { id: "asc" }], take: 20 })),
    });
    const caller = tether.createCallerFactory(router)({ user: null });
    const messages = messageCounter();
    const messagesReach = messages.reach;
    for (let p = 0; p < sizes.projects; p++) {
      messages.drain((await caller.$live({ path: "page", input: { projectId: `p${p}` } })) as AsyncIterable<unknown>);
    }
    const groups = sizes.projects;
    const reactor = tetherInternals(tether).reactor;
    await messagesReach(groups);
    // Task k (1..19) of every project moves to another position inside the window (1..19): never
    // past the 20th row (position 20), so the change is exact to apply, and always a real change.
    const positions = new Map<number, number>();
    const runRound = async (r: number) => {
      const k = (r % 19) + 1;
      const position = ((positions.get(k) ?? k) % 19) + 1;
      positions.set(k, position);
      const ids = Array.from({ length: sizes.projects }, (_, p) => `p${p}t${k}`);
      const got = messages.received();
      await store.sql.query(`UPDATE "Task" SET position = $1 WHERE id = ANY($2)`, [position, ids]);
      await messagesReach(got + groups);
    };
    for (let r = 0; r < 3; r++) await runRound(r);
    const before = reactor.stats();
    const cpu0 = process.cpuUsage();
    for (let r = 0; r < sizes.rounds; r++) await runRound(3 + r);
    const cpu = process.cpuUsage(cpu0);
    const after = reactor.stats();
    const changed = messages.received(); // one per group per round (messagesReach waits for them)
    await tether.close();
    await messages.ended();
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return {
      suite: "incremental",
      scenario: variant.name,
      engine,
      groups,
      rounds: sizes.rounds,
      reExecutions: after.reExecutions - before.reExecutions,
      incrementalUpdates: after.incrementalUpdates - before.incrementalUpdates,
      cpuMsPerChangedResult: round(cpuMs / (groups * sizes.rounds), 3),
      cpuMsPerRound: round(cpuMs / sizes.rounds, 2),
      messages: changed,
      loadAvg1m: round((await import("node:os")).loadavg()[0]!, 2),
    };
  } finally {
    await store.close();
    await database.drop();
  }
}

export async function run(options: BenchOptions): Promise<BenchResult[]> {
  const sizes = options.quick ? { projects: 5, tasks: 30, rounds: 10 } : { projects: 50, tasks: 60, rounds: 40 };
  const results: BenchResult[] = [];
  for (const engine of options.engines) for (const variant of VARIANTS) results.push(await measure(engine, variant, sizes));
  return results;
}
