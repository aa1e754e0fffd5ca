// Live queries whose executions time out, against real databases, a real server and real sockets:
// a re-run blocked by a lock another connection holds, and a reconnect storm that queues first
// runs past the query timeout. (The state machine's timing is unit-tested on fake timers in
// packages/server/src/reactor/reactor.test.ts.)
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import pg from "pg";
import { applyListPatch, type LiveMessage } from "@tether/protocol";
import type { ReactorConfig } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { buildApp, type TestRouter } from "./fixtures/app.ts";
import { createTestStore, engines, type AppStore, type TestDatabase } from "./support/databases.ts";
import { seedAliceAndBob } from "./support/seed.ts";
import { connectAs, userFromRequest } from "./support/userClient.ts";
import { waitFor } from "./support/waitFor.ts";
import { tetherInternals } from "@tether/server/internal";

type WireProject = { id: string; tasks: { id: string; title: string; done: boolean }[] };

describe.each(engines)("live query timeouts on %s", (engine) => {
  let store: AppStore;
  let database: TestDatabase;
  let closeStore: () => Promise<void>;
  let app: ReturnType<typeof buildApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  beforeEach(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    database = made.database;
    closeStore = made.close;
    await seedAliceAndBob(store, { alice: ["p1", "One"], bob: ["p2", "Two"] });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app?.tether.close();
    await closeStore();
  });

  async function serve(config: Partial<ReactorConfig>) {
    app = buildApp(store, config);
    server = await createTetherServer({ router: app.router, createContext: userFromRequest, port: 0 });
    return connectAs<TestRouter>(server, "alice", cleanups);
  }

  /** Statements of this test's database waiting for a lock (Postgres). */
  async function lockWaiters(admin: pg.Client): Promise<string[]> {
    const { rows } = await admin.query<{ query: string }>(
      `SELECT query FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
    );
    return rows.map((r) => r.query);
  }

  it("a re-run blocked past the timeout while a relevant write commits is cancelled, retried, and converges", async () => {
    await store.db.task.create({ data: { id: "t1", projectId: "p1", title: "first" } });
    const { trpc } = await serve({ queryTimeoutMs: 300, retryBackoffBaseMs: 1_000, retryBackoffMaxMs: 2_000 });
    let data: WireProject[] | undefined;
    const errors: unknown[] = [];
    const sub = trpc.$live.subscribe(
      { path: "projects.mine" },
      {
        onData: (event) => {
          const message = (event as { data: LiveMessage }).data;
          if (message.kind === "full") data = message.data as WireProject[];
          if (message.kind === "patch") data = applyListPatch(data as unknown as Record<string, unknown>[], message.patch) as unknown as WireProject[];
        },
        onError: (error) => errors.push(error),
      },
    );
    cleanups.push(() => sub.unsubscribe());
    const fatal = () => errors[0];
    await waitFor("the first value", () => data?.[0]?.tasks[0]?.title === "first", { fatal });
    const stats = () => app.tether.stats.live();

    let release: () => Promise<void>;
    if (engine === "postgres") {
      // Another connection holds a lock every read of Project waits for; Task rows stay writable.
      const holder = new pg.Client({ connectionString: database.url });
      await holder.connect();
      await holder.query(`BEGIN; LOCK TABLE "Project" IN ACCESS EXCLUSIVE MODE`);
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      cleanups.push(() => admin.end(), () => holder.end());
      await store.db.task.update({ where: { id: "t1" }, data: { title: "renamed" } }); // triggers the re-run
      await waitFor("the re-run to block on the lock", async () => (await lockWaiters(admin)).length === 1, { fatal });
      await store.db.task.update({ where: { id: "t1" }, data: { title: "renamed again" } }); // commits meanwhile
      await waitFor("the re-run to time out", () => stats().timeouts >= 1, { fatal });
      // The abandoned statement is cancelled, not left waiting: nothing of ours waits for the
      // lock while the group backs off.
      await waitFor("the abandoned statement to be cancelled", async () => (await lockWaiters(admin)).length === 0, { fatal });
      expect(stats().cancelled).toBeGreaterThanOrEqual(1);
      release = async () => void (await holder.query("ROLLBACK"));
    } else {
      // PGlite is one connection: a long transaction on it blocks every other statement. The
      // write that commits "meanwhile" is made inside it and commits when it ends.
      let unblock!: () => void;
      const blocked = new Promise<void>((resolve) => (unblock = resolve));
      let inside!: () => void;
      const entered = new Promise<void>((resolve) => (inside = resolve));
      const holder = store.sql.transaction(async (tx) => {
        inside();
        await blocked;
        await tx.query(`UPDATE "Task" SET title = 'renamed again' WHERE id = 't1'`);
      });
      await entered;
      cleanups.push(() => {
        unblock();
        return holder.catch(() => undefined);
      });
      // A change the feed already holds is not enough here: the feed's own read waits too. The
      // reactor is told directly, as its periodic sweep would.
      tetherInternals(app.tether).reactor.invalidateAll();
      await waitFor("the re-run to time out", () => stats().timeouts >= 1, { fatal });
      expect(stats().groupsByState.backoff + stats().groupsByState.dirty + stats().groupsByState.running).toBe(1);
      release = async () => {
        unblock();
        await holder;
      };
    }
    // While blocked, no tight loop: every run after the first timeout waited for its backoff.
    expect(stats().timeouts).toBeLessThanOrEqual(stats().retries + 1);
    await release();
    await waitFor("the subscriber to converge", () => data?.[0]?.tasks[0]?.title === "renamed again", { fatal, timeoutMs: 20_000 });
    const fresh = await trpc.projects.mine.query();
    expect(JSON.parse(JSON.stringify(data))).toEqual(JSON.parse(JSON.stringify(fresh)));
    expect(errors).toEqual([]);
    // Still live afterwards.
    await trpc.tasks.setDone.mutate({ id: "t1", done: true });
    await waitFor("the next write to arrive", () => data?.[0]?.tasks.length === 0, { fatal });
    expect(stats()).toMatchObject({ abandonedInFlight: 0, groupsByState: { idle: 1 } });
  });

  it("a reconnect storm (600 subscriptions, 60 distinct) queued past the timeout: every first value, no error", async () => {
    await store.db.project.createMany({ data: Array.from({ length: 60 }, (_, i) => ({ id: `s${i}`, name: `S${i}`, ownerId: "alice" })) });
    await store.db.task.createMany({ data: Array.from({ length: 600 }, (_, i) => ({ projectId: `s${i % 60}`, title: `task ${i}` })) });
    // More executions at once than the database serves, each queued longer than the timeout: on a
    // node that counted the wait, first runs would time out. PGlite serves one statement at a
    // time through Tether's gate, so 60 first runs queue behind each other past a 20 ms timeout.
    // On Postgres the pool's 10 connections are held by other work until the 32 executions in
    // flight have waited three timeouts; the timeout itself stays well above one execution on a
    // loaded machine (32 concurrent executions share the one JS thread, and on a 20 ms timeout
    // they time each other out, each timeout costing a cancel and a discarded connection).
    const queryTimeoutMs = engine === "postgres" ? 500 : 20;
    const { trpc } = await serve({ maxConcurrentExecutions: 32, queryTimeoutMs, retryBackoffBaseMs: 20, retryBackoffMaxMs: 200 });
    // One subscription served first: the node's change feed is running before the pool is held.
    let warm = false;
    const warmSub = trpc.$live.subscribe({ path: "projects.mine" }, { onData: () => (warm = true) });
    cleanups.push(() => warmSub.unsubscribe());
    await waitFor("the first subscription's value", () => warm);
    let releasePool = () => {};
    if (engine === "postgres") {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let held = 0;
      const holders = Array.from({ length: 10 }, () =>
        store.sql.transaction(async () => {
          held += 1;
          await released;
        }),
      );
      releasePool = release;
      cleanups.push(() => {
        release();
        return Promise.all(holders);
      });
      await waitFor("the pool's connections to be held", () => held === 10);
    }
    let firsts = 0;
    const errors: unknown[] = [];
    const subs = Array.from({ length: 600 }, (_, i) => {
      let first = true;
      return trpc.$live.subscribe(
        { path: "tasks.byProject", input: { projectId: `s${i % 60}` } },
        {
          onData: () => {
            if (first) firsts += 1;
            first = false;
          },
          onError: (error) => errors.push(error),
        },
      );
    });
    cleanups.push(() => subs.forEach((s) => s.unsubscribe()));
    const stats = () => app.tether.stats.live();
    if (engine === "postgres") {
      await waitFor("every slot's execution to wait for a connection", () => stats().executionsInFlight === 32 && stats().groups === 61, {
        fatal: () => errors[0],
      });
      const queuedAt = performance.now();
      // The premise of this test is a duration: the queue outlasts the timeout.
      await waitFor("the queue to outlast the timeout three times", () => performance.now() - queuedAt > 3 * queryTimeoutMs);
      expect(stats().timeouts).toBe(0);
      releasePool();
    }
    await waitFor("every first value", () => firsts === 600, { fatal: () => errors[0], timeoutMs: 60_000 });
    expect(errors).toEqual([]);
    expect(stats()).toMatchObject({ groups: 61, subscriptions: 601 });
  });
});
