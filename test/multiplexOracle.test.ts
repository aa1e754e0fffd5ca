// The separate run is the oracle: every live result produced with statement multiplexing on
// (store/multiplex.ts — on Postgres, same-SQL reads of one flush merged into one UNION ALL
// statement) must equal what the same query returns called on its own, over random data and
// random inputs, after random writes too. On PGlite nothing is merged: the same check proves the
// fallback (one statement per read) is untouched.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initTether } from "@tether/server";
import { multiplexStats, tetherInternals } from "@tether/server/internal";
import { z } from "zod";
import { schema } from "../generated/tether/index.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { waitFor } from "./support/waitFor.ts";
import { collectLive } from "./support/liveCollector.ts";

/** A small seeded PRNG (mulberry32): a failure replays with the same data. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROJECTS = ["p0", "p1", "p2", "p3", "p4", "p5", "nope"];
const PREFIXES = ["a", "b", "ab", "", "z", "%", "_"];

describe.each(engines)("multiplexed live queries on %s", (engine) => {
  let store: AppStore;
  let close: () => Promise<void>;
  const random = prng(20261202);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  beforeAll(async () => {
    ({ store, close } = await createTestStore(engine));
    await store.sql.query(`INSERT INTO "User" (id, email, name) VALUES ('u1', 'u1@x', 'One'), ('u2', 'u2@x', 'Two')`);
    for (const p of PROJECTS.slice(0, 6)) await store.sql.query(`INSERT INTO "Project" (id, name, "ownerId") VALUES ($1, $1, 'u1')`, [p]);
    for (let i = 0; i < 120; i++) {
      await store.sql.query(
        `INSERT INTO "Task" (id, "projectId", title, position, done, "assigneeId", "updatedAt") VALUES ($1, $2, $3, $4, $5, $6, now())`,
        [`t${i}`, pick(PROJECTS.slice(0, 6)), pick(["a", "b", "ab", "ba", "z"]) + Math.floor(random() * 100), Math.floor(random() * 10), random() < 0.5, pick(["u1", "u2", null])],
      );
    }
  });
  afterAll(async () => close?.());

  it("gives every group exactly its separate result, before and after random writes", async () => {
    const tether = initTether<{ user: null }>().create({ store, schema, reactor: { multiplexStatements: true } });
    const byProject = z.object({ projectId: z.string(), prefix: z.string(), take: z.number().int() });
    const router = tether.appRouter({
      page: tether.query.input(byProject).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { projectId: input.projectId }, orderBy: [{ position: "desc" }, { id: "asc" }], take: input.take })),
      search: tether.query.input(byProject).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { projectId: input.projectId, title: { startsWith: input.prefix } }, orderBy: { id: "asc" } })),
      open: tether.query.input(byProject).query(({ ctx, input }) => ctx.db.task.count({ where: { projectId: input.projectId, done: false } })),
      project: tether.query.input(byProject).query(({ ctx, input }) =>
        ctx.db.project.findUnique({
          where: { id: input.projectId },
          include: { tasks: { where: { title: { startsWith: input.prefix } }, orderBy: { id: "asc" }, take: input.take }, _count: { select: { tasks: true } } },
        })),
    });
    const caller = tether.createCallerFactory(router)({ user: null });
    const paths = ["page", "search", "open", "project"] as const;
    const subscriptions = Array.from({ length: 40 }, () => ({
      path: pick(paths),
      input: { projectId: pick(PROJECTS), prefix: pick(PREFIXES), take: 1 + Math.floor(random() * 8) },
    }));
    const controller = new AbortController();
    const collectors = await Promise.all(
      subscriptions.map(async (s) => collectLive<unknown>((await caller.$live(s)) as AsyncIterable<unknown>, controller)),
    );
    /** Waits until every subscription's latest message is at least `version` (1 = first). */
    const allAt = async (version: (i: number) => number) => {
      for (const [i, c] of collectors.entries()) await c.until(() => c.state.version >= version(i));
    };
    const check = async () => {
      const separate = await Promise.all(subscriptions.map((s) => (caller as unknown as Record<string, (input: unknown) => Promise<unknown>>)[s.path]!(s.input)));
      subscriptions.forEach((s, i) => expect({ ...s, result: JSON.parse(JSON.stringify(collectors[i]!.state.data ?? null)) }).toEqual({ ...s, result: JSON.parse(JSON.stringify(separate[i] ?? null)) }));
    };
    const mergedBefore = multiplexStats.merged;
    await allAt(() => 1);
    await check();
    for (let round = 0; round < 3; round++) {
      // Random writes by raw SQL, then every group re-run in one flush (the merged path).
      for (let w = 0; w < 5; w++) {
        const id = `t${Math.floor(random() * 120)}`;
        await store.sql.query(`UPDATE "Task" SET title = $2, done = NOT done, position = $3, "projectId" = $4 WHERE id = $1`, [
          id, pick(["a", "b", "ab", "ba", "z"]) + round, Math.floor(random() * 10), pick(PROJECTS.slice(0, 6)),
        ]);
      }
      const before = collectors.map((c) => c.state.version);
      const executions = tether.stats.live().reExecutions;
      tetherInternals(tether).reactor.invalidateAll();
      // A group whose result did not change sends nothing: wait for the runs, then the messages.
      await waitFor("every group re-run and idle", () => {
        const stats = tether.stats.live();
        return stats.reExecutions >= executions + stats.groups && stats.groupsByState.idle === stats.groups;
      });
      await allAt((i) => before[i]!);
      await check();
    }
    if (engine === "postgres") expect(multiplexStats.merged).toBeGreaterThan(mergedBefore);
    else expect(multiplexStats.merged).toBe(mergedBefore);
    controller.abort();
    await tether.close();
    await Promise.all(collectors.map((c) => c.stop()));
  }, 300_000);
});
