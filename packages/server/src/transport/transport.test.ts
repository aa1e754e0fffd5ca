import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
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
import { initTRPC, tracked } from "@trpc/server";
import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { z } from "zod";
import { readHeader, type FetchContextOptions, type TetherContextOptions, type TransportErrorInfo } from "../context/index.ts";
import { createTetherServer, nextRouteHandler, type TetherServer } from "./index.ts";

// ---------------------------------------------------------------------------------------------
// A tiny router: plain tRPC, nothing Tether-specific, to show the transport is router-agnostic.

interface Ctx {
  transport: TetherContextOptions["transport"];
  runtime: TetherContextOptions["runtime"];
  token: string | null;
}

/** One createContext for every transport: the point of `TetherContextOptions`. */
function createContext(opts: TetherContextOptions): Ctx {
  const bearer = readHeader(opts, "authorization")?.replace(/^Bearer /, "");
  return {
    transport: opts.transport,
    runtime: opts.runtime,
    token: opts.connectionParams?.token ?? bearer ?? null,
  };
}

const t = initTRPC.context<Ctx>().create();

const router = t.router({
  hello: t.procedure
    .input(z.object({ name: z.string() }).optional())
    .query(({ input }) => `hello ${input?.name ?? "world"}`),
  whoami: t.procedure.query(({ ctx }) => ctx),
  add: t.procedure.input(z.object({ a: z.number(), b: z.number() })).mutation(({ input }) => input.a + input.b),
  echoLength: t.procedure.input(z.object({ text: z.string() })).mutation(({ input }) => input.text.length),
  /** Counts up forever; a reconnecting client passes `lastEventId` and continues after it. */
  count: t.procedure
    .input(z.object({ lastEventId: z.string().nullish(), intervalMs: z.number().int().min(1).default(10) }))
    .subscription(async function* ({ input, signal }) {
      let i = input.lastEventId == null ? 0 : Number(input.lastEventId) + 1;
      while (!signal?.aborted) {
        yield tracked(String(i), { i });
        i += 1;
        await sleep(input.intervalMs, undefined, { signal }).catch(() => undefined);
      }
    }),
  /** The subscriber's context, once: shows what createContext saw on the subscription transport. */
  whoamiLive: t.procedure.subscription(async function* ({ ctx }) {
    yield ctx;
  }),
  /** 64 KiB per event as fast as the event loop allows: only a reading client keeps up. */
  flood: t.procedure.subscription(async function* ({ signal }) {
    const blob = "x".repeat(64 * 1024);
    let i = 0;
    while (!signal?.aborted) {
      yield { i: i++, blob };
      await nextTurn();
    }
  }),
});
type AppRouter = typeof router;

// ---------------------------------------------------------------------------------------------
// Helpers

const MAX_BODY = 10_000;
const SLOW_CONSUMER_BYTES = 1024 * 1024;

/** Queries/mutations batched over HTTP, subscriptions over SSE. */
function sseClient(url: string, opts: { token?: string; fetch?: typeof fetch } = {}) {
  const subscriptions: TRPCLink<AppRouter> = httpSubscriptionLink({
    url,
    // Node 20 has no global EventSource.
    EventSource,
    connectionParams: opts.token ? { token: opts.token } : undefined,
    eventSourceOptions: opts.fetch ? { fetch: opts.fetch } : undefined,
  });
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        true: subscriptions,
        false: httpBatchLink({ url, fetch: opts.fetch, headers: { authorization: "Bearer http-secret" } }),
      }),
    ],
  });
}

/** Queries/mutations batched over HTTP, subscriptions over WebSocket. */
function wsClientFor(server: TetherServer, token?: string) {
  const ws = createWSClient({
    url: server.wsUrl,
    // Node 20 has no global WebSocket; `ws` implements the same interface.
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: token ? { token } : undefined,
    retryDelayMs: () => 20,
  });
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        true: wsLink({ client: ws }),
        false: httpBatchLink({ url: `${server.url}/trpc` }),
      }),
    ],
  });
  return { ws, client };
}

/** Records every TCP socket the server accepts, so a test can cut them like a network failure. */
function trackSockets(server: TetherServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return sockets;
}

function errorCode(error: unknown): { code: unknown; httpStatus: unknown } {
  expect(error).toBeInstanceOf(TRPCClientError);
  const data = (error as TRPCClientError<AppRouter>).data;
  return { code: data?.code, httpStatus: data?.httpStatus };
}

/** Asserts ids are 0, 1, 2, … with no gap, repeat or restart. */
function expectConsecutive(ids: number[]) {
  expect(ids).toEqual(ids.map((_, index) => index));
}

// ---------------------------------------------------------------------------------------------

describe("createTetherServer", () => {
  let server: TetherServer;
  let sockets: Set<Socket>;
  let httpRequests = 0;
  const reported: TransportErrorInfo[] = [];

  beforeAll(async () => {
    server = await createTetherServer({
      router,
      createContext,
      onError: (info) => reported.push(info),
      limits: { maxBodyBytes: MAX_BODY, maxBufferedBytesPerConnection: SLOW_CONSUMER_BYTES },
      extraRoutes: (req, res) => {
        if (req.url !== "/healthz") return false;
        res.end("ok");
        return true;
      },
    });
    sockets = trackSockets(server);
    server.server.on("request", () => (httpRequests += 1));
  });
  afterAll(() => server.close());

  it("serves a batched query and mutation over HTTP", async () => {
    const client = sseClient(`${server.url}/trpc`);
    const before = httpRequests;
    const [hello, named, sum, other] = await Promise.all([
      client.hello.query(),
      client.hello.query({ name: "tether" }),
      client.add.mutate({ a: 2, b: 3 }),
      client.add.mutate({ a: 10, b: -1 }),
    ]);
    expect([hello, named, sum, other]).toEqual(["hello world", "hello tether", 5, 9]);
    // Two queries in one GET, two mutations in one POST.
    expect(httpRequests - before).toBe(2);
  });

  it("answers bad input with BAD_REQUEST", async () => {
    const client = sseClient(`${server.url}/trpc`);
    const error = await client.add.mutate({ a: "two" as unknown as number, b: 3 }).catch((e: unknown) => e);
    expect(errorCode(error)).toEqual({ code: "BAD_REQUEST", httpStatus: 400 });
    expect(reported.at(-1)).toMatchObject({ path: "add", type: "mutation", transport: "http" });
    expect(reported.at(-1)?.error.code).toBe("BAD_REQUEST");
    // A bad call in a batch does not spoil its neighbours.
    const [bad, good] = await Promise.allSettled([
      client.add.mutate({ a: 1 } as unknown as { a: number; b: number }),
      client.add.mutate({ a: 1, b: 1 }),
    ]);
    expect(bad.status).toBe("rejected");
    expect(good).toEqual({ status: "fulfilled", value: 2 });
  });

  it("rejects a body over maxBodyBytes with PAYLOAD_TOO_LARGE and keeps serving", async () => {
    const client = sseClient(`${server.url}/trpc`);
    const error = await client.echoLength.mutate({ text: "x".repeat(MAX_BODY * 2) }).catch((e: unknown) => e);
    expect(errorCode(error)).toEqual({ code: "PAYLOAD_TOO_LARGE", httpStatus: 413 });

    // A much larger raw body (5 MB) is refused without being buffered, and the process survives.
    const raw = await fetch(`${server.url}/trpc/echoLength`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "y".repeat(5_000_000) }),
    });
    expect(raw.status).toBe(413);
    await raw.body?.cancel();

    expect(await client.echoLength.mutate({ text: "fits" })).toBe(4);
  });

  it("closes a WebSocket that sends a message over maxBodyBytes (1009)", async () => {
    const raw = new WebSocket(server.wsUrl);
    await new Promise((resolve) => raw.once("open", resolve));
    const closed = new Promise<number>((resolve) => raw.once("close", (code) => resolve(code)));
    raw.send(JSON.stringify({ id: 1, method: "mutation", params: { path: "echoLength", input: { text: "z".repeat(MAX_BODY * 2) } } }));
    expect(await closed).toBe(1009);
  });

  it("delivers a subscription over WebSocket, with ctx from connectionParams", async () => {
    const { ws, client } = wsClientFor(server, "ws-secret");
    try {
      const seen: number[] = [];
      const sub = client.count.subscribe({ intervalMs: 5 }, { onData: (event) => seen.push(event.data.i) });
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(5));
      sub.unsubscribe();
      expectConsecutive(seen.slice(0, 5));

      const ctx = await new Promise<Ctx>((resolve, reject) => {
        client.whoamiLive.subscribe(undefined, { onData: resolve, onError: reject });
      });
      expect(ctx).toEqual({ transport: "ws", runtime: "node", token: "ws-secret" });
      expect(server.stats().wsConnections).toBe(1);
    } finally {
      await ws.close();
    }
    await vi.waitFor(() => expect(server.stats().wsConnections).toBe(0));
  });

  it("delivers a subscription over SSE, with ctx from connectionParams", async () => {
    const client = sseClient(`${server.url}/trpc`, { token: "sse-secret" });
    const seen: number[] = [];
    const sub = client.count.subscribe({ intervalMs: 5 }, { onData: (event) => seen.push(event.data.i) });
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(5));
    expect(server.stats().sseConnections).toBe(1);
    sub.unsubscribe();
    expectConsecutive(seen.slice(0, 5));
    await vi.waitFor(() => expect(server.stats().sseConnections).toBe(0));

    const ctx = await new Promise<Ctx>((resolve, reject) => {
      const s = client.whoamiLive.subscribe(undefined, {
        onData: (value) => {
          s.unsubscribe();
          resolve(value);
        },
        onError: reject,
      });
    });
    expect(ctx).toEqual({ transport: "http", runtime: "node", token: "sse-secret" });
    // Batched HTTP calls carry no connectionParams; the header is what identifies them.
    expect(await client.whoami.query()).toEqual({ transport: "http", runtime: "node", token: "http-secret" });
  });

  it("resumes a WebSocket subscription after the connection drops (tracked ids)", async () => {
    const { ws, client } = wsClientFor(server);
    let upgrades = 0;
    const countUpgrade = () => (upgrades += 1);
    server.server.on("upgrade", countUpgrade);
    try {
      const seen: number[] = [];
      const sub = client.count.subscribe({ intervalMs: 5 }, { onData: (event) => seen.push(event.data.i) });
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(5));
      // Cut every TCP connection, as a network failure would: no close frame, no goodbye.
      for (const socket of sockets) socket.destroy();
      const cutAt = seen.length;
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(cutAt + 10));
      sub.unsubscribe();
      expect(upgrades).toBeGreaterThanOrEqual(2); // the first connection and at least one reconnect
      // Picked up right after the last id it had seen: nothing repeated, nothing restarted at 0.
      expectConsecutive(seen);
    } finally {
      server.server.off("upgrade", countUpgrade);
      await ws.close();
    }
  });

  it("resumes a WebSocket subscription after a server-requested reconnect", async () => {
    const { ws, client } = wsClientFor(server);
    let upgrades = 0;
    const countUpgrade = () => (upgrades += 1);
    server.server.on("upgrade", countUpgrade);
    try {
      const seen: number[] = [];
      const sub = client.count.subscribe({ intervalMs: 5 }, { onData: (event) => seen.push(event.data.i) });
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(5));
      server.broadcastReconnect();
      const at = seen.length;
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(at + 10));
      sub.unsubscribe();
      expect(upgrades).toBe(2);
      expectConsecutive(seen);
    } finally {
      server.server.off("upgrade", countUpgrade);
      await ws.close();
    }
  });

  it("resumes an SSE subscription after the connection drops (tracked ids)", async () => {
    const client = sseClient(`${server.url}/trpc`);
    const seen: number[] = [];
    /** The resume id each (re)connection carried: EventSource's own retry sends `Last-Event-ID`. */
    const resumedFrom: (string | null)[] = [];
    const onRequest = (req: IncomingMessage) => {
      const url = new URL(req.url ?? "/", server.url);
      if (url.pathname !== "/trpc/count") return;
      const header = req.headers["last-event-id"];
      resumedFrom.push(url.searchParams.get("lastEventId") ?? (typeof header === "string" ? header : null));
    };
    server.server.on("request", onRequest);
    try {
      const sub = client.count.subscribe({ intervalMs: 5 }, { onData: (event) => seen.push(event.data.i) });
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(5));
      for (const socket of sockets) socket.destroy();
      const cutAt = seen.length;
      // EventSource waits its default retry delay (3 s in eventsource@3 and browsers) first.
      await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(cutAt + 10), { timeout: 10_000 });
      sub.unsubscribe();
      expectConsecutive(seen);
      expect(resumedFrom.length).toBeGreaterThanOrEqual(2);
      expect(resumedFrom[0]).toBeNull();
      // Bytes already on their way may still arrive after the cut, hence "at least".
      expect(Number(resumedFrom[1])).toBeGreaterThanOrEqual(cutAt - 1);
    } finally {
      server.server.off("request", onRequest);
    }
  });

  it("terminates a WebSocket client that stops reading (slow consumer)", async () => {
    const before = server.stats().slowConsumersTerminated;
    const raw = new WebSocket(server.wsUrl);
    raw.on("error", () => undefined);
    await new Promise((resolve) => raw.once("open", resolve));
    expect(server.stats().wsConnections).toBe(1);
    // Stop reading from the socket: the server's sends now pile up in its write buffer.
    (raw as unknown as { _socket: Socket })._socket.pause();
    raw.send(JSON.stringify({ id: 1, method: "subscription", params: { path: "flood" } }));

    await vi.waitFor(() => expect(server.stats().slowConsumersTerminated).toBe(before + 1), { timeout: 10_000 });
    await vi.waitFor(() => expect(server.stats().wsConnections).toBe(0));
    raw.terminate();
  });

  it("routes other paths to extraRoutes, else 404, and refuses foreign upgrades", async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, "ok"]);
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    await missing.body?.cancel();
    // Similar prefix is not the tRPC path.
    const lookalike = await fetch(`${server.url}/trpcx/hello`);
    expect(lookalike.status).toBe(404);
    await lookalike.body?.cancel();

    const foreign = new WebSocket(`${server.url.replace("http", "ws")}/elsewhere`);
    const outcome = await new Promise<string>((resolve) => {
      foreign.once("open", () => resolve("open"));
      foreign.once("error", () => resolve("refused"));
    });
    expect(outcome).toBe("refused");
  });
});

describe("createTetherServer.close()", () => {
  it("resolves promptly with WS, SSE and idle HTTP clients still connected", async () => {
    const server = await createTetherServer({ router, createContext, closeGraceMs: 500 });
    const { ws, client } = wsClientFor(server);
    const sse = sseClient(`${server.url}/trpc`);
    const wsSeen: number[] = [];
    const sseSeen: number[] = [];
    const wsSub = client.count.subscribe({}, { onData: (e) => wsSeen.push(e.data.i) });
    const sseSub = sse.count.subscribe({}, { onData: (e) => sseSeen.push(e.data.i) });
    await vi.waitFor(() => expect(wsSeen.length > 0 && sseSeen.length > 0).toBe(true));
    // A keep-alive HTTP connection left idle after a request.
    expect(await sse.hello.query()).toBe("hello world");
    expect(server.stats()).toMatchObject({ wsConnections: 1, sseConnections: 1 });

    // A close that waited for its clients to leave would never resolve (they stay connected).
    await server.close();
    expect(server.server.listening).toBe(false);
    expect(server.stats()).toMatchObject({ wsConnections: 0, sseConnections: 0 });

    wsSub.unsubscribe();
    sseSub.unsubscribe();
    await ws.close();
    await server.close(); // idempotent
  });
});

describe("nextRouteHandler", () => {
  const { GET, POST } = nextRouteHandler({ router, createContext, limits: { maxBodyBytes: MAX_BODY } });
  const base = "http://next.test/api/trpc";

  it("answers a query and a mutation as plain Requests", async () => {
    const query = await GET(new Request(`${base}/hello?input=${encodeURIComponent(JSON.stringify({ name: "next" }))}`));
    expect(query.status).toBe(200);
    expect(await query.json()).toEqual({ result: { data: "hello next" } });

    const mutation = await POST(
      new Request(`${base}/add`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ a: 20, b: 22 }),
      }),
    );
    expect(mutation.status).toBe(200);
    expect(await mutation.json()).toEqual({ result: { data: 42 } });

    const bad = await POST(
      new Request(`${base}/add`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ a: 1 }),
      }),
    );
    expect(bad.status).toBe(400);
  });

  /** Routes a real tRPC client's fetches into the handler, as Next.js would. */
  const nextFetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    return request.method === "POST" ? POST(request) : GET(request);
  }) as typeof fetch;

  it("serves a real client: batching, createContext shape, body limit", async () => {
    const client = sseClient(base, { fetch: nextFetch });
    const [hello, sum, who] = await Promise.all([client.hello.query(), client.add.mutate({ a: 1, b: 2 }), client.whoami.query()]);
    expect([hello, sum]).toEqual(["hello world", 3]);
    expect(who).toEqual({ transport: "http", runtime: "fetch", token: "http-secret" });

    const error = await client.echoLength.mutate({ text: "x".repeat(MAX_BODY * 2) }).catch((e: unknown) => e);
    expect(errorCode(error)).toEqual({ code: "PAYLOAD_TOO_LARGE", httpStatus: 413 });
  });

  it("gives createContext the caller's own Request (NextRequest keeps its helpers)", async () => {
    const seen: Request[] = [];
    const handler = nextRouteHandler({
      router,
      createContext: (opts: FetchContextOptions) => {
        seen.push(opts.req);
        return createContext(opts);
      },
    });
    const request = new Request(`${base}/add`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: 1, b: 1 }),
    });
    expect(await (await handler.POST(request)).json()).toEqual({ result: { data: 2 } });
    expect(seen).toEqual([request]);
    expect(seen[0]).toBe(request);
  });

  it("streams a subscription over SSE", async () => {
    const client = sseClient(base, { fetch: nextFetch, token: "next-secret" });
    const seen: number[] = [];
    const sub = client.count.subscribe({ intervalMs: 5 }, { onData: (event) => seen.push(event.data.i) });
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(5));
    sub.unsubscribe();
    expectConsecutive(seen.slice(0, 5));

    const ctx = await new Promise<Ctx>((resolve, reject) => {
      const s = client.whoamiLive.subscribe(undefined, {
        onData: (value) => {
          s.unsubscribe();
          resolve(value);
        },
        onError: reject,
      });
    });
    expect(ctx).toEqual({ transport: "http", runtime: "fetch", token: "next-secret" });
  });
});
