import { initTRPC, TRPCError, tracked, type AnyRouter } from "@trpc/server";
import { z } from "zod";
import { createChangeFeed, type ChangeFeed } from "../feed/index.ts";
import { Reactor, createReadSetRecorder, trackReads, type ReactorConfig, type ReadSink } from "../reactor/index.ts";
import type { SchemaMeta } from "../schema/index.ts";
import type { PrismaLike, Store } from "../store/index.ts";
import { assertQueryPath, callQuery } from "./callByPath.ts";
import { recordCommit } from "./commits.ts";
import { liveReads } from "./liveReads.ts";

/** What Tether needs of the app's generated PrismaClient. */
export interface TetherPrismaClient extends PrismaLike {
  $transaction(...args: never[]): Promise<unknown>;
  $extends: unknown;
}

/** The client Prisma hands an interactive transaction: `ctx.db` inside mutations. */
export type TransactionClient<Client> = Client extends {
  $transaction(fn: (tx: infer Tx) => unknown, options?: never): unknown;
}
  ? Tx
  : never;

/** The interactive-transaction form of `$transaction`, which every Prisma client has. */
type InteractiveTransaction = <R>(
  fn: (tx: unknown) => Promise<R>,
  options: { maxWait: number; timeout: number },
) => Promise<R>;

export interface TetherOptions<Client extends TetherPrismaClient, Ctx extends object> {
  store: Store<Client>;
  /** Model metadata from Tether's Prisma generator (`generated/tether`). */
  schema: SchemaMeta;
  /**
   * Identical live queries share one execution only within one scope. The default scope is the
   * context's `user.id` (null for anonymous): a query whose result depends on more of the
   * context than the user must say so here.
   */
  scope?: (ctx: Ctx) => string;
  /** An open change feed; default: one opened on the store when the reactor starts. */
  feed?: ChangeFeed;
  reactor?: Partial<ReactorConfig>;
  /** Interactive-transaction limits for mutations (ms). Defaults: maxWait 10 s, timeout 15 s. */
  transaction?: { maxWait?: number; timeout?: number };
}

const liveInput = z.object({
  path: z.string().min(1).max(256),
  input: z.unknown().optional(),
  lastEventId: z.string().max(256).nullish(),
});

function defaultScope(ctx: object): string {
  const user = (ctx as { user?: { id?: unknown } | null }).user;
  return JSON.stringify(user?.id ?? null);
}

/** Thrown inside a mutation's transaction to roll it back when the procedure failed. */
class RolledBack extends Error {
  constructor() {
    super("mutation failed; transaction rolled back");
  }
}

/**
 * Tether's tRPC builders. `initTether<Context>().create({ store, schema })` gives:
 * - `query`: procedures whose `ctx.db` is the store's Prisma client (read tracking when live);
 * - `mutation`: procedures run in one interactive transaction (`ctx.db` is the transaction
 *   client); a throw rolls back every write, and nothing reaches the change log;
 * - `appRouter(routes)`: a router with the generic `$live` subscription added, through which any
 *   query of the router can be subscribed: `{ path, input }` → tracked LiveMessages.
 */
export function initTether<Ctx extends object = object>() {
  return {
    create<Client extends TetherPrismaClient>(options: TetherOptions<Client, Ctx>) {
      return createTether<Client, Ctx>(options);
    },
  };
}

function createTether<Client extends TetherPrismaClient, Ctx extends object>(options: TetherOptions<Client, Ctx>) {
  const t = initTRPC.context<Ctx>().create();
  const { store, schema } = options;
  const log = store.log;
  const scope = options.scope ?? defaultScope;
  const txOptions = { maxWait: options.transaction?.maxWait ?? 10_000, timeout: options.transaction?.timeout ?? 15_000 };

  // One extended client for every live execution; the recorder comes from the async context.
  const forwarding: ReadSink = {
    record: (read) => liveReads.getStore()?.record(read),
    recordRaw: () => liveReads.getStore()?.recordRaw(),
  };
  const trackedDb = trackReads(store.db, forwarding, schema) as unknown as Client;

  let router: AnyRouter | null = null;
  let feed: ChangeFeed | null = options.feed ?? null;
  const ownsFeed = !options.feed;
  const reactor = new Reactor({
    schema,
    log,
    config: options.reactor,
    feed: async () => (feed ??= await createChangeFeed({ sql: store.sql, log })),
    run: async ({ ctx, path, input, signal }) => {
      if (!router) throw new Error("live query before appRouter() was built");
      const recorder = createReadSetRecorder();
      const data = await liveReads.run(recorder, () => callQuery(router!, path, ctx, input, signal));
      return { data, readSet: recorder.readSet() };
    },
  });

  const query = t.procedure.use(({ next }) =>
    next({ ctx: { db: liveReads.getStore() ? trackedDb : store.db } }),
  );

  const transaction = store.db.$transaction.bind(store.db) as unknown as InteractiveTransaction;
  const mutation = t.procedure.use(async ({ ctx, next }) => {
    const run = (tx: TransactionClient<Client>) => next({ ctx: { db: tx } });
    let outcome: Awaited<ReturnType<typeof run>> | undefined;
    let commit: string | null = null;
    try {
      await transaction(async (tx) => {
        outcome = await run(tx as TransactionClient<Client>);
        // A failed procedure must leave nothing: throwing here rolls the transaction back.
        if (!outcome.ok) throw new RolledBack();
        const rows = await (tx as { $queryRawUnsafe<T>(sql: string): Promise<T> }).$queryRawUnsafe<{ xid: string | null }[]>(
          "SELECT pg_current_xact_id_if_assigned()::text AS xid",
        );
        commit = rows[0]?.xid ?? null;
      }, txOptions);
    } catch (error) {
      if (!(error instanceof RolledBack)) throw error;
    }
    if (!outcome) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "mutation did not run" });
    if (commit) recordCommit(ctx, commit);
    return outcome;
  });

  const live = t.procedure.input(liveInput).subscription(async function* ({ ctx, input, signal }) {
    if (!router) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "router not built" });
    await assertQueryPath(router, input.path);
    const events = reactor.subscribe({
      path: input.path,
      input: input.input,
      ctx,
      scope: scope(ctx as unknown as Ctx),
      lastEventId: input.lastEventId ?? null,
      signal,
    });
    for await (const event of events) yield tracked(event.id, event.message);
  });

  function appRouter<Routes extends Parameters<typeof t.router>[0]>(routes: Routes) {
    const built = t.router({ ...routes, $live: live });
    router = built;
    return built;
  }

  return {
    /** tRPC's own builders, for anything Tether does not wrap. */
    t,
    router: t.router,
    middleware: t.middleware,
    procedure: t.procedure,
    query,
    mutation,
    appRouter,
    createCallerFactory: t.createCallerFactory,
    reactor,
    /** Opens the change feed and starts the reactor (subscriptions also start it on demand). */
    start: () => reactor.start(),
    async close() {
      await reactor.close();
      if (ownsFeed) await feed?.close();
    },
  };
}

export type Tether<Client extends TetherPrismaClient, Ctx extends object> = ReturnType<typeof createTether<Client, Ctx>>;
