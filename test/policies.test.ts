import { TRPCError } from "@trpc/server";
import { Redis } from "ioredis";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { initTether, postgresRateLimitStore, redisRateLimitStore } from "@tether/server";
import { schema } from "../generated/tether/index.ts";
import { ANONYMOUS, buildSecuredApp, userContext, type SecuredContext } from "./fixtures/securedApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { collectLive } from "./support/liveCollector.ts";
import { seedAliceAndBob } from "./support/seed.ts";

type ProjectRow = { id: string; name: string; ownerId: string; tasks: TaskRow[] };
type TaskRow = { id: string; title: string; projectId: string; project?: { ownerId: string } };

const ALICE = userContext("alice");
const BOB = userContext("bob");

const codeOf = (error: unknown) => (error instanceof TRPCError ? error.code : `not a TRPCError: ${String(error)}`);

async function redisReachable(): Promise<boolean> {
  const client = new Redis({ host: "127.0.0.1", port: 6379, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
const redisUp = await redisReachable();
// Redis runs beside Postgres on every machine of ours and in CI: there its absence is a failure,
// not a reason to test less.
if (!redisUp && (process.env.CI || process.env.TETHER_REQUIRE_POSTGRES)) {
  throw new Error("Redis is required in CI but 127.0.0.1:6379 is unreachable");
}

describe.each(engines)("row-level policies on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildSecuredApp>;
  let closeStore: () => Promise<void>;
  let databaseUrl: string | undefined;
  const stops: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    closeStore = made.close;
    databaseUrl = made.database.url;
    app = buildSecuredApp(store);
    await seedAliceAndBob(store, { alice: ["a1", "Alice's"], bob: ["b1", "Bob's"] });
    await store.db.task.createMany({ data: [
      { id: "ta1", projectId: "a1", title: "alice task" },
      { id: "tb1", projectId: "b1", title: "bob task" },
      { id: "tb2", projectId: "b1", title: "shared title" },
    ] });
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await app.tether.close();
    await closeStore();
  });

  async function live<T>(path: string, input: unknown, ctx: SecuredContext) {
    const controller = new AbortController();
    const stream = await app.caller(ctx, controller.signal).$live({ path, input });
    const collector = collectLive<T>(stream as AsyncIterable<unknown>, controller);
    stops.push(collector.stop);
    await collector.until(() => collector.state.messages.length > 0);
    return collector;
  }

  /** Every id anywhere in a value (rows and nested rows). */
  const idsIn = (value: unknown): string[] => JSON.stringify(value ?? null).match(/"id":"[^"]+"/g)?.map((m) => m.slice(6, -1)) ?? [];
  const bobIds = ["b1", "tb1", "tb2"];

  it("scopes every read — top level, nested include and select, counts, relation filters", async () => {
    const alice = app.caller(ALICE);
    const projects = (await alice.projects.list()) as ProjectRow[];
    expect(projects.map((p) => p.id)).toEqual(["a1"]);
    expect(projects[0]!.tasks.map((t) => t.id)).toEqual(["ta1"]);
    expect((await alice.tasks.all()).map((t) => t.id)).toEqual(["ta1"]);
    expect(await alice.tasks.byProject({ projectId: "b1" })).toEqual([]);
    expect(await alice.tasks.count()).toBe(1);
    expect(await alice.projects.byId({ id: "b1" })).toBeNull();
    expect(await alice.projects.withCounts()).toEqual([{ id: "a1", _count: { tasks: 1 } }]);
    // A relation filter cannot probe Bob's tasks.
    expect(await alice.projects.withTaskTitled({ title: "shared title" })).toEqual([]);
    await store.db.task.create({ data: { id: "ta2", projectId: "a1", title: "shared title" } });
    expect(await alice.projects.withTaskTitled({ title: "shared title" })).toEqual([{ id: "a1" }]);
    // Bob sees his, and only his.
    expect(idsIn(await app.caller(BOB).projects.list()).sort()).toEqual(["b1", "tb1", "tb2"]);
    // Anonymous callers of an unguarded query get what the policy admits them: nothing.
    expect(await app.caller(ANONYMOUS).projects.names()).toEqual([]);
  });

  it("includes a to-one relation only where the caller may read it", async () => {
    // A task of Alice's project whose project Bob then takes: Alice loses the task with it.
    expect((await app.caller(ALICE).tasks.all()).map((t) => [t.id, t.project.id])).toEqual([["ta1", "a1"]]);
    await store.db.project.update({ where: { id: "a1" }, data: { ownerId: "bob" } });
    expect(await app.caller(ALICE).tasks.all()).toEqual([]);
  });

  it("live: user A never receives user B's rows — initial result, B's inserts and updates, nested includes", async () => {
    const aliceList = await live<ProjectRow[]>("projects.list", undefined, ALICE);
    const aliceTasks = await live<TaskRow[]>("tasks.all", undefined, ALICE);
    const bobList = await live<ProjectRow[]>("projects.list", undefined, BOB);
    expect(aliceList.state.data!.map((p) => p.id)).toEqual(["a1"]);
    expect(bobList.state.data!.map((p) => p.id)).toEqual(["b1"]);

    // Bob works on his own project, by mutation and by raw SQL.
    const bob = app.caller(BOB);
    const added = await bob.tasks.add({ projectId: "b1", title: "bob again" });
    await bob.projects.rename({ id: "b1", name: "Bob renamed" });
    await bob.projects.create({ name: "Bob's second" });
    await store.sql.query(`UPDATE "Task" SET title = 'bob raw' WHERE id = 'tb1'`);
    await bobList.until(() => bobList.state.data!.length === 2 && bobList.state.data![0]!.tasks.some((t) => t.id === added.id));
    await bobList.until(() => bobList.state.data![0]!.tasks.some((t) => t.title === "bob raw"));

    // Alice's own write arrives; nothing of Bob's ever did.
    await app.caller(ALICE).tasks.add({ projectId: "a1", title: "alice again" });
    await aliceList.until(() => aliceList.state.data![0]!.tasks.length === 2);
    await aliceTasks.until(() => aliceTasks.state.data!.length === 2);
    for (const message of [...aliceList.state.messages, ...aliceTasks.state.messages]) {
      for (const id of idsIn(message)) expect(bobIds.includes(id) || id === added.id).toBe(false);
      for (const secret of ["bob again", "Bob renamed", "Bob's", "bob raw", "bob task", "shared title"]) {
        expect(JSON.stringify(message)).not.toContain(secret);
      }
    }
    expect(aliceList.state.messages.some((m) => m.kind === "patch")).toBe(true);
  });

  it("live: invalidation stays narrow per user (the ReadSet records the policy-merged where)", async () => {
    const names = await live<Array<{ id: string }>>("projects.names", undefined, ALICE);
    const before = app.tether.stats.live().executions;
    for (let i = 0; i < 5; i++) await app.caller(BOB).projects.create({ name: `bob ${i}` });
    await app.caller(ALICE).projects.create({ name: "alice 2" });
    await names.until(() => names.state.data!.length === 2);
    // One re-run: Alice's insert. Bob's five inserts never matched Alice's merged where.
    expect(app.tether.stats.live().executions - before).toBe(1);
    expect(names.state.messages).toHaveLength(2);
  });

  it("live: rows follow their owner when a project moves between users", async () => {
    const aliceList = await live<ProjectRow[]>("projects.list", undefined, ALICE);
    const aliceTasks = await live<TaskRow[]>("tasks.all", undefined, ALICE);
    const bobList = await live<ProjectRow[]>("projects.list", undefined, BOB);

    // Bob hands his project (and so its tasks) to Alice.
    await app.caller(BOB).projects.transfer({ id: "b1", ownerId: "alice" });
    await aliceList.until(() => aliceList.state.data!.map((p) => p.id).join() === "a1,b1");
    await aliceTasks.until(() => aliceTasks.state.data!.length === 3);
    await bobList.until(() => bobList.state.data!.length === 0);

    // Alice gives it back: it leaves her views, tasks and all.
    await app.caller(ALICE).projects.transfer({ id: "b1", ownerId: "bob" });
    await aliceList.until(() => aliceList.state.data!.map((p) => p.id).join() === "a1");
    await aliceTasks.until(() => aliceTasks.state.data!.map((t) => t.id).join() === "ta1");
    await bobList.until(() => bobList.state.data!.length === 1);

    // A task moved (outside Tether) from Alice's project to Bob's leaves Alice's view.
    await store.sql.query(`UPDATE "Task" SET "projectId" = 'b1' WHERE id = 'ta1'`);
    await aliceTasks.until(() => aliceTasks.state.data!.length === 0);
    await aliceList.until(() => aliceList.state.data![0]!.tasks.length === 0);
    expect(aliceTasks.state.error).toBeUndefined();
  });

  it("refuses forbidden writes with FORBIDDEN and leaves the database unchanged", async () => {
    const snapshot = async () => ({
      projects: await store.db.project.findMany({ orderBy: { id: "asc" } }),
      tasks: await store.db.task.findMany({ orderBy: { id: "asc" } }),
      changes: (await store.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM "_tether_changes"`))[0]!.n,
    });
    const before = await snapshot();
    const alice = app.caller(ALICE);
    // Creating in someone else's project: NOT_FOUND, as for a project that does not exist (no
    // existence oracle, see errorMapping.test.ts); creating for someone else (a user she may read).
    expect(codeOf(await alice.tasks.add({ projectId: "b1", title: "intruder" }).catch((e) => e))).toBe("NOT_FOUND");
    expect(codeOf(await alice.projects.create({ name: "for bob", ownerId: "bob" }).catch((e) => e))).toBe("FORBIDDEN");
    // Rows Alice cannot read cannot be written either: as if they did not exist.
    expect(codeOf(await alice.projects.rename({ id: "b1", name: "mine now" }).catch((e) => e))).toBe("NOT_FOUND");
    expect(codeOf(await alice.projects.remove({ id: "b1" }).catch((e) => e))).toBe("NOT_FOUND");
    expect(await alice.tasks.rename({ id: "tb1", title: "renamed" })).toEqual({ count: 0 });
    // Moving her task into Bob's project: the new row fails the update check (a project she
    // cannot read: NOT_FOUND, like a missing one).
    expect(codeOf(await alice.tasks.move({ id: "ta1", projectId: "b1" }).catch((e) => e))).toBe("NOT_FOUND");
    // The first of two writes was allowed; the second is refused: both are rolled back.
    expect(codeOf(await alice.tasks.addTwo({ first: "a1", second: "b1" }).catch((e) => e))).toBe("NOT_FOUND");
    // A nested write into a policy-checked model is refused, not left unchecked.
    expect(codeOf(await alice.projects.createWithTask({ name: "n", title: "t" }).catch((e) => e))).toBe("FORBIDDEN");
    expect(await snapshot()).toEqual(before);

    // deleteMany deletes what the caller may delete, nothing else.
    expect(await alice.tasks.removeAll()).toEqual({ count: 1 });
    expect((await store.db.task.findMany({ orderBy: { id: "asc" } })).map((t) => t.id)).toEqual(["tb1", "tb2"]);
    // And allowed writes go through.
    await alice.tasks.add({ projectId: "a1", title: "fine" });
    await alice.projects.rename({ id: "a1", name: "renamed" });
    expect((await store.db.project.findUnique({ where: { id: "a1" } }))?.name).toBe("renamed");
  });

  it("guards: authed → UNAUTHORIZED, admin → FORBIDDEN unless the role matches", async () => {
    expect(codeOf(await app.caller(ANONYMOUS).projects.list().catch((e) => e))).toBe("UNAUTHORIZED");
    expect(codeOf(await app.caller(ANONYMOUS).me().catch((e) => e))).toBe("UNAUTHORIZED");
    expect(await app.caller(ALICE).me()).toEqual({ id: "alice", email: "alice@example.com", role: "user" });
    expect(codeOf(await app.caller(ALICE).admin.userCount().catch((e) => e))).toBe("FORBIDDEN");
    expect(codeOf(await app.caller(ANONYMOUS).admin.userCount().catch((e) => e))).toBe("UNAUTHORIZED");
    expect(await app.caller(userContext("root", "admin")).admin.userCount()).toBe(2);
    // A live subscription of a guarded query is refused the same way.
    const refused = await (async () => {
      const stream = await app.caller(ANONYMOUS).$live({ path: "projects.list", input: undefined });
      for await (const _ of stream as AsyncIterable<unknown>) break;
    })().catch((e: unknown) => e);
    expect(codeOf(refused)).toBe("UNAUTHORIZED");
  });

  it("refuses raw SQL through ctx.db, and a policy whose where holds undefined", async () => {
    expect(codeOf(await app.caller(ALICE).system.raw().catch((e) => e))).toBe("FORBIDDEN");
    const careless = initTether<SecuredContext>().create({
      store,
      schema,
      policies: { project: { read: (ctx) => ({ ownerId: ctx.user?.id }) } },
    });
    const router = careless.appRouter({ all: careless.query.query(({ ctx }) => ctx.db.project.findMany()) });
    const error = await careless.createCallerFactory(router)(ANONYMOUS).all().catch((e: unknown) => e);
    expect(codeOf(error)).toBe("INTERNAL_SERVER_ERROR");
    expect((error as Error).message).toMatch(/undefined at "ownerId"/);
    expect(await careless.createCallerFactory(router)(ALICE).all()).toHaveLength(1);
    await careless.close();
  });

  it("rate-limits a procedure per user with TOO_MANY_REQUESTS (memory store)", async () => {
    const alice = app.caller(ALICE);
    for (let i = 0; i < 3; i++) await alice.tasks.add({ projectId: "a1", title: `t${i}` });
    const error = await alice.tasks.add({ projectId: "a1", title: "one too many" }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe("TOO_MANY_REQUESTS");
    // Per user: Bob still has his own budget; other procedures are not limited.
    await app.caller(BOB).tasks.add({ projectId: "b1", title: "bob's first" });
    await alice.projects.rename({ id: "a1", name: "still fine" });
    expect(await store.db.task.count({ where: { projectId: "a1" } })).toBe(4);
  });

  it.runIf(redisUp)("rate-limits through a shared Redis store", async () => {
    const redis = new Redis({ host: "127.0.0.1", port: 6379, maxRetriesPerRequest: 1 });
    const prefix = `tether_test_${process.pid}_${Date.now()}`;
    const store1 = redisRateLimitStore(redis);
    const shared = (config: Parameters<typeof store1>[0]) => store1({ ...config, keyPrefix: `${prefix}_${config.keyPrefix}` });
    // Two app instances (two nodes) share the same counters.
    const nodeA = buildSecuredApp(store, { rateStore: shared });
    const nodeB = buildSecuredApp(store, { rateStore: shared });
    try {
      await nodeA.caller(ALICE).tasks.add({ projectId: "a1", title: "1" });
      await nodeB.caller(ALICE).tasks.add({ projectId: "a1", title: "2" });
      await nodeA.caller(ALICE).tasks.add({ projectId: "a1", title: "3" });
      expect(codeOf(await nodeB.caller(ALICE).tasks.add({ projectId: "a1", title: "4" }).catch((e) => e))).toBe("TOO_MANY_REQUESTS");
    } finally {
      await nodeA.tether.close();
      await nodeB.tether.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  // The Postgres-backed store needs a server; on PGlite there is nothing to share it with.
  if (engine === "postgres") it("rate-limits through a shared Postgres store", async () => {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    const nodeA = buildSecuredApp(store, { rateStore: postgresRateLimitStore(pool) });
    const nodeB = buildSecuredApp(store, { rateStore: postgresRateLimitStore(pool) });
    try {
      await nodeA.caller(ALICE).tasks.add({ projectId: "a1", title: "1" });
      await nodeB.caller(ALICE).tasks.add({ projectId: "a1", title: "2" });
      await nodeA.caller(ALICE).tasks.add({ projectId: "a1", title: "3" });
      expect(codeOf(await nodeB.caller(ALICE).tasks.add({ projectId: "a1", title: "4" }).catch((e) => e))).toBe("TOO_MANY_REQUESTS");
      // Counters live outside the app's schema: change capture never sees them.
      const [row] = await store.sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM "_tether_changes" WHERE tbl LIKE 'tether_rl%'`);
      expect(row!.n).toBe("0");
    } finally {
      await nodeA.tether.close();
      await nodeB.tether.close();
      await pool.end();
    }
  });

  it("limits live subscriptions per connection with TOO_MANY_REQUESTS", async () => {
    const connection: SecuredContext = { ...ALICE }; // one context object = one connection
    const open = [];
    for (let i = 0; i < 5; i++) open.push(await live<unknown>("tasks.count", undefined, connection));
    const controller = new AbortController();
    const refused = await (async () => {
      const stream = await app.caller(connection, controller.signal).$live({ path: "tasks.count", input: undefined });
      for await (const _ of stream as AsyncIterable<unknown>) break;
    })().catch((e: unknown) => e);
    expect(codeOf(refused)).toBe("TOO_MANY_REQUESTS");
    // Another connection of the same user is not affected; closing one frees a slot.
    await live<unknown>("tasks.count", undefined, { ...ALICE });
    await open[0]!.stop();
    await live<unknown>("tasks.count", undefined, connection);
  });
});
