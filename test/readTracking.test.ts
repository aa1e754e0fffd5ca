// Read tracking through a real Prisma client extension on a real PGlite store, and `affects`
// judged against the Change objects the real change feed delivers for real writes.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Change, ChangeFeed, ReadSet, ReadSetRecorder } from "@tether/server";
import { affects, createChangeFeed, createReadSetRecorder, trackReads } from "@tether/server/internal";
import { schema } from "../generated/tether/index.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { createTestStore, type AppStore } from "./support/databases.ts";
import { recordFeed } from "./support/feedRecorder.ts";
import { seedAliceAndBob } from "./support/seed.ts";

describe("read tracking on pglite", () => {
  let store: AppStore;
  let close: () => Promise<void>;
  let feed: ChangeFeed;
  let recorder: ReadSetRecorder;
  let db: PrismaClient;

  beforeAll(async () => {
    const made = await createTestStore("pglite");
    store = made.store;
    close = made.close;
    feed = await createChangeFeed({ sql: store.sql, pollIntervalMs: 0, trimIntervalMs: 0 });
    await seedAliceAndBob(store, { alice: ["p1", "One"], bob: ["p2", "Two"] });
    await store.db.task.createMany({ data: [
      { id: "t1", projectId: "p1", title: "first", assigneeId: "alice", position: 1 },
      { id: "t2", projectId: "p1", title: "second", assigneeId: "bob", position: 2, done: true },
      { id: "t3", projectId: "p2", title: "third", position: 3 },
    ] });
  });
  afterAll(async () => {
    await feed?.close();
    await close?.();
  });
  beforeEach(() => {
    recorder = createReadSetRecorder();
    db = trackReads(store.db, recorder, schema);
  });

  it("records a findMany with its where, nested include and _count, and returns the real rows", async () => {
    const projects = await db.project.findMany({
      where: { ownerId: "alice" },
      include: { tasks: { where: { done: false }, include: { assignee: true } }, _count: { select: { tasks: true } } },
    });
    expect(projects.map((p) => [p.id, p.tasks.map((t) => t.id), p._count.tasks])).toEqual([["p1", ["t1"], 2]]);
    expect(projects[0]?.tasks[0]?.assignee?.name).toBe("Alice");
    expect(recorder.readSet()).toEqual({
      allTables: false,
      reads: [
        { model: "Project", operation: "findMany", where: { ownerId: "alice" } },
        { model: "Task", operation: "include", where: { done: false } },
        { model: "User", operation: "include" },
        { model: "Task", operation: "count" },
      ],
    });
  });

  it("records findUnique, count, aggregate, groupBy and relation filters", async () => {
    await db.task.findUnique({ where: { id: "t1" } });
    expect(await db.task.count({ where: { projectId: "p1" } })).toBe(2);
    await db.task.aggregate({ where: { done: false }, _max: { position: true } });
    await db.task.groupBy({ by: ["projectId"], where: { position: { gt: 0 } }, _count: { _all: true } });
    expect((await db.user.findMany({ where: { tasks: { some: { done: true } } } })).map((u) => u.id)).toEqual(["bob"]);
    expect(recorder.readSet().reads).toEqual([
      { model: "Task", operation: "findUnique", where: { id: "t1" } },
      { model: "Task", operation: "count", where: { projectId: "p1" } },
      { model: "Task", operation: "aggregate", where: { done: false } },
      { model: "Task", operation: "groupBy", where: { position: { gt: 0 } } },
      { model: "User", operation: "findMany", where: { tasks: { some: { done: true } } } },
      { model: "Task", operation: "relationFilter" },
    ]);
  });

  it("records the relation read of the fluent API", async () => {
    const projects = await db.user.findUnique({ where: { id: "alice" } }).projects();
    expect(projects?.map((p) => p.id)).toEqual(["p1"]);
    expect(recorder.readSet().reads.map((r) => r.model)).toEqual(["User", "Project"]);
  });

  it("records reads inside an interactive $transaction, and not its writes", async () => {
    const count = await db.$transaction(async (tx) => {
      const n = await tx.task.count({ where: { assigneeId: "alice" } });
      await tx.task.update({ where: { id: "t3" }, data: { title: "third" } });
      await tx.user.upsert({ where: { id: "carol" }, create: { id: "carol", email: "carol@x", name: "Carol" }, update: {} });
      await tx.user.delete({ where: { id: "carol" } });
      await tx.project.findFirst({ where: { name: "Two" }, select: { owner: { select: { name: true } } } });
      return n;
    });
    expect(count).toBe(1);
    expect(recorder.readSet()).toEqual({
      allTables: false,
      reads: [
        { model: "Task", operation: "count", where: { assigneeId: "alice" } },
        { model: "Project", operation: "findFirst", where: { name: "Two" } },
        { model: "User", operation: "include" },
      ],
    });
  });

  it("records reads of a batch $transaction", async () => {
    const [tasks, n] = await db.$transaction([db.task.findMany({ where: { projectId: "p2" } }), db.project.count()]);
    expect(tasks.map((t) => t.id)).toEqual(["t3"]);
    expect(n).toBe(2);
    expect(recorder.readSet().reads).toEqual([
      { model: "Task", operation: "findMany", where: { projectId: "p2" } },
      { model: "Project", operation: "count" },
    ]);
  });

  it("$queryRaw and $queryRawUnsafe mark every table (also inside a transaction)", async () => {
    const rows = await db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM "Task"`;
    expect(rows[0]?.n).toBeGreaterThanOrEqual(3);
    expect(recorder.readSet()).toEqual({ reads: [], allTables: true });

    const unsafe = createReadSetRecorder();
    await trackReads(store.db, unsafe, schema).$queryRawUnsafe(`SELECT 1`);
    expect(unsafe.readSet().allTables).toBe(true);

    const inTx = createReadSetRecorder();
    const tracked = trackReads(store.db, inTx, schema);
    await tracked.$transaction(async (tx) => tx.$queryRaw`SELECT 1`);
    expect(inTx.readSet().allTables).toBe(true);
  });

  it("$executeRaw and model writes record nothing", async () => {
    await db.$executeRaw`UPDATE "Task" SET position = position WHERE id = 't1'`;
    await db.task.updateMany({ where: { projectId: "p9" }, data: { done: true } });
    await db.task.deleteMany({ where: { id: "nope" } });
    expect(recorder.readSet()).toEqual({ reads: [], allTables: false });
  });

  it("the untracked client and other recorders see nothing", async () => {
    const other = createReadSetRecorder();
    const otherDb = trackReads(store.db, other, schema);
    await store.db.task.findMany();
    await db.task.findMany({ where: { id: "t1" } });
    await otherDb.user.findMany();
    expect(recorder.readSet().reads).toEqual([{ model: "Task", operation: "findMany", where: { id: "t1" } }]);
    expect(other.readSet().reads).toEqual([{ model: "User", operation: "findMany" }]);
  });

  describe("affects, on the changes the feed delivers for real writes", () => {
    async function track(run: (db: PrismaClient) => Promise<unknown>): Promise<ReadSet> {
      const r = createReadSetRecorder();
      await run(trackReads(store.db, r, schema));
      return r.readSet();
    }
    /** Runs the writes and returns the changes they produced, in commit order. */
    async function changesOf(write: () => Promise<unknown>): Promise<Change[]> {
      const rec = await recordFeed(feed);
      try {
        await write();
        await rec.subscription.caughtUp();
        return rec.changes();
      } finally {
        rec.subscription.close();
      }
    }

    it("a filtered list: writes inside its filter affect it, writes outside do not", async () => {
      const mine = await track((db) => db.task.findMany({ where: { assigneeId: "alice" }, orderBy: { id: "asc" } }));
      const verdict = async (write: () => Promise<unknown>) => {
        const changes = await changesOf(write);
        expect(changes.length).toBeGreaterThan(0);
        return changes.map((c) => affects(mine, c, schema));
      };
      expect(await verdict(() => store.db.task.create({ data: { id: "b1", projectId: "p2", title: "bob's", assigneeId: "bob" } }))).toEqual([false]);
      expect(await verdict(() => store.db.task.create({ data: { id: "a1", projectId: "p2", title: "alice's", assigneeId: "alice" } }))).toEqual([true]);
      expect(await verdict(() => store.db.task.update({ where: { id: "b1" }, data: { assigneeId: "alice" } }))).toEqual([true]); // moves in
      expect(await verdict(() => store.db.task.update({ where: { id: "b1" }, data: { assigneeId: null } }))).toEqual([true]); // moves out
      expect(await verdict(() => store.sql.query(`UPDATE "Task" SET title = 'still not hers' WHERE id = 'b1'`))).toEqual([false]);
      expect(await verdict(() => store.db.task.delete({ where: { id: "a1" } }))).toEqual([true]);
      expect(await verdict(() => store.db.task.delete({ where: { id: "b1" } }))).toEqual([false]);
      expect(await verdict(() => store.db.project.update({ where: { id: "p2" }, data: { name: "Two" } }))).toEqual([false]);
    });

    it("changes carry timestamps as zone-less ISO strings that compare with Date filters", async () => {
      const recent = await track((db) => db.task.findMany({ where: { createdAt: { gte: new Date("2030-01-01T00:00:00.500Z") } } }));
      const [early] = await changesOf(() => store.db.task.create({ data: { id: "d1", projectId: "p1", title: "d", createdAt: new Date("2030-01-01T00:00:00.499Z") } }));
      const [late] = await changesOf(() => store.db.task.create({ data: { id: "d2", projectId: "p1", title: "d", createdAt: new Date("2030-01-01T00:00:00.500Z") } }));
      expect(early?.new?.createdAt).toBe("2030-01-01T00:00:00.499");
      expect(late?.new?.createdAt).toBe("2030-01-01T00:00:00.5");
      expect(affects(recent, early!, schema)).toBe(false);
      expect(affects(recent, late!, schema)).toBe(true);
      await store.db.task.deleteMany({ where: { id: { in: ["d1", "d2"] } } });
    });

    it("an oversized column is omitted: filters on it affect, filters on other columns still decide", async () => {
      const byTitle = await track((db) => db.task.findMany({ where: { title: { contains: "needle" } } }));
      const byProject = await track((db) => db.task.findMany({ where: { projectId: "p2" } }));
      const [big] = await changesOf(() => store.db.task.create({ data: { id: "big", projectId: "p1", title: "x".repeat(100_000) } }));
      expect(big?.omitted).toEqual(["title"]);
      expect(big?.new).not.toHaveProperty("title");
      expect(affects(byTitle, big!, schema)).toBe(true);
      expect(affects(byProject, big!, schema)).toBe(false);
      await store.db.task.delete({ where: { id: "big" } });
    });

    it("bytea is omitted; TRUNCATE affects every read of the table, whatever its where", async () => {
      const byTask = await track((db) => db.attachment.findMany({ where: { taskId: "t1" } }));
      const tasksOnly = await track((db) => db.task.findMany({ where: { id: "t1" } }));
      const [inserted] = await changesOf(() => store.db.attachment.create({ data: { id: "at1", taskId: "t2", name: "a.bin", data: Buffer.from([1, 2]) } }));
      expect(inserted?.omitted).toEqual(["data"]);
      expect(affects(byTask, inserted!, schema)).toBe(false);
      const [truncated] = await changesOf(() => store.sql.query(`TRUNCATE "Attachment"`));
      expect(truncated).toMatchObject({ op: "TRUNCATE", table: "Attachment", old: null, new: null });
      expect(affects(byTask, truncated!, schema)).toBe(true);
      expect(affects(tasksOnly, truncated!, schema)).toBe(false);
    });

    it("relation reads: a change to a related row affects the query that filtered or included through it", async () => {
      const filtered = await track((db) => db.task.findMany({ where: { project: { name: "One" } } }));
      const ordered = await track((db) => db.task.findMany({ where: { projectId: "p1" }, orderBy: { assignee: { name: "asc" } } }));
      const counted = await track((db) => db.project.findMany({ select: { id: true, _count: { select: { tasks: { where: { assignee: { name: "Bob" } } } } } } }));
      const [renamed] = await changesOf(() => store.db.project.update({ where: { id: "p2" }, data: { name: "One" } }));
      expect(affects(filtered, renamed!, schema)).toBe(true);
      const [bobRenamed] = await changesOf(() => store.db.user.update({ where: { id: "bob" }, data: { name: "Aaron" } }));
      expect(affects(ordered, bobRenamed!, schema)).toBe(true);
      expect(affects(counted, bobRenamed!, schema)).toBe(true);
      await changesOf(async () => {
        await store.db.project.update({ where: { id: "p2" }, data: { name: "Two" } });
        await store.db.user.update({ where: { id: "bob" }, data: { name: "Bob" } });
      });
    });

    it("a raw query is affected by a change to any table", async () => {
      const raw = await track((db) => db.$queryRaw`SELECT 1`);
      const [change] = await changesOf(() => store.db.project.update({ where: { id: "p2" }, data: { name: "Two" } }));
      expect(affects(raw, change!, schema)).toBe(true);
    });
  });
});
