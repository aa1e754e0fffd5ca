// Regression: a read policy that answers `false` must admit no row. It used to become `{ OR: [] }`
// ANDed into the caller's where, and Prisma 6.19 drops an empty OR nested in an AND
// (`findFirst({ where: { id, AND: [{ OR: [] }] } })` returns the row): anonymous callers, and
// users whose policy function answered `false` (a removed member), read and streamed any note whose
// id they knew. Here through a real server: HTTP batch, WebSocket and SSE.
import { createTRPCClient, createWSClient, httpBatchLink, httpSubscriptionLink, splitLink, wsLink, type TRPCLink } from "@trpc/client";
import { EventSource } from "eventsource";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { z } from "zod";
import { initTether, type Policies } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { schema } from "../generated/tether/index.ts";
import { trpcCode, type Ctx } from "./support/crdtApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { userFromRequest } from "./support/userClient.ts";
import { readSharedNotes } from "./support/notePolicy.ts";
import { waitFor } from "./support/waitFor.ts";

/** The README's shape (see support/notePolicy.ts): `false` for anyone sharing no project. */
const policies: Policies<PrismaClient, Ctx> = {
  note: {
    read: readSharedNotes,
  },
};

function buildApp(store: AppStore) {
  const tether = initTether<Ctx>().create({ store, schema, policies });
  const router = tether.appRouter({
    noteById: tether.query.input(z.object({ id: z.string() })).query(({ ctx, input }) => ctx.db.note.findFirst({ where: { id: input.id } })),
  });
  return { tether, router };
}
type Router = ReturnType<typeof buildApp>["router"];

describe.each(engines)("a read policy answering false admits nothing, on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let app: ReturnType<typeof buildApp>;
  let server: TetherServer;
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    closeStore = made.close;
    app = buildApp(store);
    server = await createTetherServer({ router: app.router, createContext: userFromRequest, port: 0, closeGraceMs: 100 });
  });
  afterAll(async () => {
    await server.close();
    await app.tether.close();
    await closeStore();
  });
  beforeEach(async () => {
    await store.sql.query(`TRUNCATE "Note", "ProjectMember", "Task", "Project", "User" CASCADE`);
    await store.db.user.createMany({ data: ["olive", "mia"].map((id) => ({ id, email: `${id}@x`, name: id })) });
    await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "olive" } });
    await store.db.projectMember.create({ data: { id: "m1", projectId: "p1", userId: "mia" } });
    await store.db.note.create({ data: { id: "n1", projectId: "p1", body: "secret" } });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A client as `user` ("" = anonymous): subscriptions over WebSocket or SSE, queries over HTTP batch. */
  function client(user: string, transport: "ws" | "sse") {
    let subscriptions: TRPCLink<Router>;
    if (transport === "ws") {
      const wsClient = createWSClient({
        url: server.wsUrl,
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
        connectionParams: { user },
        retryDelayMs: () => 20,
      });
      cleanups.push(() => wsClient.close());
      subscriptions = wsLink({ client: wsClient });
    } else {
      subscriptions = httpSubscriptionLink({ url: `${server.url}/trpc`, EventSource, connectionParams: { user } });
    }
    return createTRPCClient<Router>({
      links: [
        splitLink({
          condition: (op) => op.type === "subscription",
          true: subscriptions,
          false: httpBatchLink({ url: `${server.url}/trpc`, headers: { "x-user": user } }),
        }),
      ],
    });
  }

  /** The first thing a subscription says: "data" or its error's code. */
  async function firstOf(subscribe: (handlers: { onData(): void; onError(error: unknown): void }) => { unsubscribe(): void }): Promise<string> {
    let outcome: string | null = null;
    const subscription = subscribe({
      onData: () => (outcome ??= "data"),
      onError: (error) => (outcome ??= String((error as { data?: { code?: string } }).data?.code ?? error)),
    });
    cleanups.push(() => subscription.unsubscribe());
    await waitFor("the subscription's first answer", () => outcome !== null);
    return outcome!;
  }

  const target = { model: "Note", id: "n1", field: "body" };

  /** Every way to read the note's document: pull, stream (WS and SSE), $live of the pull. */
  async function everyWay(user: string): Promise<Record<string, string>> {
    const ws = client(user, "ws");
    const sse = client(user, "sse");
    return {
      query: (await ws.noteById.query({ id: "n1" })) === null ? "NOT_FOUND" : "data",
      pull: await trpcCode(ws.$crdt.pull.query(target)),
      streamWs: await firstOf((h) => ws.$crdt.stream.subscribe(target, h)),
      streamSse: await firstOf((h) => sse.$crdt.stream.subscribe(target, h)),
      liveWs: await firstOf((h) => ws.$live.subscribe({ path: "$crdt.pull", input: target }, h)),
      liveSse: await firstOf((h) => sse.$live.subscribe({ path: "$crdt.pull", input: target }, h)),
    };
  }
  const refused = { query: "NOT_FOUND", pull: "NOT_FOUND", streamWs: "NOT_FOUND", streamSse: "NOT_FOUND", liveWs: "NOT_FOUND", liveSse: "NOT_FOUND" };

  it("anonymous callers get NOT_FOUND from $crdt.pull, $crdt.stream (WS, SSE) and $live of $crdt.pull", async () => {
    expect(await everyWay("")).toEqual(refused);
  });

  it("a member reads the note; once removed from the project, NOT_FOUND everywhere", async () => {
    const member = await everyWay("mia");
    expect(member).toEqual({ query: "data", pull: "OK", streamWs: "data", streamSse: "data", liveWs: "data", liveSse: "data" });
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await store.db.projectMember.delete({ where: { id: "m1" } });
    expect(await everyWay("mia")).toEqual(refused);
  });
});
