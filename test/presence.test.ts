// Presence ($presence.join / $presence.set) over the real transports: tRPC clients against
// createTetherServer, joins over WebSocket (one over SSE), sets batched over HTTP. Each client keeps
// its own Loro EphemeralStore fed by the join stream, the way @tether/client does.
import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
  wsLink,
  type TRPCLink,
} from "@trpc/client";
import { EventSource } from "eventsource";
import { EphemeralStore } from "loro-crdt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createMetrics, createTetherAuth, initTether, type AuthContext, type PresenceOptions } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { schema } from "../generated/tether/index.ts";
import { createTestStore, type AppStore } from "./support/databases.ts";
import { buildPresenceApp as buildApp, joinRoom, type PresenceCtx as Ctx, type PresenceRouter, type RoomView } from "./support/presenceApp.ts";
import { userFromRequest } from "./support/userClient.ts";
import { waitFor } from "./support/waitFor.ts";

const codeOf = (error: unknown) => (error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : undefined);

// One PGlite database for the file (initTether needs a store; presence itself never touches it).
let store: AppStore;
let closeStore: () => Promise<void>;
beforeAll(async () => {
  const made = await createTestStore("pglite");
  store = made.store;
  closeStore = made.close;
});
afterAll(() => closeStore());

describe("presence over WebSocket / HTTP", () => {
  let app: ReturnType<typeof buildApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  /** A server whose callers are whoever `connectionParams.user` (WS) or `x-user` (HTTP) says. */
  async function start(presence: PresenceOptions<Ctx> = {}) {
    app = buildApp(store, presence);
    const metrics = createMetrics({ presence: () => app.tether.presence.stats() });
    server = await createTetherServer({
      router: app.router,
      createContext: userFromRequest,
      port: 0,
      closeGraceMs: 100,
      extraRoutes: async (req, res) => {
        if (req.url !== "/metrics") return false;
        res.writeHead(200, { "content-type": metrics.contentType });
        res.end(await metrics.render());
        return true;
      },
    });
  }

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app?.tether.close();
  });

  /** A browser: joins over WebSocket (or SSE), sets over HTTP, as `user` (null: anonymous). */
  function connect(user: string | null, transport: "ws" | "sse" = "ws") {
    const httpUrl = `${server.url}/trpc`;
    let subscriptions: TRPCLink<PresenceRouter>;
    let closeSocket = async () => undefined as void;
    if (transport === "ws") {
      const wsClient = createWSClient({
        url: server.wsUrl,
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        connectionParams: user ? { user } : {},
        retryDelayMs: () => 20,
      });
      closeSocket = () => wsClient.close();
      cleanups.push(closeSocket);
      subscriptions = wsLink({ client: wsClient });
    } else {
      subscriptions = httpSubscriptionLink({ url: httpUrl, EventSource, connectionParams: user ? { user } : {} });
    }
    const trpc = createTRPCClient<PresenceRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === "subscription",
          true: subscriptions,
          false: httpBatchLink({ url: httpUrl, headers: user ? { "x-user": user } : {} }),
        }),
      ],
    });
    return { trpc, closeSocket };
  }
  type Client = ReturnType<typeof connect>["trpc"];

  const join = (trpc: Client, room: string, clientId: string) => joinRoom(trpc, room, clientId, cleanups);

  const joined = (view: RoomView) => waitFor("the first (full) message", () => view.fulls > 0, { fatal: () => view.errors[0] });
  const failed = (view: RoomView) => waitFor("the join to fail", () => view.errors.length > 0).then(() => codeOf(view.errors[0]));
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => "accepted",
      (error: unknown) => codeOf(error),
    );

  it("join, set and leave reach every member of the room, and only that room", async () => {
    await start();
    const alice = connect("alice");
    const bob = connect("bob");
    const a = join(alice.trpc, "doc:1", "tab-a");
    await joined(a);
    expect(a.states()).toEqual({});
    expect(a.timeoutMs).toBe(30_000);
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice", cursor: { anchor: 1, head: 3 } } });

    // A late joiner gets everyone already there in its first message.
    const b = join(bob.trpc, "doc:1", "tab-b");
    const elsewhere = join(bob.trpc, "doc:2", "tab-b");
    await joined(b);
    expect(b.states()).toEqual({ "tab-a": { name: "Alice", cursor: { anchor: 1, head: 3 } } });

    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob", cursor: null } });
    await waitFor("alice to see bob", () => "tab-b" in a.states(), { fatal: () => a.errors[0] });
    expect(a.states()["tab-b"]).toEqual({ name: "Bob", cursor: null });
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice", cursor: { anchor: 4, head: 4 } } });
    await waitFor("bob to see alice move", () => (b.states()["tab-a"] as { cursor: { head: number } }).cursor.head === 4);
    expect(app.tether.presence.stats()).toMatchObject({ rooms: 2, members: 3 });

    // Bob leaves doc:1: his entry is deleted at once (no waiting for the 30 s timeout).
    b.leave();
    await waitFor("alice to see bob leave", () => !("tab-b" in a.states()), { timeoutMs: 2_000 });
    expect(Object.keys(a.states())).toEqual(["tab-a"]);
    // The other room never saw any of it.
    await joined(elsewhere);
    expect(elsewhere.states()).toEqual({});
    expect(app.tether.presence.peek("doc:2")).toEqual({});

    // The last member leaving drops the room.
    a.leave();
    elsewhere.leave();
    await waitFor("rooms to be dropped", () => app.tether.presence.stats().rooms === 0);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/^tether_presence_rooms 0$/m);
    expect(text).toMatch(/^tether_presence_members 0$/m);
  });

  it("set is refused for a clientId the caller has not joined with, and a held clientId cannot be taken", async () => {
    await start();
    const alice = connect("alice");
    const mallory = connect("mallory");
    const a = join(alice.trpc, "doc:1", "tab-a");
    await joined(a);
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });

    // Mallory in the room with her own clientId still cannot write Alice's key…
    const m = join(mallory.trpc, "doc:1", "tab-m");
    await joined(m);
    expect(await refusal(mallory.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Mallory" } }))).toBe("FORBIDDEN");
    // …nor join with Alice's clientId to get it, nor set before joining a room.
    expect(await failed(join(mallory.trpc, "doc:1", "tab-a"))).toBe("FORBIDDEN");
    expect(await refusal(mallory.trpc.$presence.set.mutate({ room: "doc:9", clientId: "tab-m", state: {} }))).toBe("FORBIDDEN");
    expect(await refusal(alice.trpc.$presence.set.mutate({ room: "doc:9", clientId: "tab-a", state: {} }))).toBe("FORBIDDEN");

    expect(app.tether.presence.peek("doc:1")).toEqual({ "tab-a": { name: "Alice" } });
    await mallory.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-m", state: { name: "Mallory" } });
    await waitFor("alice to see mallory", () => "tab-m" in a.states());
    expect(a.states()["tab-a"]).toEqual({ name: "Alice" });
  });

  it("closing a client's WebSocket removes its presence for the others at once (its leave, not expiry)", async () => {
    // Longer than the test may run: the entry cannot leave by expiring.
    const timeoutMs = 600_000;
    await start({ timeoutMs });
    const alice = connect("alice");
    const bob = connect("bob");
    const a = join(alice.trpc, "doc:1", "tab-a");
    const b = join(bob.trpc, "doc:1", "tab-b");
    await Promise.all([joined(a), joined(b)]);
    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
    await waitFor("alice to see bob", () => "tab-b" in a.states());

    await bob.closeSocket();
    await waitFor("bob's presence to disappear", () => !("tab-b" in a.states()));
    expect(app.tether.presence.stats()).toMatchObject({ rooms: 1, members: 1 });
    // And gone for a newcomer too.
    const c = join(connect("carol").trpc, "doc:1", "tab-c");
    await joined(c);
    expect(Object.keys(c.states())).toEqual([]);
  });

  it("an entry nobody refreshes expires (and the expiry is broadcast); a refreshed one stays", async () => {
    // Short, but with room for an HTTP refresh to be slow on a loaded machine (three per timeout).
    const timeoutMs = 800;
    await start({ timeoutMs });
    const alice = connect("alice");
    const bob = connect("bob");
    const a = join(alice.trpc, "doc:1", "tab-a");
    const b = join(bob.trpc, "doc:1", "tab-b");
    await Promise.all([joined(a), joined(b)]);
    expect(a.timeoutMs).toBe(timeoutMs);

    // Alice refreshes every timeout/3, as the client does; Bob sets once and goes quiet while his
    // connection stays open (a stuck tab).
    let refreshes = 0;
    let aliceState = { name: "Alice" };
    const inFlight = new Set<Promise<unknown>>();
    const refresh = setInterval(() => {
      const sent = alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: aliceState }).then(() => (refreshes += 1));
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
    }, timeoutMs / 3);
    cleanups.push(() => clearInterval(refresh));
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
    const setAt = Date.now();
    await waitFor("alice to see bob", () => "tab-b" in a.states());

    await waitFor("bob's entry to expire for alice", () => !("tab-b" in a.states()));
    // Timers never fire early: not before its timeout.
    expect(Date.now() - setAt).toBeGreaterThanOrEqual(timeoutMs - 50);
    // Bob's own view hears of it too; Alice, refreshed, is still there for both after six more
    // refreshes (two more timeouts: her first set expired long ago).
    await waitFor("bob to see his expiry", () => !("tab-b" in b.states()));
    const bobMessages = b.messages;
    const refreshesBefore = refreshes;
    await waitFor("six more refreshes", () => refreshes >= refreshesBefore + 6, { timeoutMs: 60_000 });
    expect(Object.keys(a.states())).toEqual(["tab-a"]);
    expect(Object.keys(b.states())).toEqual(["tab-a"]);
    // Alice's refreshes of an unchanged state moved her timestamp on the server only: none was
    // broadcast (clients keep entries until the server deletes them). The barrier: a change of
    // hers, which Bob must see, and after everything sent to him before it.
    // (Refreshes go on with the new state; one still carrying the old one would change it back.)
    aliceState = { name: "Alice again" };
    await Promise.all([...inFlight]);
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: aliceState });
    await waitFor("bob to see alice's change", () => (b.states()["tab-a"] as { name: string } | undefined)?.name === "Alice again");
    expect(b.messages).toBe(bobMessages + 1);
    // Bob is still joined: his next refresh brings him back.
    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { name: "Bob" } });
    await waitFor("bob to be back", () => "tab-b" in a.states());
  });

  it("a second join with the same clientId (a reconnect) keeps the entry until the last one ends", async () => {
    await start();
    const alice = connect("alice");
    const watcher = join(connect("bob").trpc, "doc:1", "tab-b");
    const first = join(alice.trpc, "doc:1", "tab-a");
    await Promise.all([joined(watcher), joined(first)]);
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { n: 1 } });
    const second = join(alice.trpc, "doc:1", "tab-a");
    await joined(second);
    expect(second.states()).toEqual({ "tab-a": { n: 1 } });
    first.leave();
    await waitFor("the first join to end on the server", () => app.tether.presence.stats().members === 2);
    // Still held by the second join: set works, the entry is there.
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { n: 2 } });
    await waitFor("bob to see n=2", () => (watcher.states()["tab-a"] as { n: number } | undefined)?.n === 2);
    second.leave();
    await waitFor("bob to see alice leave", () => !("tab-a" in watcher.states()));
  });

  it("an oversize state is refused and the previous one kept", async () => {
    await start({ maxStateBytes: 1024 });
    const alice = connect("alice");
    const a = join(alice.trpc, "doc:1", "tab-a");
    await joined(a);
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
    expect(await refusal(alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "x".repeat(1024) } }))).toBe(
      "PAYLOAD_TOO_LARGE",
    );
    // Bytes, not characters: 400 three-byte characters are 1200 bytes.
    expect(await refusal(alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: "€".repeat(400) }))).toBe(
      "PAYLOAD_TOO_LARGE",
    );
    expect(app.tether.presence.peek("doc:1")).toEqual({ "tab-a": { name: "Alice" } });
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "y".repeat(900) } });
    expect((app.tether.presence.peek("doc:1")["tab-a"] as { name: string }).name).toHaveLength(900);
  });

  it("unauthorized rooms and anonymous callers are refused; rooms per connection are bounded", async () => {
    await start({
      // Only members of a project may join its rooms (here: a fixed table).
      authorize: async (ctx, room) => ctx.user !== null && (!room.startsWith("project:") || room === `project:${ctx.user.id}`),
      maxRoomsPerConnection: 2,
    });
    const alice = connect("alice");
    expect(await failed(join(alice.trpc, "project:bob", "tab-a"))).toBe("FORBIDDEN");
    expect(app.tether.presence.stats().rooms).toBe(0);
    await joined(join(alice.trpc, "project:alice", "tab-a"));
    // Anonymous: refused by this authorize (and by the default one, below).
    expect(await failed(join(connect(null).trpc, "lobby", "tab-x"))).toBe("FORBIDDEN");

    await joined(join(alice.trpc, "lobby", "tab-a"));
    expect(await failed(join(alice.trpc, "other", "tab-a"))).toBe("TOO_MANY_REQUESTS");
    // Another connection of the same user has its own budget.
    await joined(join(connect("alice").trpc, "other", "tab-a2"));
  });

  it("the default authorize admits any signed-in caller and refuses anonymous ones; input is validated", async () => {
    await start();
    expect(await failed(join(connect(null).trpc, "lobby", "tab-x"))).toBe("FORBIDDEN");
    const alice = connect("alice");
    await joined(join(alice.trpc, "lobby", "tab-a"));
    expect(await failed(join(alice.trpc, "x".repeat(201), "tab-a"))).toBe("BAD_REQUEST");
    expect(await failed(join(alice.trpc, "lobby", ""))).toBe("BAD_REQUEST");
    expect(await refusal(alice.trpc.$presence.set.mutate({ room: "lobby", clientId: "tab-a", state: undefined }))).toBe("BAD_REQUEST");
  });

  it("joins over SSE work the same way", async () => {
    await start();
    const alice = connect("alice", "sse");
    const bob = connect("bob");
    const a = join(alice.trpc, "doc:1", "tab-a");
    const b = join(bob.trpc, "doc:1", "tab-b");
    await Promise.all([joined(a), joined(b)]);
    await alice.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { via: "sse" } });
    await waitFor("bob to see alice", () => "tab-a" in b.states());
    await bob.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-b", state: { via: "ws" } });
    await waitFor("alice to see bob", () => "tab-b" in a.states(), { fatal: () => a.errors[0] });
    a.leave();
    await waitFor("bob to see alice leave", () => !("tab-a" in b.states()));
  });
});

describe("presence with better-auth sessions", () => {
  it("a signed-out session's join ends with UNAUTHORIZED and its entry leaves the room", async () => {
    const auth = createTetherAuth({ store, schema, secret: "test-secret-test-secret-test-secret-0123456789" });
    const tether = initTether<AuthContext>().create({ store, schema, auth });
    const router = tether.appRouter({});
    const server = await createTetherServer({ router, createContext: (opts) => auth.createContext(opts), extraRoutes: auth.routes, closeGraceMs: 100 });
    const cleanups: Array<() => unknown> = [];
    try {
      const authCall = (path: string, body: unknown, cookie?: string) =>
        fetch(`${server.url}/api/auth${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", origin: server.url, ...(cookie ? { cookie } : {}) },
          body: JSON.stringify(body),
        });
      const signUp = async (name: string) => {
        const response = await authCall("/sign-up/email", { email: `${name}-${Date.now()}@example.com`, password: "correct horse battery staple", name });
        expect(response.status).toBe(200);
        const cookie = response.headers.getSetCookie().find((c) => c.startsWith("better-auth.session_token="))!.split(";")[0]!;
        return { cookie, token: cookie.split("=")[1]! };
      };
      /** Joins over WebSocket (token in connectionParams), sets over HTTP (cookie). */
      const browser = (credentials: { cookie: string; token: string }, clientId: string) => {
        const ws = createWSClient({
          url: server.wsUrl,
          WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
          connectionParams: { token: credentials.token },
          retryDelayMs: () => 50,
        });
        cleanups.push(() => ws.close());
        const trpc = createTRPCClient<typeof router>({
          links: [
            splitLink({
              condition: (op) => op.type === "subscription",
              true: wsLink({ client: ws }),
              false: httpBatchLink({ url: `${server.url}/trpc`, headers: { cookie: credentials.cookie } }),
            }),
          ],
        });
        let local = new EphemeralStore(2 ** 31 - 1);
        const view = { fulls: 0, error: undefined as unknown, states: () => local.getAllStates() as Record<string, unknown> };
        const sub = trpc.$presence.join.subscribe(
          { room: "doc:1", clientId },
          {
            onData: (message) => {
              if (message.full) {
                local = new EphemeralStore(2 ** 31 - 1);
                view.fulls += 1;
              }
              local.apply(Buffer.from(message.update, "base64"));
            },
            onError: (error) => (view.error = error),
          },
        );
        cleanups.push(() => {
          sub.unsubscribe();
          local.destroy();
        });
        return { trpc, view };
      };

      const alice = await signUp("alice");
      const bob = await signUp("bob");
      const a = browser(alice, "tab-a");
      const b = browser(bob, "tab-b");
      await waitFor("both joined", () => a.view.fulls > 0 && b.view.fulls > 0, { fatal: () => a.view.error ?? b.view.error });
      await a.trpc.$presence.set.mutate({ room: "doc:1", clientId: "tab-a", state: { name: "Alice" } });
      await waitFor("bob to see alice", () => "tab-a" in b.view.states());

      expect((await authCall("/sign-out", {}, alice.cookie)).status).toBe(200);
      await waitFor("alice's join to end", () => a.view.error !== undefined, { timeoutMs: 3_000 });
      expect(codeOf(a.view.error)).toBe("UNAUTHORIZED");
      await waitFor("alice to leave bob's room", () => !("tab-a" in b.view.states()), { timeoutMs: 3_000 });
      expect(tether.presence.stats()).toMatchObject({ rooms: 1, members: 1 });
    } finally {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      await server.close();
      await tether.close();
      auth.close();
    }
  });
});
