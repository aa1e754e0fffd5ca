// Client mistakes and database refusals become typed tRPC errors without internals, on every
// transport: foreign-key, unique and missing-row errors, a transaction that cannot start, hostile
// input depth; and no error shape carries a stack trace (HTTP, WebSocket, SSE).
import { createTRPCClient, createWSClient, httpBatchLink, httpSubscriptionLink, TRPCClientError, wsLink } from "@trpc/client";
import { EventSource } from "eventsource";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { z } from "zod";
import { initTether } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { REFERENCE_NOT_FOUND } from "@tether/server/internal";
import { schema } from "../generated/tether/index.ts";
import { ANONYMOUS, policies, userContext, type SecuredContext } from "./fixtures/securedApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { seedAliceAndBob } from "./support/seed.ts";
import { userFromRequest } from "./support/userClient.ts";
import { waitFor } from "./support/waitFor.ts";

/** A loaded machine runs PGlite slowly; these tests wait for conditions, this only bounds a hang. */
const SLOW = 120_000;

/** Words of Prisma's and Postgres' own messages that must never reach a client. */
const INTERNALS = /prisma|invocation|constraint|violates|_fkey|_pkey|Transaction API|\.ts:\d+/i;

function buildApp(store: AppStore, transaction?: { maxWait?: number }) {
  const tether = initTether<SecuredContext>().create({ store, schema, policies, transaction, limits: { rate: false } });
  const authed = { query: tether.query.use(tether.authed), mutation: tether.mutation.use(tether.authed) };
  const router = tether.appRouter({
    tasks: tether.router({
      add: authed.mutation
        .input(z.object({ projectId: z.string(), title: z.string() }))
        .mutation(({ ctx, input }) => ctx.db.task.create({ data: input })),
      move: authed.mutation
        .input(z.object({ id: z.string(), projectId: z.string() }))
        .mutation(({ ctx, input }) => ctx.db.task.update({ where: { id: input.id }, data: { projectId: input.projectId } })),
    }),
    projects: tether.router({
      createWithId: authed.mutation
        .input(z.object({ id: z.string(), name: z.string() }))
        .mutation(({ ctx, input }) => ctx.db.project.create({ data: { ...input, ownerId: ctx.user.id } })),
      byId: authed.query.input(z.object({ id: z.string() })).query(({ ctx, input }) => ctx.db.project.findUnique({ where: { id: input.id } })),
    }),
    users: tether.router({
      /** User has no policy: a missing row is Prisma's own P2025. */
      rename: authed.mutation
        .input(z.object({ id: z.string(), name: z.string() }))
        .mutation(({ ctx, input }) => ctx.db.user.update({ where: { id: input.id }, data: { name: input.name } })),
      count: authed.mutation.mutation(({ ctx }) => ctx.db.user.count()),
    }),
    /** An app bug: a plain Error (INTERNAL_SERVER_ERROR) whose shape must still carry no stack. */
    broken: tether.query.query(() => {
      throw new Error("kaboom");
    }),
  });
  return { tether, router };
}
type Router = ReturnType<typeof buildApp>["router"];

const createContext = (opts: Parameters<typeof userFromRequest>[0]): SecuredContext => {
  const { user } = userFromRequest(opts);
  return user ? userContext(user.id) : ANONYMOUS;
};

/** What a client can tell about an error: its code, message and HTTP status (and that no stack came). */
function shapeOf(error: unknown) {
  if (!(error instanceof TRPCClientError)) throw new Error(`not a client error: ${String(error)}`);
  const data = error.data as { code: string; httpStatus: number; stack?: unknown; retryable?: boolean };
  return { code: data.code, message: error.message, httpStatus: data.httpStatus, stack: data.stack, retryable: data.retryable };
}

/** `{ a: { a: … } }`, `depth` levels deep. */
function deepJson(depth: number): unknown {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe.each(engines)("error mapping on %s", (engine) => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function serve(transaction?: { maxWait?: number }) {
    const made = await createTestStore(engine);
    cleanups.push(made.close);
    await seedAliceAndBob(made.store, { alice: ["a1", "Alice's"], bob: ["b1", "Bob's"] });
    await made.store.db.task.create({ data: { id: "ta1", projectId: "a1", title: "hers" } });
    const app = buildApp(made.store, transaction);
    cleanups.push(() => app.tether.close());
    const server = await createTetherServer({ router: app.router, createContext });
    cleanups.push(() => server.close());
    return { server, store: made.store, ...app };
  }

  const http = (server: TetherServer, user: string) =>
    createTRPCClient<Router>({ links: [httpBatchLink({ url: `${server.url}/trpc`, headers: { "x-user": user } })] });

  function ws(server: TetherServer, user: string) {
    const socket = createWSClient({ url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, connectionParams: { user } });
    cleanups.push(() => socket.close());
    return createTRPCClient<Router>({ links: [wsLink({ client: socket })] });
  }

  it("a missing parent and another user's parent look the same: NOT_FOUND, one message, no internals", { timeout: SLOW }, async () => {
    const { server, store } = await serve();
    const alice = http(server, "alice");
    const missing = shapeOf(await alice.tasks.add.mutate({ projectId: "no-such-project", title: "x" }).catch((e: unknown) => e));
    const others = shapeOf(await alice.tasks.add.mutate({ projectId: "b1", title: "x" }).catch((e: unknown) => e));
    expect(missing).toEqual({ code: "NOT_FOUND", message: REFERENCE_NOT_FOUND, httpStatus: 404, stack: undefined, retryable: false });
    expect(others).toEqual(missing);
    // Moving a task there: the same answer again.
    expect(shapeOf(await alice.tasks.move.mutate({ id: "ta1", projectId: "no-such-project" }).catch((e: unknown) => e))).toEqual(missing);
    expect(shapeOf(await alice.tasks.move.mutate({ id: "ta1", projectId: "b1" }).catch((e: unknown) => e))).toEqual(missing);
    // Over the WebSocket too.
    expect(shapeOf(await ws(server, "alice").tasks.add.mutate({ projectId: "no-such-project", title: "x" }).catch((e: unknown) => e))).toEqual(missing);
    // Nothing was written; her own project still takes tasks.
    expect(await store.db.task.count()).toBe(1);
    await expect(alice.tasks.add.mutate({ projectId: "a1", title: "fine" })).resolves.toMatchObject({ projectId: "a1" });
  });

  it("a unique violation is CONFLICT, a missing row NOT_FOUND, with Tether's messages", async () => {
    const { server } = await serve();
    const alice = http(server, "alice");
    const conflict = shapeOf(await alice.projects.createWithId.mutate({ id: "a1", name: "again" }).catch((e: unknown) => e));
    expect(conflict).toMatchObject({ code: "CONFLICT", httpStatus: 409 });
    expect(conflict.message).not.toMatch(INTERNALS);
    const missing = shapeOf(await alice.users.rename.mutate({ id: "nobody", name: "x" }).catch((e: unknown) => e));
    expect(missing).toMatchObject({ code: "NOT_FOUND", message: "no such User", httpStatus: 404 });
  });

  it("no error shape carries a stack trace: HTTP (raw too), WebSocket, SSE", async () => {
    const { server } = await serve();
    const viaHttp = shapeOf(await http(server, "alice").broken.query().catch((e: unknown) => e));
    expect(viaHttp).toMatchObject({ code: "INTERNAL_SERVER_ERROR", stack: undefined });
    const raw = await (await fetch(`${server.url}/trpc/broken`, { headers: { "x-user": "alice" } })).text();
    expect(raw).not.toContain("stack");
    expect(raw).not.toMatch(/\.ts:\d+/);
    expect(shapeOf(await ws(server, "alice").broken.query().catch((e: unknown) => e))).toMatchObject({ code: "INTERNAL_SERVER_ERROR", stack: undefined });

    const sse = createTRPCClient<Router>({
      links: [httpSubscriptionLink({ url: `${server.url}/trpc`, EventSource, connectionParams: { user: "alice" } })],
    });
    let failure: unknown;
    const sub = sse.$live.subscribe({ path: "no.such.query", input: undefined }, { onError: (error) => (failure = error) });
    cleanups.push(() => sub.unsubscribe());
    await waitFor("the SSE subscription's error", () => failure !== undefined);
    expect(shapeOf(failure)).toMatchObject({ code: "NOT_FOUND", stack: undefined });
  });

  it("a lone UTF-16 surrogate in any string is BAD_REQUEST (not a database 500) on every transport, and nothing is written", async () => {
    // Found by the red team: "a\ud800b" is valid JSON, JavaScript keeps it, the database refuses it.
    const { server, store } = await serve();
    const lone = "a\ud800b";
    const alice = http(server, "alice");
    expect(shapeOf(await alice.tasks.add.mutate({ projectId: "a1", title: lone }).catch((e: unknown) => e))).toMatchObject({
      code: "BAD_REQUEST",
      httpStatus: 400,
    });
    expect(shapeOf(await alice.projects.byId.query({ id: lone }).catch((e: unknown) => e))).toMatchObject({ code: "BAD_REQUEST" });
    expect(shapeOf(await ws(server, "alice").tasks.add.mutate({ projectId: lone, title: "x" }).catch((e: unknown) => e))).toMatchObject({
      code: "BAD_REQUEST",
    });
    // A live query's input.
    let failure: unknown;
    const sub = ws(server, "alice").$live.subscribe({ path: "projects.byId", input: { id: lone } }, { onError: (error) => (failure = error) });
    cleanups.push(() => sub.unsubscribe());
    await waitFor("the live subscription's refusal", () => failure !== undefined);
    expect(shapeOf(failure)).toMatchObject({ code: "BAD_REQUEST" });
    // Well-formed astral text (a proper surrogate pair) is fine; nothing else was written.
    await expect(alice.tasks.add.mutate({ projectId: "a1", title: "ok \u{1F600}" })).resolves.toMatchObject({ title: "ok \u{1F600}" });
    expect(await store.db.task.count()).toBe(2);
  });

  it("a NUL character in a string is BAD_REQUEST (Postgres text cannot hold it), in a mutation, a query and a live input", async () => {
    const { server, store } = await serve();
    const nul = "a\u0000b";
    const alice = http(server, "alice");
    expect(shapeOf(await alice.tasks.add.mutate({ projectId: "a1", title: nul }).catch((e: unknown) => e))).toMatchObject({
      code: "BAD_REQUEST",
      httpStatus: 400,
    });
    expect(shapeOf(await alice.projects.byId.query({ id: nul }).catch((e: unknown) => e))).toMatchObject({ code: "BAD_REQUEST" });
    let failure: unknown;
    const sub = ws(server, "alice").$live.subscribe({ path: "projects.byId", input: { id: nul } }, { onError: (error) => (failure = error) });
    cleanups.push(() => sub.unsubscribe());
    await waitFor("the live subscription's refusal", () => failure !== undefined);
    expect(shapeOf(failure)).toMatchObject({ code: "BAD_REQUEST" });
    expect(await store.db.task.count()).toBe(1);
  });

  it("a depth-10,000 $live input or presence state is BAD_REQUEST, and the server keeps serving", async () => {
    const { server } = await serve();
    // JSON.stringify itself overflows at this depth: the message is written by hand, as an attacker would.
    const socket = new WebSocket(server.wsUrl, { headers: { "x-user": "alice" } });
    cleanups.push(() => socket.close());
    const replies: Array<{ id: number; error?: { data: { code: string; httpStatus: number; stack?: string } } }> = [];
    socket.on("message", (raw) => replies.push(JSON.parse(String(raw))));
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    const deep = '{"a":'.repeat(10_000) + "{}" + "}".repeat(10_000);
    socket.send(`{"id":1,"method":"subscription","params":{"path":"$live","input":{"path":"projects.byId","input":${deep}}}}`);
    await waitFor("the refusal", () => replies.some((r) => r.id === 1 && r.error));
    const refusal = replies.find((r) => r.id === 1)!.error!.data;
    expect(refusal).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400 });
    expect(refusal.stack).toBeUndefined();
    const client = ws(server, "alice");
    const presence = shapeOf(
      await http(server, "alice").$presence.set.mutate({ room: "r", clientId: "c", state: deepJson(1_000) }).catch((e: unknown) => e),
    );
    expect(presence).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400 });
    await expect(client.projects.byId.query({ id: "a1" })).resolves.toMatchObject({ id: "a1" });
  });

  it("a mutation whose transaction cannot start in time is SERVICE_UNAVAILABLE and retryable, not a 500", { timeout: SLOW }, async () => {
    const maxWait = 5;
    const { server, store, tether } = await serve({ maxWait });
    // Every connection busy: PGlite runs one transaction at a time; the Postgres pool has 10.
    const holders = engine === "pglite" ? 1 : 10;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    cleanups.push(() => release());
    let inside = 0;
    const held = Array.from({ length: holders }, () =>
      store.db.$transaction(
        async (tx) => {
          await tx.user.count();
          inside += 1;
          await gate;
        },
        { maxWait: 60_000, timeout: 120_000 },
      ),
    );
    await waitFor("every connection held", () => inside === holders, { timeoutMs: 60_000 });
    const call = http(server, "alice").users.count.mutate().catch((e: unknown) => e);
    await waitFor("the mutation waiting for a connection", () => tether.limits.mutations.stats().running === 1);
    // Prisma judges maxWait only once the driver hands it a connection: the mutation has to have
    // waited past it (a timer condition, so elapsed time is the condition here) before one frees up.
    const since = Date.now();
    await waitFor(`more than maxWait (${maxWait} ms) waited`, () => Date.now() - since > 4 * maxWait);
    release();
    const busy = shapeOf(await call);
    expect(busy).toMatchObject({ code: "SERVICE_UNAVAILABLE", httpStatus: 503, retryable: true });
    expect(busy.message).toMatch(/busy/);
    expect(busy.message).not.toMatch(INTERNALS);
    await Promise.all(held);
    // Nothing stays stuck: the next mutation runs.
    expect(tether.limits.mutations.stats()).toEqual({ running: 0, queued: 0 });
  });
});
