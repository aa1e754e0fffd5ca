// Presence across nodes: two (or three) Tether nodes, each its own store, tether and server, on
// one Postgres database; clients join over WebSocket and set over HTTP on their own node, the
// nodes relay through NOTIFY (tether_presence). Postgres only: PGlite is one process, one node.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createStore, migrate, type PresenceOptions } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { PrismaClient } from "../generated/prisma/client.ts";
import { createTestDatabase, createTestStore, engines, type AppStore, type TestDatabase } from "./support/databases.ts";
import { buildPresenceApp as buildApp, joinRoom, type PresenceCtx as Ctx, type PresenceRouter, type RoomView } from "./support/presenceApp.ts";
import { connectAs, userFromRequest } from "./support/userClient.ts";
import { waitFor } from "./support/waitFor.ts";

interface Node {
  store: AppStore;
  tether: ReturnType<typeof buildApp>["tether"];
  server: TetherServer;
  /** Ends the node gracefully (leaves and a `bye` relayed). */
  close(): Promise<void>;
  /** Ends the node as a crash would: its database connections go first, so nothing it says on the way down reaches the others. */
  crash(): Promise<void>;
}


const hasPostgres = engines.includes("postgres");
if (!hasPostgres) {
  console.warn("presenceMultiNode: skipped — multi-node presence needs Postgres (none reachable at TETHER_TEST_POSTGRES_URL / 127.0.0.1:5432)");
}

describe.skipIf(!hasPostgres)("presence across nodes (Postgres NOTIFY relay)", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase("postgres");
    const store = await openStore();
    await migrate({ sql: store.sql, migrationsDir: "prisma/migrations" });
    await store.close();
  });
  afterAll(() => database?.drop());

  const nodes: Node[] = [];
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    for (const node of nodes.splice(0)) await node.close();
  });

  function openStore(reconnect = { initialDelayMs: 20, maxDelayMs: 500 }): Promise<AppStore> {
    return createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: database.url, reconnect });
  }

  async function startNode(presence: PresenceOptions<Ctx> = {}, reconnect?: { initialDelayMs: number; maxDelayMs: number }): Promise<Node> {
    const store = await openStore(reconnect);
    const { tether, router } = buildApp(store, presence);
    const server = await createTetherServer({
      router,
      createContext: userFromRequest,
      port: 0,
      closeGraceMs: 100,
    });
    let closed = false;
    const node: Node = {
      store,
      tether,
      server,
      async close() {
        if (closed) return;
        closed = true;
        await server.close();
        await tether.close();
        await store.close();
      },
      async crash() {
        if (closed) return;
        closed = true;
        await store.close(); // listener and pool gone: the leaves and the bye below are lost
        await server.close();
        await tether.close();
      },
    };
    nodes.push(node);
    return node;
  }

  /** A browser on `node`: joins over WebSocket, sets over HTTP, as `user`. */
  const connect = (node: Node, user: string) => connectAs<PresenceRouter>(node.server, user, cleanups);
  type Client = ReturnType<typeof connect>["trpc"];

  const join = (trpc: Client, room: string, clientId: string) => joinRoom(trpc, room, clientId, cleanups);

  const joined = (view: RoomView) => waitFor("the first (full) message", () => view.fulls > 0, { fatal: () => view.errors[0] });
  const sees = (view: RoomView, clientId: string, state?: unknown) =>
    waitFor(`${clientId}${state === undefined ? "" : ` = ${JSON.stringify(state)}`} to be seen`, () =>
      state === undefined ? clientId in view.states() : JSON.stringify(view.states()[clientId]) === JSON.stringify(state),
      { fatal: () => view.errors[0] },
    );
  const gone = (view: RoomView, clientId: string, timeoutMs?: number) =>
    waitFor(`${clientId} to be gone`, () => !(clientId in view.states()), { timeoutMs, fatal: () => view.errors[0] });

  it("clients on different nodes see each other's joins, changes and leaves, and nothing of other rooms", async () => {
    const [n1, n2] = [await startNode(), await startNode()];
    expect(n1.tether.presence.nodeId).not.toBe(n2.tether.presence.nodeId);
    const alice = connect(n1, "alice");
    const bob = connect(n2, "bob");
    const a = join(alice.trpc, "doc:1", "tab-a");
    const b = join(bob.trpc, "doc:1", "tab-b");
    const other = join(connect(n2, "olga").trpc, "doc:2", "tab-o");
    await Promise.all([joined(a), joined(b), joined(other)]);

    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice", cursor: 1 } });
    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob", cursor: null } });
    await sees(b, "tab-a", { name: "Alice", cursor: 1 });
    await sees(a, "tab-b", { name: "Bob", cursor: null });
    // A change moves across too, in order (the last of several quick sets wins everywhere).
    for (let cursor = 2; cursor <= 6; cursor++) {
      await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice", cursor } });
    }
    await sees(b, "tab-a", { name: "Alice", cursor: 6 });
    expect(n2.tether.presence.peek("doc:1")).toEqual({ "tab-a": { name: "Alice", cursor: 6 }, "tab-b": { name: "Bob", cursor: null } });

    // A set is accepted only on the node holding that join: Alice's key cannot be written on node 2.
    await expect(connect(n2, "alice").trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Eve" } })).rejects.toThrow(
      /join this room/,
    );

    // Alice closes her WebSocket: her leave reaches node 2 at once (no timeout involved).
    await alice.closeSocket();
    await gone(b, "tab-a", 2_000);
    expect(Object.keys(n2.tether.presence.peek("doc:1"))).toEqual(["tab-b"]);
    // The other room never saw any of it, on either node.
    expect(other.states()).toEqual({});
    expect(n1.tether.presence.peek("doc:2")).toEqual({});
    expect(Object.keys(n2.tether.presence.peek("doc:2"))).toEqual([]);
  });

  it("a node opening a room late gets the states the other nodes hold there", async () => {
    const [n1, n2] = [await startNode(), await startNode()];
    const alice = connect(n1, "alice");
    const a = join(alice.trpc, "doc:1", "tab-a");
    await joined(a);
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
    // A big state (over NOTIFY's 8000-byte payload) goes through the spill table.
    const big = { name: "Dora", notes: "é".repeat(4_000) }; // 8 KB of UTF-8, under the 8 KiB state limit
    const dora = connect(n1, "dora");
    const d = join(dora.trpc, "doc:1", "tab-d");
    await joined(d);
    await dora.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-d", state: big });

    // Node 2 has nobody in doc:1 yet; Carol joins there and sees both existing entries.
    expect(n2.tether.presence.stats().rooms).toBe(0);
    const carol = connect(n2, "carol");
    const c = join(carol.trpc, "doc:1", "tab-c");
    await joined(c);
    await sees(c, "tab-a", { name: "Alice" });
    await sees(c, "tab-d", big);
    await carol.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-c", state: { name: "Carol" } });
    await sees(a, "tab-c", { name: "Carol" });
    // A big change after the sync also arrives (spilled), and in order with the small one after it.
    await dora.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-d", state: { ...big, name: "Dora 2" } });
    await dora.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-d", state: { name: "Dora 3" } });
    await sees(c, "tab-d", { name: "Dora 3" }).catch((e) => {
      const short = (x: unknown) => JSON.stringify(x).slice(0, 300);
      console.log("views when it failed: node 2", short(n2.tether.presence.peek("doc:1")), "c", short(c.states()), "n1", short(n1.tether.presence.peek("doc:1")));
      throw e;
    });
    expect(Object.keys(c.states()).sort()).toEqual(["tab-a", "tab-c", "tab-d"]);
    const spilled = await n1.store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "_tether_presence_spill"`);
    expect(spilled[0]!.n).toBeGreaterThanOrEqual(3); // Dora's first state, the sync answer, "Dora 2"
  });

  it("an entry expires on its owner's clock only, and that expiry reaches the other nodes", async () => {
    const timeoutMs = 800;
    const [n1, n2] = [await startNode({ timeoutMs }), await startNode({ timeoutMs })];
    const alice = connect(n1, "alice");
    const bob = connect(n2, "bob");
    const a = join(alice.trpc, "doc:1", "tab-a");
    const b = join(bob.trpc, "doc:1", "tab-b");
    await Promise.all([joined(a), joined(b)]);
    // Bob refreshes (as the client does, every timeout/3); Alice sets once and goes quiet.
    const refresh = setInterval(() => {
      void bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
    }, timeoutMs / 3);
    cleanups.push(() => clearInterval(refresh));
    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
    const setAt = Date.now();
    await sees(b, "tab-a");
    await sees(a, "tab-b");

    await gone(b, "tab-a", 4 * timeoutMs);
    expect(Date.now() - setAt).toBeGreaterThanOrEqual(timeoutMs - 50);
    await gone(a, "tab-a");
    // Bob, refreshed on node 2 only, is kept on node 1 by node 2's heartbeat (not by node 1's clock).
    const stillThere = Date.now();
    await waitFor("two more timeouts", () => Date.now() - stillThere > 2 * timeoutMs);
    expect(Object.keys(a.states())).toEqual(["tab-b"]);
    expect(Object.keys(n1.tether.presence.peek("doc:1"))).toEqual(["tab-b"]);
  });

  it("a crashed node's entries disappear from the other nodes within the timeout; a closed node's at once", async () => {
    const timeoutMs = 900;
    const [n1, n2, n3] = [await startNode({ timeoutMs }), await startNode({ timeoutMs }), await startNode({ timeoutMs })];
    const alice = connect(n1, "alice");
    const bob = connect(n2, "bob");
    const carol = connect(n3, "carol");
    const a = join(alice.trpc, "doc:1", "tab-a");
    const b = join(bob.trpc, "doc:1", "tab-b");
    const c = join(carol.trpc, "doc:1", "tab-c");
    await Promise.all([joined(a), joined(b), joined(c)]);
    // Everyone keeps refreshing, as clients do.
    const refresh = setInterval(() => {
      void alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } }).catch(() => undefined);
      void bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob" } }).catch(() => undefined);
      void carol.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-c", state: { name: "Carol" } }).catch(() => undefined);
    }, timeoutMs / 3);
    cleanups.push(() => clearInterval(refresh));
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
    await carol.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-c", state: { name: "Carol" } });
    await Promise.all([sees(b, "tab-a"), sees(c, "tab-a"), sees(a, "tab-b"), sees(c, "tab-b")]);

    // Node 1 crashes: no leave, no bye. Its entry stays a while (heartbeats stopped), then goes.
    const crashedAt = Date.now();
    await nodes[0]!.crash();
    await gone(b, "tab-a");
    // Dropped once its last heartbeat (every timeout/3) is a timeout old (+ one sweep, timeout/4):
    // not at once, which would mean its leave got out. (Timers never fire early: a lower bound.)
    expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(timeoutMs * 0.6);
    await gone(c, "tab-a");
    expect(Object.keys(b.states()).sort()).toEqual(["tab-b", "tab-c"]);

    // Node 3 closes properly: its leaves (and its bye) remove Carol from node 2 at once.
    const closedAt = Date.now();
    await nodes[2]!.close();
    await gone(b, "tab-c", timeoutMs);
    expect(Date.now() - closedAt).toBeLessThan(timeoutMs / 2);
    expect(Object.keys(n2.tether.presence.peek("doc:1"))).toEqual(["tab-b"]);
  });
});

describe.skipIf(!hasPostgres)("presence across nodes: a dropped listener", () => {
  it("a node whose listener reconnects asks again, and drops what it missed the deletion of", async () => {
    const database = await createTestDatabase("postgres");
    const open = (initialDelayMs: number) =>
      createStore({ prisma: (adapter) => new PrismaClient({ adapter }), url: database.url, reconnect: { initialDelayMs, maxDelayMs: initialDelayMs } });
    const s1 = await open(20);
    // Node 2's listener comes back slowly (150–300 ms): Alice's leave happens while it is down.
    const s2 = await open(300);
    const t1 = buildApp(s1, {}).tether;
    const t2 = buildApp(s2, {}).tether;
    const stop = new AbortController();
    const leaveAlice = new AbortController();
    try {
      const alice = { user: { id: "alice" } };
      const bob = { user: { id: "bob" } };
      const a = t1.presence.join(alice, { room: "doc:1", clientId: "tab-a" }, AbortSignal.any([stop.signal, leaveAlice.signal]));
      const b = t2.presence.join(bob, { room: "doc:1", clientId: "tab-b" }, stop.signal);
      await Promise.all([a.next(), b.next()]);
      const aDone = (async () => {
        for await (const _ of a);
      })();
      const bDone = (async () => {
        for await (const _ of b);
      })();
      t1.presence.set(alice, { room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
      t2.presence.set(bob, { room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
      await waitFor("node 2 to hold alice", () => "tab-a" in t2.presence.peek("doc:1"));

      await s1.sql.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tether-listener' AND datname = current_database()",
      );
      leaveAlice.abort();
      await aDone;
      expect(t1.presence.peek("doc:1")).toEqual({});
      // Node 2 missed the deletion (or not, if its listener was quicker): either way, once it is
      // back it asks doc:1 again, and node 1's answer no longer lists Alice.
      await waitFor("node 2 to drop alice", () => !("tab-a" in t2.presence.peek("doc:1")), { timeoutMs: 3_000 });
      expect(Object.keys(t2.presence.peek("doc:1"))).toEqual(["tab-b"]);
      stop.abort();
      await bDone;
    } finally {
      stop.abort();
      await t1.close();
      await t2.close();
      await s1.close();
      await s2.close();
      await database.drop();
    }
  });
});

describe("presence relay on PGlite", () => {
  it("sends lost while the database is unreachable are repaired once it is back (bye, then every room again)", async () => {
    const { store, close } = await createTestStore("pglite", { migrate: false });
    // Node 1's SQL fails on demand (an unreachable database); node 2's works.
    let down = false;
    let failures = 0;
    const flaky: AppStore = {
      ...store,
      sql: {
        ...store.sql,
        query: ((sql: string, params?: readonly unknown[]) => {
          if (!down) return store.sql.query(sql, params);
          failures += 1;
          return Promise.reject(new Error("database unreachable"));
        }) as AppStore["sql"]["query"],
      },
    };
    const one = buildApp(flaky, { relay: true }).tether;
    const two = buildApp(store, { relay: true }).tether;
    const [alice, bob, carol] = ["alice", "bob", "carol"].map((id) => ({ user: { id } }));
    const stop = new AbortController();
    const aliceLeaves = new AbortController();
    const drain = (join: AsyncGenerator<unknown, void>) =>
      (async () => {
        for await (const _ of join);
      })();
    try {
      const a = one.presence.join(alice!, { room: "doc:1", clientId: "tab-a" }, AbortSignal.any([stop.signal, aliceLeaves.signal]));
      const b = two.presence.join(bob!, { room: "doc:1", clientId: "tab-b" }, stop.signal);
      await Promise.all([a.next(), b.next()]);
      const aDone = drain(a);
      void drain(b);
      one.presence.set(alice!, { room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
      await waitFor("node 2 to hold alice", () => "tab-a" in two.presence.peek("doc:1"));

      // While node 1 cannot reach the database, Alice leaves and Carol joins there: both lost.
      down = true;
      aliceLeaves.abort();
      await aDone;
      const c = one.presence.join(carol!, { room: "doc:1", clientId: "tab-c" }, stop.signal);
      await c.next();
      void drain(c);
      one.presence.set(carol!, { room: "doc:1", clientId: "tab-c", state: { name: "Carol" } });
      await waitFor("node 1's sends to fail", () => failures > 0);
      expect(two.presence.peek("doc:1")).toEqual({ "tab-a": { name: "Alice" } });

      // Back: node 1's next send (Carol's change) succeeds and it re-announces everything.
      down = false;
      one.presence.set(carol!, { room: "doc:1", clientId: "tab-c", state: { name: "Carol", back: true } });
      await waitFor("node 2 to see node 1 as it is", () => JSON.stringify(two.presence.peek("doc:1")) === JSON.stringify({ "tab-c": { name: "Carol", back: true } }));
    } finally {
      stop.abort();
      await Promise.all([one.close(), two.close()]);
      await close();
    }
  });

  it("is off by default (one process), and works in-process when forced on", async () => {
    const { store, close } = await createTestStore("pglite", { migrate: false });
    const single = buildApp(store, {}).tether;
    const one = buildApp(store, { relay: true }).tether;
    const two = buildApp(store, { relay: true }).tether;
    const alice = { user: { id: "alice" } };
    const bob = { user: { id: "bob" } };
    const stop = new AbortController();
    try {
      expect(single.presence.nodeId).toBeNull();
      const a = one.presence.join(alice, { room: "doc:1", clientId: "tab-a" }, stop.signal);
      const b = two.presence.join(bob, { room: "doc:1", clientId: "tab-b" }, stop.signal);
      await Promise.all([a.next(), b.next()]);
      one.presence.set(alice, { room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
      two.presence.set(bob, { room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
      await waitFor("each node to hold both entries", () =>
        [one, two].every((t) => Object.keys(t.presence.peek("doc:1")).sort().join() === "tab-a,tab-b"),
      );
      expect(single.presence.peek("doc:1")).toEqual({});
    } finally {
      stop.abort();
      await Promise.all([single.close(), one.close(), two.close()]);
      await close();
    }
  });
});
