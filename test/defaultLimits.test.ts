// Limits an app gets without configuring any: per-caller rate limits by procedure kind
// (DEFAULT_RATE_LIMITS), the node's mutation slots, and better-auth's limiter on in test mode too.
// Through a real server, over HTTP and WebSocket, on both engines.
import { createTRPCClient, createWSClient, httpBatchLink, TRPCClientError, wsLink, type TRPCClient } from "@trpc/client";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { z } from "zod";
import { createTetherAuth, initTether, type TetherOptions } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { DEFAULT_AUTH_RATE_LIMITS, DEFAULT_RATE_LIMITS } from "@tether/server/internal";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { schema } from "../generated/tether/index.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { connectAs, userFromRequest } from "./support/userClient.ts";
import { waitFor } from "./support/waitFor.ts";

/** A loaded machine runs PGlite slowly; these tests wait for conditions, this only bounds a hang. */
const SLOW = 120_000;

type Limits = TetherOptions<PrismaClient, { user: { id: string } | null }>["limits"];

const codeOf = (error: unknown) => (error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : `not a client error: ${String(error)}`);

/** A tiny app: a query, a mutation that writes nothing, and one that waits for the test's gate. */
function buildLimitedApp(store: AppStore, limits: Limits) {
  const tether = initTether<{ user: { id: string } | null }>().create({ store, schema, limits });
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const started: string[] = [];
  const router = tether.appRouter({
    echo: tether.query.input(z.object({ n: z.number() })).query(({ input }) => input.n),
    ping: tether.mutation.input(z.object({ n: z.number() })).mutation(({ input }) => input.n),
    /** Holds its mutation slot until the test opens the gate; records the order slots were granted. */
    hold: tether.mutation.input(z.object({ tag: z.string() })).mutation(async ({ input }) => {
      started.push(input.tag);
      await gate;
      return input.tag;
    }),
  });
  return { tether, router, started, openGate };
}
type LimitedRouter = ReturnType<typeof buildLimitedApp>["router"];

/** Settles each call: "ok" or its error code. */
async function outcomes(calls: Array<Promise<unknown>>): Promise<string[]> {
  return Promise.all(calls.map((call) => call.then(() => "ok", (error: unknown) => String(codeOf(error)))));
}

const count = (list: string[], value: string) => list.filter((x) => x === value).length;

describe.each(engines)("default limits on %s", (engine) => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function serve(limits: Limits) {
    const made = await createTestStore(engine);
    cleanups.push(made.close);
    const app = buildLimitedApp(made.store, limits);
    cleanups.push(() => app.tether.close());
    const server = await createTetherServer({ router: app.router, createContext: userFromRequest });
    cleanups.push(() => server.close());
    cleanups.push(app.openGate); // a held mutation must not keep the server from closing
    return { ...app, server, store: made.store };
  }

  function httpAs(server: TetherServer, user: string): TRPCClient<LimitedRouter> {
    // Batches under any transport batch limit; the rate limit counts calls, not requests.
    return createTRPCClient<LimitedRouter>({ links: [httpBatchLink({ url: `${server.url}/trpc`, headers: { "x-user": user }, maxItems: 20 })] });
  }

  it("an app with no rate-limit config refuses a caller's mutations past DEFAULT_RATE_LIMITS.mutation (HTTP), per caller", { timeout: SLOW }, async () => {
    const { server } = await serve(undefined);
    const alice = httpAs(server, "alice");
    const budget = DEFAULT_RATE_LIMITS.mutation.points;
    const first = await outcomes(Array.from({ length: budget }, (_, n) => alice.ping.mutate({ n })));
    expect(count(first, "ok")).toBe(budget);
    const over = await alice.ping.mutate({ n: -1 }).catch((error: unknown) => error);
    expect(codeOf(over)).toBe("TOO_MANY_REQUESTS");
    expect((over as TRPCClientError<LimitedRouter>).data).toMatchObject({ httpStatus: 429, retryable: true });
    // Another caller has a budget of its own; the same caller's other procedures too.
    await expect(httpAs(server, "bob").ping.mutate({ n: 1 })).resolves.toBe(1);
    await expect(alice.echo.query({ n: 2 })).resolves.toBe(2);
  });

  it("refuses a caller's queries past DEFAULT_RATE_LIMITS.query over a WebSocket", { timeout: SLOW }, async () => {
    const { server } = await serve(undefined);
    const socket = createWSClient({ url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user: "alice" } });
    cleanups.push(() => socket.close());
    const ws = createTRPCClient<LimitedRouter>({ links: [wsLink({ client: socket })] }).echo;
    const budget = DEFAULT_RATE_LIMITS.query.points;
    // In chunks, within the transport's per-message batch and per-socket in-flight limits.
    const first: string[] = [];
    for (let n = 0; n < budget; n += 20) first.push(...(await outcomes(Array.from({ length: Math.min(20, budget - n) }, (_, i) => ws.query({ n: n + i })))));
    expect(count(first, "ok")).toBe(budget);
    expect(codeOf(await ws.query({ n: -1 }).catch((e: unknown) => e))).toBe("TOO_MANY_REQUESTS");
  });

  it("`limits: { rate: false }` turns rate limits off", async () => {
    const { server, tether } = await serve({ rate: false });
    expect(tether.limits.rate).toBeNull();
    const alice = httpAs(server, "alice");
    const all = await outcomes(Array.from({ length: DEFAULT_RATE_LIMITS.mutation.points + 5 }, (_, n) => alice.ping.mutate({ n })));
    expect(count(all, "ok")).toBe(all.length);
  });

  it("an injected budget replaces only the rules it sets; $live opens are counted over a WebSocket", async () => {
    const { server, tether } = await serve({ rate: { mutation: { points: 2, duration: 60 }, procedures: { $live: { points: 2, duration: 60 } } } });
    expect(tether.limits.rate!.ruleFor("echo", "query")).toEqual(DEFAULT_RATE_LIMITS.query);
    expect(tether.limits.rate!.ruleFor("$crdt.push", "mutation")).toEqual(DEFAULT_RATE_LIMITS.procedures["$crdt.push"]);
    const alice = httpAs(server, "alice");
    expect(await outcomes([1, 2, 3].map((n) => alice.ping.mutate({ n })))).toEqual(["ok", "ok", "TOO_MANY_REQUESTS"]);

    const { trpc } = connectAs<LimitedRouter>(server, "alice", cleanups);
    const results: string[] = [];
    for (let n = 0; n < 3; n++) {
      const sub = trpc.$live.subscribe(
        { path: "echo", input: { n } },
        { onData: () => results.push("data"), onError: (error) => results.push(String(codeOf(error))) },
      );
      cleanups.push(() => sub.unsubscribe());
      await waitFor(`live subscription ${n} answered`, () => results.length === n + 1);
    }
    expect(results).toEqual(["data", "data", "TOO_MANY_REQUESTS"]);
  });

  it("queues mutations past the node's slots, serves waiting callers in turn, and refuses past the queue bound", async () => {
    const { server, tether, started, openGate } = await serve({ mutations: { maxConcurrent: 1, maxQueued: 5 } });
    const alice = httpAs(server, "alice");
    const bob = httpAs(server, "bob");
    const calls: Array<Promise<unknown>> = [alice.hold.mutate({ tag: "a1" })];
    await waitFor("a1 holds the only slot", () => started.length === 1);
    for (const tag of ["a2", "a3", "a4"]) calls.push(alice.hold.mutate({ tag }));
    await waitFor("alice's three queued", () => tether.limits.mutations.stats().queued === 3);
    calls.push(bob.hold.mutate({ tag: "b1" }));
    await waitFor("bob queued", () => tether.limits.mutations.stats().queued === 4);
    calls.push(alice.hold.mutate({ tag: "a5" }));
    await waitFor("a5 queued", () => tether.limits.mutations.stats().queued === 5);
    // The queue is full: refused at once, retryable, nothing started.
    const refused = await bob.hold.mutate({ tag: "b2" }).catch((error: unknown) => error);
    expect(codeOf(refused)).toBe("SERVICE_UNAVAILABLE");
    expect((refused as TRPCClientError<LimitedRouter>).data).toMatchObject({ httpStatus: 503, retryable: true });
    openGate();
    expect(await outcomes(calls)).toEqual(["ok", "ok", "ok", "ok", "ok", "ok"]);
    // One slot at a time, alice and bob in turn: bob's one mutation did not wait behind all of alice's.
    expect(started).toEqual(["a1", "a2", "b1", "a3", "a4", "a5"]);
    expect(tether.limits.mutations.stats()).toEqual({ running: 0, queued: 0 });
  });

  it("better-auth's limiter is on in test mode: sign-in attempts per IP, then per account from any IP, get 429", { timeout: SLOW }, async () => {
    const made = await createTestStore(engine);
    cleanups.push(made.close);
    const auth = createTetherAuth({ store: made.store, schema, secret: "default-limits-test-secret-0123456789abcdef" });
    cleanups.push(() => auth.close());
    const server = await createTetherServer({ router: buildLimitedApp(made.store, undefined).router, createContext: userFromRequest, extraRoutes: auth.routes });
    cleanups.push(() => server.close());
    // better-auth keeps its counters per process: each engine's run uses its own addresses and account.
    const net = engine === "pglite" ? "10.1" : "10.2";
    const email = `victim-${engine}@example.com`;
    await auth.auth.api.signUpEmail({ body: { email, password: "the right password", name: "Victim" } });
    const signIn = (ip: string, body: { email: string; password: string }) =>
      fetch(`${server.url}/api/auth/sign-in/email`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: server.url, "x-forwarded-for": ip },
        body: JSON.stringify(body),
      });

    // Per IP: wrong passwords for different accounts from one address.
    const perIp = DEFAULT_AUTH_RATE_LIMITS.signIn.max;
    for (let n = 0; n < perIp; n++) expect((await signIn(`${net}.0.1`, { email: `nobody${n}@example.com`, password: "wrong password" })).status).toBe(401);
    const refusedIp = await signIn(`${net}.0.1`, { email: `nobody-last@example.com`, password: "wrong password" });
    expect(refusedIp.status).toBe(429);
    expect(refusedIp.headers.get("x-retry-after")).toMatch(/^\d+$/);

    // Per account: one guess from each of many addresses; then even the right password waits.
    const perEmail = DEFAULT_AUTH_RATE_LIMITS.signInPerEmail.max;
    for (let n = 0; n < perEmail; n++) expect((await signIn(`${net}.1.${n}`, { email, password: "wrong password" })).status).toBe(401);
    const refusedEmail = await signIn(`${net}.2.1`, { email, password: "the right password" });
    expect(refusedEmail.status).toBe(429);
    expect(((await refusedEmail.json()) as { message: string }).message).toMatch(/too many sign-in attempts/);
  });
});
