/**
 * Red team (issue 16, transformers): a real server (createTetherServer) with a router over the
 * `Reading` model (Date, BigInt, Decimal, Bytes) and a nested relation, and real clients.
 * Built only from README.md and docs/*.md.
 */
import { createServer as createNetServer } from "node:net";
import { z } from "zod";
import { initTether, type Engine } from "@tether/server";
import { createTetherServer } from "@tether/server/adapters/node";
import { createTetherClient, watchQuery } from "@tether/client";
import { WebSocket } from "ws";
import { EventSource } from "eventsource";
import { schema } from "../../generated/tether/index.ts";
import { Prisma } from "../../generated/prisma/client.ts";
import { waitFor as waitForCondition } from "../support/waitFor.ts";
import { createTestStore } from "../support/databases.ts";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The red team's positional form of test/support/waitFor (timeout as the third argument). */
export function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  return waitForCondition(what, condition, { timeoutMs });
}

type Transformer = any;

export function makeRouter(tether: any) {
  return tether.appRouter({
    readings: tether.router({
      list: tether.query
        .input(z.object({ sensor: z.string() }))
        .query(({ ctx, input }: any) =>
          ctx.db.reading.findMany({ where: { sensor: input.sensor }, orderBy: { id: "asc" } }),
        ),
      noCount: tether.query
        .input(z.object({ sensor: z.string() }))
        .query(({ ctx, input }: any) =>
          ctx.db.reading.findMany({
            where: { sensor: input.sensor },
            orderBy: { id: "asc" },
            select: { id: true, sensor: true, takenAt: true, amount: true, raw: true },
          }),
        ),
      one: tether.query
        .input(z.object({ id: z.string() }))
        .query(({ ctx, input }: any) => ctx.db.reading.findUnique({ where: { id: input.id } })),
      add: tether.mutation
        .input(
          z.object({
            id: z.string().optional(),
            sensor: z.string(),
            takenAt: z.date(),
            count: z.coerce.bigint(),
            amount: z.string(),
            raw: z.instanceof(Uint8Array).nullable().optional(),
          }),
        )
        .mutation(({ ctx, input }: any) =>
          ctx.db.reading.create({
            data: {
              id: input.id,
              sensor: input.sensor,
              takenAt: input.takenAt,
              count: input.count,
              amount: new Prisma.Decimal(input.amount),
              raw: input.raw ?? null,
            },
          }),
        ),
      addPlain: tether.mutation
        .input(z.object({ id: z.string(), sensor: z.string(), takenAt: z.string(), count: z.string(), amount: z.string() }))
        .mutation(({ ctx, input }: any) =>
          ctx.db.reading.create({
            data: { id: input.id, sensor: input.sensor, takenAt: new Date(input.takenAt), count: BigInt(input.count), amount: new Prisma.Decimal(input.amount) },
          }),
        ),
      update: tether.mutation
        .input(
          z.object({
            id: z.string(),
            sensor: z.string().optional(),
            takenAt: z.date().optional(),
            count: z.coerce.bigint().optional(),
            amount: z.string().optional(),
            raw: z.instanceof(Uint8Array).nullable().optional(),
          }),
        )
        .mutation(({ ctx, input }: any) => {
          const data: any = {};
          if (input.sensor !== undefined) data.sensor = input.sensor;
          if (input.takenAt !== undefined) data.takenAt = input.takenAt;
          if (input.count !== undefined) data.count = input.count;
          if (input.amount !== undefined) data.amount = new Prisma.Decimal(input.amount);
          if (input.raw !== undefined) data.raw = input.raw;
          return ctx.db.reading.update({ where: { id: input.id }, data });
        }),
      remove: tether.mutation
        .input(z.object({ id: z.string() }))
        .mutation(({ ctx, input }: any) => ctx.db.reading.delete({ where: { id: input.id } })),
      echo: tether.query
        .input(z.object({ at: z.date(), n: z.bigint() }))
        .query(({ input }: any) => ({ at: input.at, n: input.n, isDate: input.at instanceof Date, t: typeof input.n })),
      since: tether.query
        .input(z.object({ sensor: z.string(), since: z.date() }))
        .query(({ ctx, input }: any) =>
          ctx.db.reading.findMany({ where: { sensor: input.sensor, takenAt: { gte: input.since } }, orderBy: { id: "asc" } }),
        ),
      /** Returns user-provided data as is (as a Json column would). */
      spoof: tether.query.input(z.any()).query(({ input }: any) => input),
      big: tether.query
        .input(z.object({ n: z.number(), size: z.number() }))
        .query(({ input }: any) =>
          Array.from({ length: input.n }, (_, i) => ({ id: `b${i}`, at: new Date(i), n: BigInt(i), s: "x".repeat(input.size) })),
        ),
      echoMut: tether.mutation
        .input(z.object({ at: z.date(), n: z.bigint() }))
        .mutation(({ input }: any) => ({ at: input.at, n: input.n, isDate: input.at instanceof Date, t: typeof input.n })),
    }),
    projects: tether.router({
      withTasks: tether.query
        .input(z.object({ id: z.string() }))
        .query(({ ctx, input }: any) =>
          ctx.db.project.findUnique({
            where: { id: input.id },
            include: { tasks: { orderBy: { position: "asc" }, include: { attachments: true } } },
          }),
        ),
      touchTask: tether.mutation
        .input(z.object({ id: z.string(), title: z.string().optional(), done: z.boolean().optional() }))
        .mutation(({ ctx, input }: any) =>
          ctx.db.task.update({ where: { id: input.id }, data: { title: input.title, done: input.done } }),
        ),
    }),
  });
}

export interface Harness {
  port: number;
  url: string;
  store: any;
  tether: any;
  router: any;
  server: any;
  close(): Promise<void>;
  restart(): Promise<void>;
}

export async function startServer(
  engine: Engine,
  opts: { transformer?: Transformer; port?: number; policies?: any; createContext?: (o: any) => any } = {},
): Promise<Harness> {
  const made = await createTestStore(engine);
  const store = made.store;
  const port = opts.port ?? (await freePort());
  const build = async () => {
    const tether = initTether<{ user: null }>().create({
      store,
      schema,
      ...(opts.transformer ? { transformer: opts.transformer } : {}),
      ...(opts.policies ? { policies: opts.policies } : {}),
      limits: { rate: false },
    } as any);
    const router = makeRouter(tether);
    await tether.start();
    const server = await createTetherServer({
      router,
      createContext: opts.createContext ?? (() => ({ user: null })),
      port,
      path: "/trpc",
    } as any);
    return { tether, router, server };
  };
  let cur = await build();
  const h: Harness = {
    port,
    url: `http://127.0.0.1:${port}/trpc`,
    store,
    get tether() {
      return cur.tether;
    },
    get router() {
      return cur.router;
    },
    get server() {
      return cur.server;
    },
    async restart() {
      await cur.server.close();
      await cur.tether.close();
      cur = await build();
    },
    async close() {
      await cur.server.close().catch(() => undefined);
      await cur.tether.close().catch(() => undefined);
      await made.close();
    },
  } as Harness;
  return h;
}

/** A client of the red team's untyped router: `trpc` is loosely typed (calls by path, as a script would). */
export function makeClient(url: string, transport: "ws" | "sse", transformer?: Transformer, extra: any = {}): ReturnType<typeof createTetherClient<any>> & { trpc: any } {
  const { connectionParams, ...rest } = extra;
  return createTetherClient<any>({
    url,
    ...(transformer ? { transformer } : {}),
    subscriptions: {
      ...(transport === "ws"
        ? { transport: "ws", WebSocket: WebSocket as unknown as typeof globalThis.WebSocket }
        : { transport: "sse", EventSource }),
      ...(connectionParams ? { connectionParams } : {}),
    },
    ...rest,
  } as any);
}

export interface Watched<T> {
  values: (T | undefined)[];
  statuses: string[];
  errors: unknown[];
  last(): T | undefined;
  stop(): void;
}

export function watch<T>(client: any, path: string, input: unknown): Watched<T> {
  const w: Watched<T> = {
    values: [],
    statuses: [],
    errors: [],
    last: () => w.values[w.values.length - 1],
    stop: () => undefined,
  };
  w.stop = watchQuery<T>(
    client,
    { path, input, queryKey: [path.split("."), { input, type: "query" }] } as any,
    (value: any, status: any, error: any) => {
      w.values.push(value);
      w.statuses.push(status);
      if (error) w.errors.push(error);
    },
  );
  return w;
}
