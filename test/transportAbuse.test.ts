// Abuse of the network transports (issue 11, findings 3–5): cross-site use of the session cookie
// (WebSocket hijacking, SSE, form posts), a client that subscribes many times and stops reading,
// oversized batches and call floods on one socket. Real servers, real sockets, both engines where
// a database is involved.
import type { Socket } from "node:net";
import { createTRPCClient, httpBatchLink, TRPCClientError } from "@trpc/client";
import { initTRPC } from "@trpc/server";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { z } from "zod";
import type { LiveMessage } from "@tether/protocol";
import { readHeader, type TetherContextOptions } from "@tether/server";
import { createTetherServer, type TetherServer, type TetherServerOptions } from "@tether/server/adapters/node";
import { nextRouteHandler } from "@tether/server/adapters/next";
import { buildApp, type TestContext, type TestRouter } from "./fixtures/app.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { storeForSuite } from "./support/suiteStore.ts";
import { seedAliceAndBob } from "./support/seed.ts";
import { connectAs, userFromRequest } from "./support/userClient.ts";
import { waitFor } from "./support/waitFor.ts";

const EVIL = "https://evil.example";

/** Browser-style identity: the `user` cookie; else what test clients name (params, x-user). */
function cookieOrNamedUser(opts: TetherContextOptions): TestContext {
  const fromCookie = /(?:^|;\s*)user=([^;]+)/.exec(readHeader(opts, "cookie") ?? "")?.[1];
  return fromCookie ? { user: { id: fromCookie } } : userFromRequest(opts);
}

type Opened = { socket: WebSocket } | { status: number };

/** A raw `ws` client; resolves with the open socket or the HTTP status that refused the upgrade. */
function openSocket(url: string, options: { origin?: string; headers?: Record<string, string> }): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { origin: options.origin, headers: options.headers });
    socket.once("open", () => resolve({ socket }));
    socket.once("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
    });
    socket.once("error", reject);
  });
}

/** Sends tRPC messages on a raw socket and collects the answers by id. */
function rawClient(socket: WebSocket) {
  const answers = new Map<number, Array<Record<string, unknown>>>();
  socket.on("message", (data) => {
    const parsed = JSON.parse(String(data)) as unknown;
    for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
      const { id } = message as { id: number };
      answers.set(id, [...(answers.get(id) ?? []), message as Record<string, unknown>]);
    }
  });
  return {
    answers,
    send: (messages: unknown) => socket.send(JSON.stringify(messages)),
    errorCode: (id: number) =>
      (answers.get(id)?.find((m) => m.error) as { error?: { data?: { code?: string } } } | undefined)?.error?.data?.code,
  };
}

const query = (id: number, path: string, input?: unknown) => ({ id, method: "query", params: { path, input } });

describe.each(engines)("transport abuse on %s", (engine) => {
  let store: AppStore;
  let app: ReturnType<typeof buildApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  storeForSuite(engine, (made) => (store = made));

  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Attachment", "Task", "Project", "User" CASCADE`);
    await seedAliceAndBob(store, { alice: ["p1", "One"], bob: ["p2", "Two"] });
    app = buildApp(store);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app.tether.close();
  });

  const start = async (options: Partial<TetherServerOptions<TestRouter>> = {}) => {
    server = await createTetherServer({ router: app.router, createContext: cookieOrNamedUser, ...options });
    return server;
  };
  const ownOrigin = () => server.url; // http://127.0.0.1:<port>, the Host the clients send

  describe("origin check for cookie-authenticated requests", () => {
    it("refuses a WebSocket upgrade with a cookie from a foreign Origin with 403, before any upgrade", async () => {
      await start();
      let upgraded = 0;
      server.server.on("upgrade", () => (upgraded += 1));
      const refused = await openSocket(server.wsUrl, { origin: EVIL, headers: { cookie: "user=alice" } });
      expect(refused).toEqual({ status: 403 });
      expect(upgraded).toBe(1); // it reached the server, which answered 403 instead of 101
      expect(server.stats()).toMatchObject({ wsConnections: 0, foreignOriginsRefused: 1 });
    });

    it("accepts the same origin, allowed origins, and clients without Origin or without cookie", async () => {
      await start({ origins: { allowedOrigins: ["https://app.example"] } });
      const accepted: Array<{ origin?: string; headers?: Record<string, string> }> = [
        { origin: ownOrigin(), headers: { cookie: "user=alice" } },
        { origin: "https://app.example", headers: { cookie: "user=alice" } },
        { headers: { cookie: "user=alice" } }, // a non-browser client: no Origin
        { origin: EVIL }, // no cookie: nothing of the user's to abuse
      ];
      for (const [index, options] of accepted.entries()) {
        const opened = await openSocket(server.wsUrl, options);
        if (!("socket" in opened)) throw new Error(`case ${index} refused with ${opened.status}`);
        cleanups.push(() => opened.socket.terminate());
        const client = rawClient(opened.socket);
        client.send(query(1, "projects.mine"));
        await waitFor(`case ${index} answered`, () => client.answers.has(1));
        const mine = (client.answers.get(1)![0]!.result as { data: Array<{ id: string }> }).data;
        expect(mine.map((p) => p.id)).toEqual(options.headers?.cookie ? ["p1"] : []);
      }
      // tRPC's own client with connection params (a token, no cookie) keeps working.
      const bob = connectAs<TestRouter>(server, "bob", cleanups);
      const seen: LiveMessage[] = [];
      const sub = bob.trpc.$live.subscribe({ path: "projects.mine", input: undefined }, { onData: (e) => seen.push(e.data as LiveMessage) });
      cleanups.push(() => sub.unsubscribe());
      await waitFor("bob's live query", () => seen.length === 1);
      expect(server.stats().foreignOriginsRefused).toBe(0);
    });

    it("refuses SSE and HTTP calls (a form post too) carrying a cookie from a foreign Origin with a typed FORBIDDEN", async () => {
      await start();
      const input = encodeURIComponent(JSON.stringify({ path: "projects.mine", input: undefined }));
      const sse = await fetch(`${server.url}/trpc/$live?input=${input}`, {
        headers: { accept: "text/event-stream", cookie: "user=alice", origin: EVIL },
      });
      expect(sse.status).toBe(403);
      expect(((await sse.json()) as { error: { data: { code: string } } }).error.data.code).toBe("FORBIDDEN");
      expect(server.stats().sseConnections).toBe(0);

      // A cross-site HTML form can post multipart/form-data, which tRPC accepts: refused before it runs.
      const form = new FormData();
      form.set("projectId", "p1");
      form.set("title", "csrf");
      const post = await fetch(`${server.url}/trpc/tasks.add`, {
        method: "POST",
        body: form,
        headers: { cookie: "user=alice", origin: EVIL },
      });
      expect(post.status).toBe(403);

      // tRPC's batch link gets one typed error per call.
      const evil = createTRPCClient<TestRouter>({
        links: [httpBatchLink({ url: `${server.url}/trpc`, headers: { cookie: "user=alice", origin: EVIL } })],
      });
      const error = await evil.tasks.add.mutate({ projectId: "p1", title: "csrf" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TRPCClientError);
      expect((error as TRPCClientError<TestRouter>).data?.code).toBe("FORBIDDEN");
      expect(await store.db.task.count({ where: { title: "csrf" } })).toBe(0);

      // The same from the app's own origin goes through.
      const own = createTRPCClient<TestRouter>({
        links: [httpBatchLink({ url: `${server.url}/trpc`, headers: { cookie: "user=alice", origin: ownOrigin() } })],
      });
      await own.tasks.add.mutate({ projectId: "p1", title: "mine" });
      expect(await store.db.task.count({ where: { title: "mine" } })).toBe(1);
    });

    it("the Next.js route handler refuses a foreign-Origin SSE request with a cookie, and serves its own origin", async () => {
      const { GET } = nextRouteHandler({ router: app.router, createContext: cookieOrNamedUser, endpoint: "/api/trpc" });
      const url = "http://app.example/api/trpc/projects.mine";
      const evil = await GET(new Request(url, { headers: { host: "app.example", cookie: "user=alice", origin: EVIL, accept: "text/event-stream" } }));
      expect(evil.status).toBe(403);
      expect(((await evil.json()) as { error: { data: { code: string } } }).error.data.code).toBe("FORBIDDEN");
      const own = await GET(new Request(url, { headers: { host: "app.example", cookie: "user=alice", origin: "http://app.example" } }));
      expect(own.status).toBe(200);
      expect(((await own.json()) as { result: { data: Array<{ id: string }> } }).result.data.map((p) => p.id)).toEqual(["p1"]);
    });
  });

  it("bounds one socket's unsent bytes across 200 identical $live subscriptions it never reads; others keep working", async () => {
    const budget = 2 * 1024 * 1024;
    await start({ limits: { maxBufferedBytesPerConnection: budget } });
    // A ~384 KB result: 192 tasks with 2 KB titles.
    await store.db.user.create({ data: { id: "mallory", email: "m@x", name: "M" } });
    await store.db.project.create({ data: { id: "big", name: "Big", ownerId: "mallory" } });
    await store.db.task.createMany({
      data: Array.from({ length: 192 }, (_, i) => ({ id: `big${i}`, projectId: "big", title: "t".repeat(2000) })),
    });

    // Bob, a well-behaved user, is live on his project before, during and after.
    const bob = connectAs<TestRouter>(server, "bob", cleanups);
    const bobSeen: LiveMessage[] = [];
    const bobSub = bob.trpc.$live.subscribe({ path: "tasks.byProject", input: { projectId: "p2" } }, { onData: (e) => bobSeen.push(e.data as LiveMessage) });
    cleanups.push(() => bobSub.unsubscribe());
    await waitFor("bob's first result", () => bobSeen.length === 1);

    // Measured on the server's TCP sockets, independently of the transport's own stats: the most
    // bytes the kernel had not taken yet, i.e. what the process holds for that peer.
    let peakUnsent = 0;
    server.server.on("upgrade", (_req, tcp: Socket) => {
      const write = tcp.write.bind(tcp) as (...args: unknown[]) => boolean;
      tcp.write = ((...args: unknown[]) => {
        const accepted = write(...args);
        peakUnsent = Math.max(peakUnsent, tcp.writableLength);
        return accepted;
      }) as typeof tcp.write;
    });
    const opened = await openSocket(server.wsUrl, { headers: { "x-user": "mallory" } });
    if (!("socket" in opened)) throw new Error(`refused: ${opened.status}`);
    const attacker = opened.socket;
    attacker.on("error", () => undefined);
    cleanups.push(() => attacker.terminate());
    (attacker as unknown as { _socket: Socket })._socket.pause(); // never reads again
    const subscribe = (id: number) => ({ id, method: "subscription", params: { path: "$live", input: { path: "tasks.byProject", input: { projectId: "big" } } } });
    for (let first = 1; first <= 200; first += 50) {
      attacker.send(JSON.stringify(Array.from({ length: 50 }, (_, i) => subscribe(first + i))));
    }

    await waitFor("the attacker's socket to be cut", () => server.stats().slowConsumersTerminated === 1, { timeoutMs: 30_000 });
    await waitFor("only bob's socket to remain", () => server.stats().wsConnections === 1);
    // 200 × 384 KB would be 75 MiB; the connection never held more than its budget.
    expect(peakUnsent).toBeGreaterThan(0);
    expect(peakUnsent).toBeLessThanOrEqual(budget);
    expect(server.stats().maxConnectionBufferedBytes).toBeGreaterThan(0);
    expect(server.stats().maxConnectionBufferedBytes).toBeLessThanOrEqual(budget);
    await waitFor("the attacker's subscriptions to end", () => app.tether.stats.live().subscriptions === 1);

    // Bob's write and live query still work.
    const added = await bob.trpc.tasks.add.mutate({ projectId: "p2", title: "after the attack" });
    await waitFor("bob's live query to show his write", () =>
      bobSeen.some((m) => m.kind !== "resumed" && JSON.stringify(m).includes(added.id)),
    );
  });

  it("answers a batch of 51 calls with BAD_REQUEST for each, over HTTP and over WebSocket; 50 pass, and so do 60 subscriptions in one WS array", async () => {
    await start();
    const http = createTRPCClient<TestRouter>({ links: [httpBatchLink({ url: `${server.url}/trpc`, headers: { "x-user": "alice" } })] });
    const batch = (n: number) => Promise.allSettled(Array.from({ length: n }, () => http.tasks.openCount.query({ projectId: "p1" })));
    const tooMany = await batch(51);
    expect(tooMany.every((r) => r.status === "rejected" && (r.reason as TRPCClientError<TestRouter>).data?.code === "BAD_REQUEST")).toBe(true);
    expect((await batch(50)).every((r) => r.status === "fulfilled")).toBe(true);

    const opened = await openSocket(server.wsUrl, { headers: { "x-user": "alice" } });
    if (!("socket" in opened)) throw new Error(`refused: ${opened.status}`);
    cleanups.push(() => opened.socket.terminate());
    const ws = rawClient(opened.socket);
    ws.send(Array.from({ length: 51 }, (_, i) => query(i + 1, "tasks.openCount", { projectId: "p1" })));
    await waitFor("51 answers", () => ws.answers.size === 51);
    expect(Array.from({ length: 51 }, (_, i) => ws.errorCode(i + 1))).toEqual(Array(51).fill("BAD_REQUEST"));

    // Subscriptions do not count: tRPC's client re-sends all open ones in one array on reconnect.
    ws.send(Array.from({ length: 60 }, (_, i) => ({ id: 100 + i, method: "subscription", params: { path: "$live", input: { path: "tasks.openCount", input: { projectId: "p1" } } } })));
    await waitFor("60 live results", () =>
      Array.from({ length: 60 }, (_, i) => ws.answers.get(100 + i) ?? []).every((answers) => answers.some((m) => (m.result as { type?: string } | undefined)?.type === "data")),
    );
  });
});

describe("calls in flight per WebSocket connection", () => {
  // No database: a query that waits until the test releases it, counting how many run at once.
  let running = 0;
  let peak = 0;
  let started = 0;
  const releases: Array<() => void> = [];
  const t = initTRPC.create();
  const router = t.router({
    held: t.procedure.input(z.number()).query(async ({ input }) => {
      started += 1;
      running += 1;
      peak = Math.max(peak, running);
      await new Promise<void>((resolve) => releases.push(resolve));
      running -= 1;
      return input;
    }),
  });
  let server: TetherServer;
  afterEach(() => server.close());

  async function rawSocket() {
    const opened = await openSocket(server.wsUrl, {});
    if (!("socket" in opened)) throw new Error(`refused: ${opened.status}`);
    return rawClient(opened.socket);
  }

  it("runs at most maxInFlightCallsPerConnection at once; the rest wait their turn and all are answered", async () => {
    running = peak = started = 0;
    server = await createTetherServer({ router, createContext: () => ({}), limits: { maxInFlightCallsPerConnection: 4 } });
    const ws = await rawSocket();
    for (let first = 1; first <= 120; first += 40) ws.send(Array.from({ length: 40 }, (_, i) => query(first + i, "held", first + i)));

    await waitFor("the first four to start", () => started === 4);
    // Releasing one lets exactly one more in: the cap holds while the rest wait.
    releases.shift()!();
    await waitFor("the fifth to start", () => started === 5);
    await waitFor("the first answer", () => ws.answers.has(1));
    expect(running).toBe(4);
    // Drain everything, releasing whatever is held.
    await waitFor("all 120 answers", () => {
      releases.splice(0).forEach((release) => release());
      return ws.answers.size === 120;
    }, { timeoutMs: 20_000 });
    expect(peak).toBe(4);
    expect([...ws.answers.values()].every((answers) => answers[0]!.result !== undefined)).toBe(true);
  });

  it("answers TOO_MANY_REQUESTS to calls beyond maxQueuedCallsPerConnection", async () => {
    running = peak = started = 0;
    server = await createTetherServer({
      router,
      createContext: () => ({}),
      limits: { maxInFlightCallsPerConnection: 2, maxQueuedCallsPerConnection: 8 },
    });
    const ws = await rawSocket();
    ws.send(Array.from({ length: 20 }, (_, i) => query(i + 1, "held", i + 1)));
    await waitFor("the refusals", () => ws.answers.size === 10);
    expect([...ws.answers.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 11));
    expect(Array.from({ length: 10 }, (_, i) => ws.errorCode(i + 11))).toEqual(Array(10).fill("TOO_MANY_REQUESTS"));
    await waitFor("the admitted ten to finish", () => {
      releases.splice(0).forEach((release) => release());
      return ws.answers.size === 20;
    });
    expect(peak).toBe(2);
  });
});
