import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { positionIncludes } from "@tether/protocol";
import { createStore } from "@tether/server";
import { commitsOf, tetherInternals } from "@tether/server/internal";
import { PrismaClient } from "../generated/prisma/client.ts";
import { buildApp, type TestContext } from "./fixtures/app.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { collectLive } from "./support/liveCollector.ts";
import { seedAliceAndBob } from "./support/seed.ts";

type TaskRow = { id: string; title: string; done: boolean; assigneeId: string | null; projectId: string };

const ALICE: TestContext = { user: { id: "alice" } };

describe.each(engines)("live queries on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildApp>;
  let closeStore: () => Promise<void>;
  const stops: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    closeStore = made.close;
    app = buildApp(store);
    await seedAliceAndBob(store, { alice: ["p1", "One"], bob: ["p2", "Two"] });
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await app.tether.close();
    await closeStore();
  });

  async function live<T>(path: string, input: unknown, ctx: TestContext = ALICE, lastEventId?: string | null) {
    const controller = new AbortController();
    const stream = await app.caller(ctx, controller.signal).$live({ path, input, lastEventId });
    const collector = collectLive<T>(stream as AsyncIterable<unknown>, controller);
    stops.push(collector.stop);
    await collector.until(() => collector.state.messages.length > 0);
    return collector;
  }

  const titles = (rows: TaskRow[] | undefined) => (rows ?? []).map((r) => r.title);

  it("keeps a list live through inserts, updates and deletes, by mutation and by raw SQL", async () => {
    const list = await live<TaskRow[]>("tasks.byProject", { projectId: "p1" });
    expect(list.state.data).toEqual([]);
    const a = await app.caller(ALICE).tasks.add({ projectId: "p1", title: "a" });
    await list.until(() => titles(list.state.data).join() === "a");
    await store.sql.query(`INSERT INTO "Task" (id, "projectId", title, "updatedAt") VALUES ('raw1', 'p1', 'raw', now())`);
    await list.until(() => titles(list.state.data).join() === "a,raw" || titles(list.state.data).join() === "raw,a");
    await app.caller(ALICE).tasks.setDone({ id: a.id, done: true });
    await list.until(() => list.state.data?.find((t) => t.id === a.id)?.done === true);
    await store.sql.query(`DELETE FROM "Task" WHERE id = 'raw1'`);
    await list.until(() => titles(list.state.data).join() === "a");
    expect(list.state.messages.some((m) => m.kind === "patch")).toBe(true);
    const fresh = await app.caller(ALICE).tasks.byProject({ projectId: "p1" });
    expect(JSON.parse(JSON.stringify(list.state.data))).toEqual(JSON.parse(JSON.stringify(fresh)));
  });

  it("settled(): resolves once every live query a committed write affected has re-run, also under a stream of writes", async () => {
    const list = await live<TaskRow[]>("tasks.byProject", { projectId: "p1" });
    const open = await live<number>("tasks.openCount", { projectId: "p1" });
    const insert = (id: string) =>
      store.sql.query(`INSERT INTO "Task" (id, "projectId", title, "updatedAt") VALUES ('${id}', 'p1', '${id}', now())`);
    // The stream's async iteration takes microtasks, no I/O: one macrotask turn drains them.
    const drained = () => new Promise((resolve) => setImmediate(resolve));
    for (let i = 1; i <= 3; i++) {
      await insert(`s${i}`);
      await app.tether.settled();
      await drained();
      expect(list.state.data?.length).toBe(i);
      expect(open.state.data).toBe(i);
    }
    // Writes keep coming, each once the list showed the one before (so the feed keeps up): the
    // groups are re-run again and again, yet the wait ends once they have results that include its
    // point (later writes are not waited for).
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        await insert(`w${n}`);
        await list.until(() => titles(list.state.data).includes(`w${n}`), 60_000);
      }
    })();
    await insert("before-wait");
    await app.tether.settled();
    await drained();
    expect(titles(list.state.data)).toContain("before-wait");
    writing = false;
    await writer;
    const gaveUp = new AbortController();
    gaveUp.abort(new Error("gave up"));
    await expect(app.tether.settled(gaveUp.signal)).rejects.toThrow("gave up");
  });

  it("does not re-run a filtered query for a change to rows outside its filter", async () => {
    const mine = await live<TaskRow[]>("tasks.byAssignee", { assigneeId: "alice" });
    // A re-run, or an incremental update where the result is maintained (PGlite's "C" collation orders the ids).
    const updates = () => app.tether.stats.live().executions + app.tether.stats.live().incrementalUpdates;
    const before = updates();
    for (let i = 0; i < 5; i++) await app.caller(ALICE).tasks.add({ projectId: "p2", title: `bob${i}`, assigneeId: "bob" });
    await app.caller(ALICE).tasks.add({ projectId: "p1", title: "for alice", assigneeId: "alice" });
    await mine.until(() => titles(mine.state.data).join() === "for alice");
    // Exactly one update: the alice write. The five bob writes never touched the query.
    expect(updates() - before).toBe(1);
  });

  it("sees a row move into and out of its filter", async () => {
    const mine = await live<TaskRow[]>("tasks.byAssignee", { assigneeId: "alice" });
    const task = await app.caller(ALICE).tasks.add({ projectId: "p1", title: "moving", assigneeId: "bob" });
    await store.db.task.update({ where: { id: task.id }, data: { assigneeId: "alice" } });
    await mine.until(() => titles(mine.state.data).join() === "moving");
    await store.db.task.update({ where: { id: task.id }, data: { assigneeId: "bob" } });
    await mine.until(() => mine.state.data?.length === 0);
  });

  it("runs a query once per change for 1,000 subscribers of it", async () => {
    const subscribers = await Promise.all(Array.from({ length: 1000 }, () => live<number>("tasks.openCount", { projectId: "p1" })));
    expect(app.tether.stats.live()).toMatchObject({ groups: 1, subscriptions: 1000 });
    const before = app.tether.stats.live().executions;
    await app.caller(ALICE).tasks.add({ projectId: "p1", title: "one" });
    await Promise.all(subscribers.map((s) => s.until(() => s.state.data === 1, 10_000)));
    await app.caller(ALICE).tasks.add({ projectId: "p1", title: "two" });
    await Promise.all(subscribers.map((s) => s.until(() => s.state.data === 2, 10_000)));
    expect(app.tether.stats.live().executions - before).toBe(2);
  }, 60_000);

  it("pushes nothing for a rolled-back mutation", async () => {
    const list = await live<TaskRow[]>("tasks.byProject", { projectId: "p1" });
    await expect(app.caller(ALICE).tasks.addThenFail({ projectId: "p1" })).rejects.toThrow("boom after write");
    expect(await store.db.task.count()).toBe(0);
    await app.caller(ALICE).tasks.add({ projectId: "p1", title: "real" });
    await list.until(() => titles(list.state.data).join() === "real");
    expect(list.state.messages.map((m) => m.version)).toEqual([1, 2]);
    expect(list.state.messages.every((m) => m.kind !== "full" || !JSON.stringify(m.data).includes("never"))).toBe(true);
  });

  it("keeps nested includes live and scopes by user", async () => {
    const aliceView = await live<Array<{ id: string; tasks: TaskRow[] }>>("projects.mine", undefined, ALICE);
    const bobView = await live<Array<{ id: string; tasks: TaskRow[] }>>("projects.mine", undefined, { user: { id: "bob" } });
    expect(aliceView.state.data?.map((p) => p.id)).toEqual(["p1"]);
    expect(bobView.state.data?.map((p) => p.id)).toEqual(["p2"]);
    expect(app.tether.stats.live().groups).toBe(2);
    await app.caller(ALICE).tasks.add({ projectId: "p1", title: "nested" });
    await aliceView.until(() => aliceView.state.data?.[0]?.tasks.length === 1);
    expect(bobView.state.data?.[0]?.tasks).toEqual([]);
  });

  it("resumes from lastEventId without resending unchanged data, and resends after a change", async () => {
    await app.caller(ALICE).tasks.add({ projectId: "p1", title: "kept" });
    const first = await live<TaskRow[]>("tasks.byProject", { projectId: "p1" });
    const lastId = first.lastId();
    await first.stop();
    const resumed = await live<TaskRow[]>("tasks.byProject", { projectId: "p1" }, ALICE, lastId);
    expect(resumed.state.messages[0]?.kind).toBe("resumed");
    const resumeId = resumed.lastId();
    await resumed.stop();
    await app.caller(ALICE).tasks.add({ projectId: "p1", title: "while away" });
    const changed = await live<TaskRow[]>("tasks.byProject", { projectId: "p1" }, ALICE, resumeId);
    expect(changed.state.messages[0]?.kind).toBe("full");
    expect(titles(changed.state.data).sort()).toEqual(["kept", "while away"]);
  });

  it("reports a mutation's commit only when it committed writes: none for a read-only one, an error for one that swallowed a failed statement", async () => {
    const ctx: TestContext = { user: { id: "alice" } };
    await app.caller(ctx).tasks.readOnly({ projectId: "p1" });
    expect(commitsOf(ctx)).toEqual([]);
    await expect(app.caller(ctx).tasks.addThenSwallow({ projectId: "p1" })).rejects.toThrow();
    expect(commitsOf(ctx)).toEqual([]);
    expect(await store.db.task.count({ where: { title: "swallowed" } })).toBe(0);
    await app.caller(ctx).tasks.add({ projectId: "p1", title: "kept" });
    const [xid] = commitsOf(ctx);
    const [row] = await store.sql.query<{ xmin: string }>(`SELECT xmin::text AS xmin FROM "Task" WHERE title = 'kept'`);
    expect((BigInt(xid!) % 2n ** 32n).toString()).toBe(row!.xmin);
  });

  it("tells a late subscriber of a query a write did not touch that it is current (read-your-writes)", async () => {
    const other = await live<TaskRow[]>("tasks.byProject", { projectId: "p2" });
    const mine = await live<TaskRow[]>("tasks.byProject", { projectId: "p1" });
    const ctx: TestContext = { user: { id: "alice" } };
    await app.caller(ctx).tasks.add({ projectId: "p1", title: "mine" });
    const [xid] = commitsOf(ctx);
    expect(xid).toBeDefined();
    await mine.until(() => titles(mine.state.data).join() === "mine");
    expect(positionIncludes(mine.state.messages.at(-1)!.position, xid!)).toBe(true);
    // p2's group was not re-run, so it sent nothing: its last position predates the write.
    expect(other.state.messages).toHaveLength(1);
    expect(positionIncludes(other.state.messages[0]!.position, xid!)).toBe(false);
    // A client asking again (resume id = what it holds) learns its value holds at the write.
    const probe = await live<TaskRow[]>("tasks.byProject", { projectId: "p2" }, ALICE, other.lastId());
    expect(probe.state.messages[0]?.kind).toBe("resumed");
    expect(positionIncludes(probe.state.messages[0]!.position, xid!)).toBe(true);
  });

  it("cleans up groups when their last subscriber leaves", async () => {
    const a = await live("tasks.byProject", { projectId: "p1" });
    const b = await live("tasks.byProject", { projectId: "p1" });
    expect(app.tether.stats.live()).toMatchObject({ groups: 1, subscriptions: 2 });
    await a.stop();
    expect(app.tether.stats.live()).toMatchObject({ groups: 1, subscriptions: 1 });
    await b.stop();
    expect(app.tether.stats.live()).toMatchObject({ groups: 0, subscriptions: 0 });
  });

  it("releases a group when its consumer stops while a read is pending", async () => {
    const stream = tetherInternals(app.tether).reactor.subscribe({ path: "tasks.byProject", input: { projectId: "p1" }, ctx: ALICE, scope: "alice" });
    expect((await stream.next()).value?.message.kind).toBe("full");
    const pending = stream.next(); // a quiet query: nothing will come
    expect(app.tether.stats.live()).toMatchObject({ groups: 1, subscriptions: 1 });
    await stream.return?.();
    expect(app.tether.stats.live()).toMatchObject({ groups: 0, subscriptions: 0 });
    expect(await pending).toMatchObject({ done: true });
  });

  it("rejects unknown paths, non-query paths and bad input with typed errors", async () => {
    const caller = app.caller(ALICE);
    const first = async (path: string, input: unknown) => {
      const stream = (await caller.$live({ path, input })) as AsyncIterable<unknown>;
      for await (const _ of stream) return;
    };
    await expect(first("tasks.nope", {})).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(first("tasks.add", {})).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(first("tasks.byProject", { projectId: 42 })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(caller.tasks.add({ projectId: "p1", title: "" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    expect(app.tether.stats.live().groups).toBe(0);
  });

  it("converges: concurrent writers (Prisma and raw SQL), many subscribers with varied filters", async () => {
    const assignees = ["alice", "bob", null];
    const views = [
      ...(await Promise.all(["p1", "p2"].map((projectId) => live<TaskRow[]>("tasks.byProject", { projectId })))).map((c, i) => ({ c, path: "tasks.byProject", input: { projectId: ["p1", "p2"][i] } })),
      ...(await Promise.all(["alice", "bob"].map((assigneeId) => live<TaskRow[]>("tasks.byAssignee", { assigneeId })))).map((c, i) => ({ c, path: "tasks.byAssignee", input: { assigneeId: ["alice", "bob"][i] } })),
      ...(await Promise.all(["p1", "p2"].map((projectId) => live<number>("tasks.openCount", { projectId })))).map((c, i) => ({ c, path: "tasks.openCount", input: { projectId: ["p1", "p2"][i] } })),
    ];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const ids: string[] = [];
    const writer = async (w: number) => {
      for (let i = 0; i < 25; i++) {
        const op = rand(4);
        const project = rand(2) ? "p1" : "p2";
        const assignee = assignees[rand(3)] ?? null;
        if (op === 0 || ids.length === 0) {
          const id = `w${w}-${i}`;
          ids.push(id);
          if (rand(2)) await store.db.task.create({ data: { id, projectId: project, title: id, assigneeId: assignee } });
          else await store.sql.query(`INSERT INTO "Task" (id, "projectId", title, "assigneeId", "updatedAt") VALUES ($1, $2, $1, $3, now())`, [id, project, assignee]);
        } else if (op === 1) {
          await store.sql.query(`UPDATE "Task" SET done = NOT done WHERE id = $1`, [ids[rand(ids.length)]]);
        } else if (op === 2) {
          await store.db.task.updateMany({ where: { id: ids[rand(ids.length)] }, data: { assigneeId: assignee, projectId: project } });
        } else {
          await store.db.task.deleteMany({ where: { id: ids[rand(ids.length)] } });
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    const caller = app.caller(ALICE) as unknown as Record<string, Record<string, (input: unknown) => Promise<unknown>>>;
    for (const view of views) {
      const [ns, name] = view.path.split(".") as [string, string];
      const expected = JSON.stringify(await caller[ns]![name]!(view.input));
      await view.c.until(() => JSON.stringify(view.c.state.data) === expected, 10_000);
    }
  }, 60_000);

  if (engine === "postgres") {
    it("a mutation on node A reaches a subscriber on node B", async () => {
      const nodeB = await createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: store.location.replace("***", "") });
      const appB = buildApp(nodeB);
      try {
        const controller = new AbortController();
        const stream = await appB.caller(ALICE, controller.signal).$live({ path: "tasks.byProject", input: { projectId: "p1" } });
        const onB = collectLive<TaskRow[]>(stream as AsyncIterable<unknown>, controller);
        stops.push(onB.stop);
        await onB.until(() => onB.state.messages.length === 1);
        await app.caller(ALICE).tasks.add({ projectId: "p1", title: "from A" });
        await onB.until(() => titles(onB.state.data).join() === "from A");
      } finally {
        for (const stop of stops.splice(0)) await stop();
        await appB.tether.close();
        await nodeB.close();
      }
    });
  }
});
