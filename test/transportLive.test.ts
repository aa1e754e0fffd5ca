// Live queries end to end through the real network transports: a tRPC client (`@trpc/client`)
// against `createTetherServer` serving the fixture app, subscriptions over WebSocket and over SSE,
// queries and mutations batched over HTTP.
import type { IncomingMessage } from "node:http";
import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  wsLink,
  type TRPCLink,
} from "@trpc/client";
import { EventSource } from "eventsource";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { applyListPatch, COMMIT_HEADER, positionIncludes, type LiveMessage } from "@tether/protocol";
import { createMetrics } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { buildApp, type TestContext, type TestRouter } from "./fixtures/app.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { storeForSuite } from "./support/suiteStore.ts";
import { waitFor } from "./support/waitFor.ts";
import { tetherInternals } from "@tether/server/internal";

/** A task as it crosses the wire (no transformer: dates are ISO strings). */
type WireTask = { id: string; title: string; done: boolean; projectId: string; assigneeId: string | null };

type Transport = "ws" | "sse";

const ALICE: TestContext = { user: { id: "alice" } };


/** One HTTP response the batch link received: what it was, and the commit header it carried. */
interface SeenResponse {
  method: string;
  url: string;
  commit: string | null;
}

/**
 * A live query applied on the client the way a client core does: full replaces, patch applies
 * (checking the version), resumed keeps what it has. `snapshots[i]` is the data after message i.
 */
interface LiveView<T> {
  messages: LiveMessage[];
  ids: string[];
  snapshots: (T | undefined)[];
  data: T | undefined;
  version: number;
  /** `started` notifications: one per (re)connection that reached the server. */
  starts: number;
  errors: unknown[];
  unsubscribe(): void;
}

describe.each(engines)("live queries over network transports on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildApp>;
  /** The running server; replaced when a test restarts it on the same port. */
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  /** Serves the app, plus `/metrics` reading the reactor and whichever server is current. */
  function startServer(port = 0): Promise<TetherServer> {
    const metrics = createMetrics({
      reactor: () => app.tether.stats.live(),
      // Late-bound: the server does not exist yet when its routes are declared.
      transport: () => server.stats(),
    });
    return createTetherServer({
      router: app.router,
      // One shared context object for every request, on purpose: legitimate for tRPC, and it
      // keeps the commit header honest (each response carries only its own request's commits).
      createContext: () => ALICE,
      port,
      extraRoutes: async (req, res) => {
        if (req.url !== "/metrics") return false;
        const body = await metrics.render();
        res.writeHead(200, { "content-type": metrics.contentType });
        res.end(body);
        return true;
      },
    });
  }

  /** Stops the server and starts a new one on the same port and store; `whileDown` runs in between. */
  async function restartServer(whileDown?: () => Promise<void>): Promise<void> {
    const port = server.port;
    await server.close();
    await whileDown?.();
    server = await startServer(port);
  }

  // One database per engine for the file (migrating PGlite is the slow part); each test gets
  // emptied tables, its own app (reactor and change feed) and its own server.
  storeForSuite(engine, (made) => (store = made));

  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Attachment", "Task", "Project", "User" CASCADE`);
    app = buildApp(store);
    await store.db.user.createMany({
      data: [
        { id: "alice", email: "alice@x", name: "Alice" },
        { id: "bob", email: "bob@x", name: "Bob" },
      ],
    });
    await store.db.project.createMany({
      data: [
        { id: "p1", name: "One", ownerId: "alice" },
        { id: "p2", name: "Two", ownerId: "bob" },
      ],
    });
    await store.db.task.create({ data: { id: "seeded", projectId: "p1", title: "seeded" } });
    server = await startServer();
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server.close();
    await app.tether.close();
  });

  /** A client: subscriptions over `transport`, queries and mutations batched over HTTP. */
  function connect(transport: Transport) {
    const httpUrl = `${server.url}/trpc`;
    const responses: SeenResponse[] = [];
    const recordingFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const response = await fetch(input, init);
      responses.push({
        method: init?.method ?? "GET",
        url: String(input),
        commit: response.headers.get(COMMIT_HEADER),
      });
      return response;
    }) as typeof fetch;

    let subscriptions: TRPCLink<TestRouter>;
    if (transport === "ws") {
      const wsClient = createWSClient({
        url: server.wsUrl,
        // Node 20 has no global WebSocket; `ws` implements the same interface.
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        retryDelayMs: () => 20,
      });
      cleanups.push(() => wsClient.close());
      subscriptions = wsLink({ client: wsClient });
    } else {
      // Node 20 has no global EventSource either.
      subscriptions = httpSubscriptionLink({ url: httpUrl, EventSource });
    }
    const client = createTRPCClient<TestRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === "subscription",
          true: subscriptions,
          false: httpBatchLink({ url: httpUrl, fetch: recordingFetch }),
        }),
      ],
    });
    return { client, responses };
  }
  type Client = ReturnType<typeof connect>["client"];

  function live<T>(client: Client, path: string, input: unknown): LiveView<T> {
    const view: LiveView<T> = {
      messages: [],
      ids: [],
      snapshots: [],
      data: undefined,
      version: 0,
      starts: 0,
      errors: [],
      unsubscribe: () => undefined,
    };
    const subscription = client.$live.subscribe(
      { path, input },
      {
        onStarted: () => (view.starts += 1),
        onData: (event) => {
          const message = event.data as LiveMessage;
          view.ids.push(event.id);
          view.messages.push(message);
          if (message.kind === "full") {
            view.data = message.data as T;
          } else if (message.kind === "patch") {
            if (message.version !== view.version + 1) {
              view.errors.push(new Error(`version gap: had ${view.version}, got patch ${message.version}`));
            } else {
              view.data = applyListPatch(view.data as Record<string, unknown>[], message.patch) as T;
            }
          } else if (view.data === undefined) {
            view.errors.push(new Error("resumed before any data was received"));
          }
          view.version = message.version;
          view.snapshots.push(view.data);
        },
        onError: (error) => view.errors.push(error),
      },
    );
    let open = true;
    view.unsubscribe = () => {
      if (!open) return;
      open = false;
      subscription.unsubscribe();
    };
    cleanups.push(view.unsubscribe);
    return view;
  }

  const until = <T>(view: LiveView<T>, what: string, condition: () => boolean, timeoutMs?: number) =>
    waitFor(what, condition, { timeoutMs, fatal: () => view.errors[0] });

  const idsOf = (rows: WireTask[] | undefined) => (rows ?? []).map((row) => row.id);

  const connections = () => {
    const { wsConnections, sseConnections } = server.stats();
    return { ws: wsConnections, sse: sseConnections };
  };
  const expectedConnections = (transport: Transport, count = 1) =>
    transport === "ws" ? { ws: count, sse: 0 } : { ws: 0, sse: count };

  async function metricsText(): Promise<string> {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain");
    return response.text();
  }

  const insertRaw = (id: string, title = id) =>
    store.sql.query(`INSERT INTO "Task" (id, "projectId", title, "updatedAt") VALUES ($1, 'p1', $2, now())`, [id, title]);

  describe.each<Transport>(["ws", "sse"])("subscriptions over %s", (transport) => {
    it("applies a mutation and a raw SQL insert to tasks.byProject; the result equals a fresh query", async () => {
      const { client } = connect(transport);
      const view = live<WireTask[]>(client, "tasks.byProject", { projectId: "p1" });
      await until(view, "the first message", () => view.messages.length === 1);
      expect(view.messages[0]).toMatchObject({ kind: "full", version: 1 });
      expect(idsOf(view.data)).toEqual(["seeded"]);
      // The subscription really rides the transport under test.
      expect(connections()).toEqual(expectedConnections(transport));

      const added = await client.tasks.add.mutate({ projectId: "p1", title: "by mutation" });
      await until(view, "the mutation", () => idsOf(view.data).includes(added.id));
      await insertRaw("raw1", "by raw SQL");
      await until(view, "the raw insert", () => idsOf(view.data).includes("raw1"));

      // Small list: each change arrives as a patch, versions without gaps.
      expect(view.messages.map((m) => [m.kind, m.version])).toEqual([
        ["full", 1],
        ["patch", 2],
        ["patch", 3],
      ]);
      const fresh = await client.tasks.byProject.query({ projectId: "p1" });
      expect(fresh.map((t) => t.id).sort()).toEqual([added.id, "raw1", "seeded"].sort());
      expect(view.data).toEqual(fresh);
      expect(view.data?.find((t) => t.id === "raw1")?.title).toBe("by raw SQL");
      expect(view.errors).toEqual([]);
    });

    it("tells the mutating client its commits (x-tether-commit); a message at that position has the writes", async () => {
      const { client, responses } = connect(transport);
      const view = live<WireTask[]>(client, "tasks.byProject", { projectId: "p1" });
      await until(view, "the first message", () => view.messages.length === 1);

      // Two mutations in one tick: one batched POST, two transactions.
      const [a, b] = await Promise.all([
        client.tasks.add.mutate({ projectId: "p1", title: "a" }),
        client.tasks.add.mutate({ projectId: "p1", title: "b" }),
      ]);
      const posts = responses.filter((r) => r.method === "POST");
      expect(posts).toHaveLength(1);
      expect(posts[0]!.commit).toMatch(/^\d+,\d+$/);
      const xids = posts[0]!.commit!.split(",");
      expect(new Set(xids).size).toBe(2);
      // They are the transactions that wrote the rows (xmin is the xid8 modulo 2^32).
      const rows = await store.sql.query<{ id: string; xmin: string }>(
        `SELECT id, xmin::text AS xmin FROM "Task" WHERE id = ANY($1::text[])`,
        [[a.id, b.id]],
      );
      expect(rows).toHaveLength(2);
      expect(xids.map((x) => (BigInt(x) % 2n ** 32n).toString()).sort()).toEqual(rows.map((r) => r.xmin).sort());

      // Read-your-writes, as a client judges it: a message whose position includes a commit has
      // that commit's row. A re-run whose result did not change sends nothing, so a message need not
      // cover both commits (clients probe for that); the one the first change triggered covers it.
      await until(view, "both rows", () => [a.id, b.id].every((id) => idsOf(view.data).includes(id)));
      const xidOfRow = new Map(rows.map((r) => [r.id, xids.find((x) => (BigInt(x) % 2n ** 32n).toString() === r.xmin)!]));
      let covering = 0;
      view.messages.forEach((message, index) => {
        for (const [rowId, xid] of xidOfRow) {
          if (!positionIncludes(message.position, xid)) continue;
          covering += 1;
          expect(idsOf(view.snapshots[index])).toContain(rowId);
        }
      });
      expect(covering).toBeGreaterThan(0);
      // The first message, from before the writes, claims neither.
      expect(xids.some((xid) => positionIncludes(view.messages[0]!.position, xid))).toBe(false);

      // Once the reactor has processed both commits, a new live query starts at a position that
      // includes them, with both rows.
      await waitFor("the reactor to process both commits", () =>
        xids.every((xid) => positionIncludes(app.tether.stats.live().position, xid)),
      );
      const mine = live<Array<{ id: string; tasks: WireTask[] }>>(client, "projects.mine", undefined);
      await until(mine, "the first projects.mine message", () => mine.messages.length === 1);
      expect(mine.messages[0]!.kind).toBe("full");
      expect(xids.every((xid) => positionIncludes(mine.messages[0]!.position, xid))).toBe(true);
      expect(mine.data?.[0]?.tasks.map((t) => t.id)).toEqual(expect.arrayContaining([a.id, b.id]));

      // Nothing committed, no header: a query, and a mutation that rolled back.
      expect(await client.tasks.openCount.query({ projectId: "p1" })).toBe(3);
      await expect(client.tasks.addThenFail.mutate({ projectId: "p1" })).rejects.toThrow("boom after write");
      expect(responses.slice(1).map((r) => [r.method, r.commit])).toEqual([
        ["GET", null],
        ["POST", null],
      ]);
    });

    it("resumes after a server restart on the same port: 'resumed' when unchanged, full after a change", async () => {
      const subscribe = vi.spyOn(tetherInternals(app.tether).reactor, "subscribe");
      const { client } = connect(transport);
      const view = live<WireTask[]>(client, "tasks.byProject", { projectId: "p1" });
      await until(view, "the first message", () => view.messages.length === 1);
      const added = await client.tasks.add.mutate({ projectId: "p1", title: "before restart" });
      await until(view, "the mutation", () => idsOf(view.data).includes(added.id));
      const heldId = view.ids.at(-1)!;
      const dataBefore = view.data;

      // Restart 1: nothing changes while the server is down.
      const sseResumeHeaders: (string | undefined)[] = [];
      const recordSseResume = (req: IncomingMessage) => {
        if (req.headers.accept?.includes("text/event-stream")) sseResumeHeaders.push(req.headers["last-event-id"] as string | undefined);
      };
      await restartServer();
      server.server.on("request", recordSseResume);
      // EventSource retries after its default 3 s; the WS client after 20 ms.
      await until(view, "the resumed message", () => view.messages.length === 3, 10_000);
      expect(view.messages[2]).toMatchObject({ kind: "resumed" });
      expect(view.data).toBe(dataBefore);
      expect(view.starts).toBe(2);
      // What the client sent: WS puts `lastEventId` in the message params, SSE's EventSource sends
      // the Last-Event-ID header; either way the adapter merges it into the `$live` input.
      expect(subscribe.mock.calls.map(([request]) => request.lastEventId ?? null)).toEqual([null, heldId]);
      if (transport === "sse") expect(sseResumeHeaders).toEqual([heldId]);
      await waitFor("the server to count the new connection", () => connections()[transport] === 1);
      expect(connections()).toEqual(expectedConnections(transport));
      expect(app.tether.stats.live()).toMatchObject({ subscriptions: 1, groups: 1 });

      // Restart 2: a raw write lands while the client is disconnected.
      const resumedId = view.ids.at(-1)!;
      await restartServer(async () => {
        await waitFor("the reactor to drop the closed subscription", () => app.tether.stats.live().subscriptions === 0);
        await insertRaw("offline", "written while disconnected");
      });
      await until(view, "the message after the second reconnect", () => view.messages.length === 4, 10_000);
      expect(view.messages[3]).toMatchObject({ kind: "full" });
      expect(idsOf(view.data)).toContain("offline");
      expect(subscribe.mock.calls.at(-1)?.[0].lastEventId).toBe(resumedId);

      // And it stays live on the new server.
      const after = await client.tasks.add.mutate({ projectId: "p1", title: "after restart" });
      await until(view, "a change after the reconnect", () => idsOf(view.data).includes(after.id));
      expect(view.messages.at(-1)?.kind).toBe("patch");
      expect(view.data).toEqual(await client.tasks.byProject.query({ projectId: "p1" }));
      expect(view.errors).toEqual([]);
    });

    it("unsubscribing removes the subscription from the reactor", async () => {
      const { client } = connect(transport);
      const view = live<WireTask[]>(client, "tasks.byProject", { projectId: "p1" });
      const other = live<number>(client, "tasks.openCount", { projectId: "p1" });
      await until(view, "the first message", () => view.messages.length === 1);
      await until(other, "the first count", () => other.messages.length === 1);
      expect(other.data).toBe(1);
      expect(app.tether.stats.live()).toMatchObject({ subscriptions: 2, groups: 2 });

      view.unsubscribe();
      await waitFor("the reactor to drop the subscription", () => app.tether.stats.live().subscriptions === 1);
      expect(app.tether.stats.live().groups).toBe(1);
      if (transport === "sse") await waitFor("its SSE stream to close", () => server.stats().sseConnections === 1);

      // The other subscription is unaffected and still live.
      await client.tasks.add.mutate({ projectId: "p1", title: "counted" });
      await until(other, "the count to move", () => other.data === 2);
      const seenByClosed = view.messages.length;
      expect(seenByClosed).toBe(1);

      other.unsubscribe();
      await waitFor("the reactor to drop every subscription", () => app.tether.stats.live().subscriptions === 0);
      expect(app.tether.stats.live().groups).toBe(0);
      // SSE streams close with their subscription; the WebSocket stays open for the next one.
      if (transport === "sse") await waitFor("every SSE stream to close", () => server.stats().sseConnections === 0);
      else expect(connections()).toEqual({ ws: 1, sse: 0 });
    });

    it("serves /metrics with the open subscription counted", async () => {
      const { client } = connect(transport);
      const before = await metricsText();
      expect(before).toMatch(/^tether_live_subscriptions 0$/m);

      const view = live<WireTask[]>(client, "tasks.byProject", { projectId: "p1" });
      await until(view, "the first message", () => view.messages.length === 1);
      const open = await metricsText();
      expect(open).toMatch(/^tether_live_subscriptions 1$/m);
      expect(open).toMatch(/^tether_query_groups 1$/m);
      expect(open).toMatch(new RegExp(`^tether_${transport}_connections 1$`, "m"));
      expect(open).toMatch(new RegExp(`^tether_${transport === "ws" ? "sse" : "ws"}_connections 0$`, "m"));

      view.unsubscribe();
      let text = "";
      await waitFor("the metrics to show no subscription", async () => {
        text = await metricsText();
        return /^tether_live_subscriptions 0$/m.test(text);
      });
      expect(text).toMatch(/^tether_query_groups 0$/m);
    });
  });

  it("a server-requested WebSocket reconnect resumes the subscription ('resumed', nothing resent)", async () => {
    const subscribe = vi.spyOn(tetherInternals(app.tether).reactor, "subscribe");
    let upgrades = 0;
    server.server.on("upgrade", () => (upgrades += 1));
    const { client } = connect("ws");
    const view = live<WireTask[]>(client, "tasks.byProject", { projectId: "p1" });
    await until(view, "the first message", () => view.messages.length === 1);
    const heldId = view.ids[0]!;
    expect(upgrades).toBe(1);

    server.broadcastReconnect();
    await until(view, "the resumed message", () => view.messages.length === 2);
    expect(view.messages[1]).toMatchObject({ kind: "resumed", version: 1 });
    expect(view.ids[1]).toBe(heldId);
    expect(upgrades).toBe(2);
    // The client re-sent the subscription on the new socket with the id of the last event it got.
    expect(subscribe.mock.calls.map(([request]) => request.lastEventId ?? null)).toEqual([null, heldId]);
    // The old socket is closed once the move is confirmed; one subscription remains.
    await waitFor("the old socket to close", () => server.stats().wsConnections === 1);
    await waitFor("the old subscription to end", () => app.tether.stats.live().subscriptions === 1);

    // Still live on the new socket.
    const added = await client.tasks.add.mutate({ projectId: "p1", title: "after reconnect" });
    await until(view, "the mutation", () => idsOf(view.data).includes(added.id));
    expect(view.messages.map((m) => m.kind)).toEqual(["full", "resumed", "patch"]);
    expect(view.data).toEqual(await client.tasks.byProject.query({ projectId: "p1" }));
    expect(view.errors).toEqual([]);
  });
});
