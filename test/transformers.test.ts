// Data transformers end to end, on both engines: a router with superjson (Prisma's Decimal
// registered) served by createTetherServer, the client core over WebSocket and over SSE. Queries,
// mutations with Date/BigInt inputs, and live queries whose full values and patches carry Date,
// BigInt, Decimal and Bytes; the transformer runs once per live result however many subscribers
// get it; the app's own tRPC links compose with Tether's.
import { QueryClient } from "@tanstack/query-core";
import { loggerLink, type TRPCLink } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import { observable } from "@trpc/server/observable";
import { EventSource } from "eventsource";
import type { SuperJSON } from "superjson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  createTetherClient,
  watchQuery,
  type LiveMessage,
  type LiveStatus,
  type TetherClient,
  type TetherClientOptions,
} from "@tether/client";
import { LIVE_PROCEDURE } from "@tether/protocol";
import type { DataTransformer } from "@trpc/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import { Prisma } from "../generated/prisma/browser.ts";
import { buildReadingsApp, readingsSuperjson, type Decimal, type ReadingsRouter } from "./fixtures/readingsApp.ts";
import { engines, type AppStore } from "./support/databases.ts";
import { storeForSuite } from "./support/suiteStore.ts";
import { waitFor } from "./support/waitFor.ts";

type Transport = "ws" | "sse";

/** A reading as the client gets it through superjson: typed, not strings. */
interface Reading {
  id: string;
  sensor: string;
  takenAt: Date;
  count: bigint;
  amount: Decimal;
  raw: Uint8Array | null;
}

const BIG = 2n ** 60n + 7n; // past Number.MAX_SAFE_INTEGER: a JSON number would lose its low digits

/** The app's transformer, counting what it serializes (the server's side of it). */
function counted(superjson: SuperJSON): { transformer: DataTransformer; serialized: unknown[] } {
  const serialized: unknown[] = [];
  return {
    serialized,
    transformer: {
      serialize: (value: unknown) => {
        serialized.push(value);
        return superjson.serialize(value);
      },
      deserialize: (value: unknown) => superjson.deserialize(value as Parameters<SuperJSON["deserialize"]>[0]),
    },
  };
}

/** A link of the app's: records every live message the client receives, after the transformer. */
function recordLiveMessages(into: LiveMessage[]): TRPCLink<AnyRouter> {
  return () =>
    ({ op, next }) =>
      observable((observer) =>
        next(op).subscribe({
          next(envelope) {
            const result = envelope.result as { type?: string; data?: { data?: LiveMessage } };
            if (op.path === LIVE_PROCEDURE && (result.type === "data" || result.type === undefined) && result.data?.data) {
              into.push(result.data.data);
            }
            observer.next(envelope);
          },
          error: (error) => observer.error(error),
          complete: () => observer.complete(),
        }),
      );
}

const queryKeyOf = (path: string, input: unknown) => [path.split("."), { input, type: "query" }];

/** A client core of `server` whose subscriptions go over `transport`. */
function clientOf<TRouter extends AnyRouter>(server: TetherServer, transport: Transport, options: Partial<TetherClientOptions> = {}): TetherClient<TRouter> {
  return createTetherClient<TRouter>({
    url: `${server.url}/trpc`,
    subscriptions:
      transport === "ws"
        ? { transport: "ws", url: server.wsUrl, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket }
        : { transport: "sse", EventSource },
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    queryClient: new QueryClient({ defaultOptions: { queries: { retry: false } } }),
    ...options,
  });
}

describe.each(engines)("data transformers end to end on %s", (engine) => {
  let store: AppStore;
  storeForSuite(engine, (s) => (store = s));
  const serverSide = counted(readingsSuperjson());
  let app: ReturnType<typeof buildReadingsApp<DataTransformer>>;
  let server: TetherServer;
  const clients: TetherClient<ReadingsRouter>[] = [];

  beforeAll(async () => {
    app = buildReadingsApp(store, serverSide.transformer);
    await app.tether.start();
    server = await createTetherServer({
      router: app.router,
      createContext: ({ req }) => ({ user: { id: "alice" }, tenant: (req.headers["x-tenant"] as string | undefined) ?? undefined }),
      port: 0,
      closeGraceMs: 100,
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await app?.tether.close();
  });

  function clientOver(transport: Transport, options: Partial<TetherClientOptions> = {}) {
    // The client's own superjson instance, set up the same way as the server's.
    const client = clientOf<ReadingsRouter>(server, transport, { transformer: readingsSuperjson(), ...options });
    clients.push(client);
    return client;
  }

  function watch<T>(client: TetherClient<ReadingsRouter>, path: string, input: unknown) {
    const state: { data: T | undefined; status: LiveStatus; error: unknown } = { data: undefined, status: "idle", error: null };
    const stop = watchQuery<T>(client, { path, input, queryKey: queryKeyOf(path, input) }, (data, status, error) => {
      Object.assign(state, { data, status, error });
    });
    return { state, stop };
  }

  function expectTyped(row: Reading | undefined, expected: { takenAt: Date; count: bigint; amount: string }) {
    expect(row?.takenAt).toBeInstanceOf(Date);
    expect(row?.takenAt.toISOString()).toBe(expected.takenAt.toISOString());
    expect(typeof row?.count).toBe("bigint");
    expect(row?.count).toBe(expected.count);
    expect(Prisma.Decimal.isDecimal(row?.amount)).toBe(true);
    expect(row?.amount.toString()).toBe(expected.amount);
  }

  describe.each<Transport>(["ws", "sse"])("over %s", (transport) => {
    it("queries, mutations and live full values and patches carry Date, BigInt, Decimal and Bytes", async () => {
      const sensor = `s-${transport}`;
      const messages: LiveMessage[] = [];
      const client = clientOver(transport, { links: [recordLiveMessages(messages)] });

      // A mutation with Date, BigInt and Bytes inputs returns the row typed.
      const first = { sensor, takenAt: new Date("2026-12-01T10:00:00.123Z"), count: BIG, amount: "12.3456", raw: new Uint8Array([0, 1, 255]) };
      const added = (await client.trpc.readings.add.mutate(first)) as Reading;
      expectTyped(added, first);
      expect(added.raw).toEqual(new Uint8Array([0, 1, 255]));

      // A query with a Date input (a `where` on it), typed rows back.
      const queried = (await client.trpc.readings.bySensor.query({ sensor, since: new Date("2026-12-01T00:00:00Z") })) as Reading[];
      expect(queried).toHaveLength(1);
      expectTyped(queried[0], first);

      // Live, with the same Date input: the full value is typed.
      const input = { sensor, since: new Date("2026-12-01T00:00:00Z") };
      const live = watch<Reading[]>(client, "readings.bySensor", input);
      const single = watch<Reading | null>(client, "readings.latest", { sensor });
      await waitFor("the full value", () => live.state.data?.length === 1, { fatal: () => live.state.error });
      expectTyped(live.state.data![0], first);
      expect(live.state.data![0]!.raw).toEqual(new Uint8Array([0, 1, 255]));
      await waitFor("the single row", () => single.state.data?.id === added.id, { fatal: () => single.state.error });
      expectTyped(single.state.data!, first);

      // A second reading reaches the live list as a patch whose row is typed (read-your-writes).
      const second = { sensor, takenAt: new Date("2026-12-01T11:30:00Z"), count: 3n, amount: "0.0001" };
      const { commits } = await client.withCommits(() => client.trpc.readings.add.mutate(second));
      await client.waitForCommit(commits);
      expect(live.state.data).toHaveLength(2);
      expectTyped(live.state.data![1], second);
      expectTyped(live.state.data![0], first); // kept from before the patch, still typed
      expectTyped(single.state.data!, second);
      const patches = messages.filter((m): m is Extract<LiveMessage, { kind: "patch" }> => m.kind === "patch");
      expect(patches.length).toBeGreaterThan(0);
      expectTyped(patches.at(-1)!.patch.upsert[0] as unknown as Reading, second);

      // An update of a BigInt column: another patch, applied onto the deserialized rows.
      const patchesBefore = patches.length;
      await client.trpc.readings.setCount.mutate({ id: added.id, count: BIG + 1n });
      await waitFor("the new count", () => live.state.data?.[0]?.count === BIG + 1n, { fatal: () => live.state.error });
      expect(messages.filter((m) => m.kind === "patch").length).toBeGreaterThan(patchesBefore);
      expectTyped(live.state.data![0], { ...first, count: BIG + 1n });
      expect(live.state.data![0]).not.toBe(added);

      // Bytes: the change log leaves them out, but the re-run's hash sees new bytes and patches.
      await client.trpc.readings.setRaw.mutate({ id: added.id, raw: new Uint8Array([9, 8]) });
      await waitFor("the new bytes", () => live.state.data?.[0]?.raw?.length === 2, { fatal: () => live.state.error });
      expect(live.state.data![0]!.raw).toEqual(new Uint8Array([9, 8]));
      expect(live.state.status).toBe("live");
      live.stop();
      single.stop();
    });

    it("runs the transformer once per live result, however many subscribers get it", async () => {
      const sensor = `fanout-${transport}`;
      const seed = await clientOver(transport).trpc.readings.add.mutate({ sensor, takenAt: new Date(0), count: 1n, amount: "1" });
      const N = 20;
      // One client per subscriber: N sockets (or N streams), one query group on the server.
      const watches = Array.from({ length: N }, () => watch<Reading[]>(clientOver(transport), "readings.bySensor", { sensor }));
      await waitFor("every subscriber's full value", () => watches.every((w) => w.state.data?.length === 1), { timeoutMs: 30_000 });
      const from = serverSide.serialized.length;
      await clientOver(transport).trpc.readings.add.mutate({ sensor, takenAt: new Date(1), count: 2n, amount: "2" });
      await waitFor("every subscriber's patch", () => watches.every((w) => w.state.data?.length === 2), { timeoutMs: 30_000 });
      for (const w of watches) expect(w.state.data![1]!.takenAt).toEqual(new Date(1));

      // What the transformer walked for the change: the mutation's own result, and the live patch once.
      const walked = serverSide.serialized.slice(from);
      const liveParts = walked.filter((value) => typeof value === "object" && value !== null && "upsert" in value);
      expect(liveParts).toHaveLength(1);
      // And for the full values every subscriber got first: no result object serialized twice.
      const rowLists = serverSide.serialized.filter(
        (value) => Array.isArray(value) && (value as Reading[]).some((row) => row.id === seed.id),
      );
      expect(rowLists.length).toBeGreaterThan(0);
      expect(new Set(rowLists).size).toBe(rowLists.length);
      expect(rowLists.length).toBeLessThan(N);
      for (const w of watches) w.stop();
    });
  });

  it("the app's own links run before Tether's: loggerLink sees calls, a link's per-call value reaches the server", async () => {
    const logged: string[] = [];
    const tenantLink: TRPCLink<AnyRouter> = () =>
      ({ op, next }) =>
        next({ ...op, context: { ...op.context, tenant: "acme" } });
    const client = clientOver("ws", {
      links: [
        loggerLink({ logger: (entry) => logged.push(`${entry.direction} ${entry.type} ${entry.path}`), colorMode: "none" }),
        tenantLink,
      ],
      headers: ({ opList }) => ({ "x-tenant": String(opList[0].context.tenant ?? "") }),
    });
    expect(await client.trpc.tenant.query()).toBe("acme");
    const row = (await client.trpc.readings.add.mutate({ sensor: "links", takenAt: new Date(5), count: 5n, amount: "5" })) as Reading;
    expect(row.takenAt).toEqual(new Date(5));
    const live = watch<Reading[]>(client, "readings.bySensor", { sensor: "links" });
    await waitFor("the live value", () => live.state.data?.length === 1, { fatal: () => live.state.error });
    live.stop();
    expect(logged).toEqual(
      expect.arrayContaining(["up query tenant", "down query tenant", "up mutation readings.add", "down mutation readings.add", `up subscription ${LIVE_PROCEDURE}`]),
    );
  });
});

describe.each(engines)("live queries without a transformer on %s", (engine) => {
  let store: AppStore;
  storeForSuite(engine, (s) => (store = s));
  let app: ReturnType<typeof buildReadingsApp>;
  let server: TetherServer;
  const clients: TetherClient<ReturnType<typeof buildReadingsApp>["router"]>[] = [];

  beforeAll(async () => {
    app = buildReadingsApp(store);
    await app.tether.start();
    server = await createTetherServer({ router: app.router, createContext: () => ({ user: { id: "alice" } }), port: 0, closeGraceMs: 100 });
    await store.db.reading.create({ data: { sensor: "plain", takenAt: new Date("2026-12-01T10:00:00Z"), count: 5n, amount: "1.5", raw: new Uint8Array([1, 2]) } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await app?.tether.close();
  });

  describe.each<Transport>(["ws", "sse"])("over %s", (transport) => {
    const clientOver = () => {
      const client = clientOf<ReturnType<typeof buildReadingsApp>["router"]>(server, transport);
      clients.push(client);
      return client;
    };

    it("a result holding a BigInt ends the subscription with one clear, permanent error", async () => {
      const client = clientOver();
      const input = { sensor: "plain" };
      let status: LiveStatus = "idle";
      let error: unknown = null;
      const stop = watchQuery(client, { path: "readings.bySensor", input, queryKey: queryKeyOf("readings.bySensor", input) }, (_data, s, e) => {
        status = s;
        error = e;
      });
      await waitFor("the error", () => status === "error");
      expect((error as { data?: { code?: string } }).data?.code).toBe("UNPROCESSABLE_CONTENT");
      expect((error as Error).message).toMatch(/readings\.bySensor returned a BigInt \(at \[0\]\.count\).*transformer/);
      stop();
      // The same over HTTP: tRPC's own JSON error (documented), never a partial body.
      await expect(client.trpc.readings.bySensor.query(input)).rejects.toThrow(/BigInt/);
    });

    it("Dates, Decimals and Bytes go out as JSON writes them, and hash and patch like any value", async () => {
      const client = clientOver();
      const input = { sensor: `plain-${transport}` };
      const { id } = await store.db.reading.create({ data: { ...input, takenAt: new Date("2026-12-01T10:00:00Z"), count: 1n, amount: "1.5", raw: new Uint8Array([1, 2]) } });
      type JsonRow = { id: string; takenAt: string; amount: string; raw: Record<string, number> | null };
      let data: JsonRow[] | undefined;
      let error: unknown = null;
      const stop = watchQuery<JsonRow[]>(client, { path: "readings.withoutCount", input, queryKey: queryKeyOf("readings.withoutCount", input) }, (d, _s, e) => {
        data = d;
        error = e;
      });
      await waitFor("the full value", () => data?.length === 1, { fatal: () => error });
      expect(data![0]).toEqual({ id, takenAt: "2026-12-01T10:00:00.000Z", amount: "1.5", raw: { 0: 1, 1: 2 } });
      // Only the bytes change (the change log leaves them out): the re-run's hash still sees it.
      await store.db.reading.update({ where: { id }, data: { raw: new Uint8Array([3]) } });
      await waitFor("the new bytes", () => data?.[0]?.raw?.[1] === undefined, { fatal: () => error });
      expect(data![0]!.raw).toEqual({ 0: 3 });
      await store.db.reading.update({ where: { id }, data: { amount: "2.25", takenAt: new Date("2026-12-02T00:00:00Z") } });
      await waitFor("the new amount", () => data?.[0]?.amount === "2.25", { fatal: () => error });
      expect(data![0]!.takenAt).toBe("2026-12-02T00:00:00.000Z");
      stop();
    });
  });
});

