// The re-run is the oracle: live results the reactor keeps up to date from the changes alone
// (reactor/incremental, no query) must equal what the same query returns when run afresh, after
// every batch of random writes — inserts, deletes, updates that move rows into and out of filters
// and take-windows, ties, NULLs, mixed-case and non-ASCII strings. On PGlite (collation "C")
// string order is reproduced; Postgres's default here (libc "C.UTF-8") is not reproducible, so there
// the string columns get an explicit "C" collation (the other path: such groups re-run, see
// incremental.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initTether } from "@tether/server";
import { loadColumnFacts } from "@tether/server/internal";
import { z } from "zod";
import { schema } from "../generated/tether/index.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { collectLive } from "./support/liveCollector.ts";
import { random } from "./support/random.ts";

const PROJECTS = ["p0", "p1", "p2"];
const TITLES = ["apple", "Apple", "aB", "ab", "Zebra", "zebra", "Äpfel", "éclair", "Éclair", "😀x", "\uFF5Ex", "", "b"];
const IDS = ["t1", "T1", "t10", "t2", "a", "Z", "é", "ä", "😀", "\uFF5E", "x y", "x", "xx", "t3", "t4", "t5", "t6", "t7"];
const ASSIGNEES = ["u1", "u2", null];
const BASE = Date.parse("2024-05-01T10:00:00.000Z");

describe.each(engines)("incrementally maintained live queries on %s", (engine) => {
  let store: AppStore;
  let close: () => Promise<void>;
  const next = random(20261215);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const updatedAt = () => new Date(BASE + Math.floor(next() * 4) * 1000).toISOString(); // ties too

  beforeAll(async () => {
    ({ store, close } = await createTestStore(engine));
    await store.sql.query(`INSERT INTO "User" (id, email, name) VALUES ('u1', 'u1@x', 'One'), ('u2', 'u2@x', 'Two')`);
    if (engine === "postgres") {
      await store.sql.query(`ALTER TABLE "Task" ALTER COLUMN id TYPE text COLLATE "C", ALTER COLUMN title TYPE text COLLATE "C", ALTER COLUMN "assigneeId" TYPE text COLLATE "C"`);
    }
    for (const p of PROJECTS) await store.sql.query(`INSERT INTO "Project" (id, name, "ownerId") VALUES ($1, $1, 'u1')`, [p]);
  });
  afterAll(async () => close?.());

  it("orders in JavaScript only the columns whose Postgres order it reproduces", async () => {
    const { exact, orderable } = await loadColumnFacts(store.sql);
    for (const column of ["id", "title", "position", "done", "updatedAt", "createdAt"]) expect(orderable.has(`Task.${column}`), column).toBe(true);
    // Under the database's collation: "C" on PGlite; libc "C.UTF-8" on the Postgres here is not bytewise by contract.
    expect(orderable.has("Task.projectId")).toBe(engine === "pglite");
    expect(exact.has("Task.projectId")).toBe(true);
    expect(exact.has("Attachment.data")).toBe(false); // bytea
  });

  it("with incrementalUpdates off, every relevant change re-runs", async () => {
    const tether = initTether<{ user: null }>().create({ store, schema, reactor: { incrementalUpdates: false } });
    const router = tether.appRouter({
      list: tether.query.query(({ ctx }) => ctx.db.task.findMany({ orderBy: [{ position: "asc" }, { id: "asc" }] })),
    });
    const caller = tether.createCallerFactory(router)({ user: null });
    const controller = new AbortController();
    const live = collectLive<Array<{ id: string }>>((await caller.$live({ path: "list", input: undefined })) as AsyncIterable<unknown>, controller);
    await live.until(() => live.state.version === 1);
    await store.sql.query(`INSERT INTO "Task" (id, "projectId", title, "updatedAt") VALUES ('off1', 'p0', 'off', now())`);
    await live.until(() => live.state.data?.some((t) => t.id === "off1") === true);
    expect(tether.stats.live()).toMatchObject({ incrementalUpdates: 0, reExecutions: 1 });
    await store.sql.query(`DELETE FROM "Task" WHERE id = 'off1'`);
    await live.until(() => live.state.data?.length === 0);
    controller.abort();
    await tether.close();
    await live.stop();
  });

  it("equals a fresh run after every batch of random writes", async () => {
    const tether = initTether<{ user: null }>().create({ store, schema });
    const input = z.object({ projectId: z.string(), take: z.number().int().optional(), position: z.number().int() });
    const router = tether.appRouter({
      byPosition: tether.query.input(input).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { projectId: input.projectId }, orderBy: [{ position: "desc" }, { id: "asc" }], take: input.take })),
      byTitle: tether.query.input(input).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { done: false }, orderBy: [{ title: "asc" }, { id: "asc" }], take: input.take })),
      byAssignee: tether.query.input(input).query(({ ctx, input }) =>
        ctx.db.task.findMany({
          where: { OR: [{ projectId: input.projectId }, { position: { gte: input.position } }] },
          orderBy: [{ assigneeId: { sort: "desc", nulls: "last" } }, { position: "asc" }, { id: "desc" }],
          take: input.take,
        })),
      recent: tether.query.input(input).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { position: { lt: input.position }, assigneeId: null }, orderBy: [{ updatedAt: "desc" }, { id: "asc" }], take: input.take })),
      nullsFirst: tether.query.input(input).query(({ ctx, input }) =>
        ctx.db.task.findMany({ where: { projectId: { not: input.projectId } }, orderBy: [{ assigneeId: "desc" }, { done: "asc" }, { id: "asc" }], take: input.take })),
      search: tether.query.input(input).query(({ ctx, input }) =>
        ctx.db.task.findMany({
          where: { OR: [{ title: { startsWith: "a", mode: "insensitive" } }, { assigneeId: { in: ["u1"] } }], position: { not: input.position } },
          orderBy: [{ done: "desc" }, { updatedAt: "asc" }, { id: "desc" }],
          take: input.take,
        })),
      // Computed from the read: not the read's own result, so it re-runs (and must still be right).
      mapped: tether.query.input(input).query(async ({ ctx, input }) =>
        (await ctx.db.task.findMany({ where: { projectId: input.projectId }, orderBy: [{ position: "asc" }, { id: "asc" }], take: input.take }))
          .map((t) => ({ ...t, title: t.title.toUpperCase() }))),
    });
    const caller = tether.createCallerFactory(router)({ user: null });
    const paths = ["byPosition", "byTitle", "byAssignee", "recent", "nullsFirst", "search", "mapped"] as const;
    const subscriptions = Array.from({ length: 35 }, (_, i) => ({
      path: paths[i % paths.length]!,
      input: { projectId: pick(PROJECTS), take: next() < 0.3 ? undefined : 1 + Math.floor(next() * 5), position: Math.floor(next() * 5) },
    }));
    const controller = new AbortController();
    const collectors = await Promise.all(
      subscriptions.map(async (s) => collectLive<unknown>((await caller.$live(s)) as AsyncIterable<unknown>, controller)),
    );
    const json = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;
    const check = async (round: number) => {
      await tether.settled();
      const fresh = await Promise.all(subscriptions.map((s) => (caller as unknown as Record<string, (input: unknown) => Promise<unknown>>)[s.path]!(s.input)));
      const expected = subscriptions.map((s, i) => ({ round, ...s, result: json(fresh[i]) }));
      // Messages queued by settled() reach the collectors a few turns later: wait for them, then compare.
      const actual = () => subscriptions.map((s, i) => ({ round, ...s, result: json(collectors[i]!.state.data) }));
      await Promise.all(collectors.map((c) => c.until(() => c.state.messages.length > 0)));
      for (let turn = 0; turn < 50 && JSON.stringify(actual()) !== JSON.stringify(expected); turn++) await new Promise((r) => setImmediate(r));
      expect(actual()).toEqual(expected);
    };
    await check(-1);
    const present = new Set<string>();
    for (let round = 0; round < 40; round++) {
      const writes = 1 + Math.floor(next() * 4);
      for (let w = 0; w < writes; w++) {
        const id = pick(IDS);
        if (!present.has(id)) {
          await store.sql.query(
            `INSERT INTO "Task" (id, "projectId", title, position, done, "assigneeId", "updatedAt") VALUES ($1, $2, $3, $4, $5, $6, $7)`,
            [id, pick(PROJECTS), pick(TITLES), Math.floor(next() * 5), next() < 0.5, pick(ASSIGNEES), updatedAt()],
          );
          present.add(id);
        } else if (next() < 0.25) {
          await store.sql.query(`DELETE FROM "Task" WHERE id = $1`, [id]);
          present.delete(id);
        } else {
          await store.sql.query(
            `UPDATE "Task" SET title = $2, position = $3, done = $4, "assigneeId" = $5, "projectId" = $6, "updatedAt" = $7 WHERE id = $1`,
            [id, pick(TITLES), Math.floor(next() * 5), next() < 0.5, pick(ASSIGNEES), pick(PROJECTS), updatedAt()],
          );
        }
      }
      await check(round);
    }
    // The maintained path did the work (not re-runs that would pass the check anyway).
    expect(tether.stats.live().incrementalUpdates).toBeGreaterThan(100);
    controller.abort();
    await tether.close();
    await Promise.all(collectors.map((c) => c.stop()));
  }, 300_000);
});
