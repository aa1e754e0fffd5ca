import { initTRPC, TRPCError, tracked, type AnyRouter } from "@trpc/server";
import { z } from "zod";
import type { RecordedRun } from "../access/index.ts";
import { requireRole, requireUser, withSessionWatch, type Authed, type SessionGuard } from "../auth/index.ts";
import { createCrdt, crdtPullInput, crdtPushInput, crdtStreamInput, type CrdtOptions } from "../crdt/index.ts";
import { tetherErrorFormatter, toClientError } from "../errors/index.ts";
import { createChangeFeed, type ChangeFeed } from "../feed/index.ts";
import {
  boundedJson,
  callerKey,
  MutationSlots,
  RateLimits,
  SubscriptionLimits,
  type JsonBounds,
  type MutationSlotOptions,
  type RateLimitOptions,
  type SubscriptionLimitOptions,
  illFormedTextAt,
} from "../limits/index.ts";
import {
  applyPolicies,
  denyAll,
  PolicyEngine,
  runWithPolicyScope,
  withoutPolicies,
  type AnyModelPolicy,
  type Policies,
  type PolicyDb,
  type PolicyOptions,
} from "../policies/index.ts";
import { PresenceHub, presenceJoinInput, presenceSetInput, type PresenceOptions } from "../presence/index.ts";
import { Reactor, createReadSetRecorder, trackReads, type ReactorConfig, type ReadSink } from "../reactor/index.ts";
import type { SchemaMeta } from "../schema/index.ts";
import type { PrismaLike, Store } from "../store/index.ts";
import { assertQueryPath, callQuery } from "./callByPath.ts";
import { recordCommit } from "./commits.ts";
import { liveReads } from "./liveReads.ts";
import { hideUnreadableReferences } from "./referencedRows.ts";

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
  /**
   * Row-level policies per model (keyed by client property: `project`), applied to `ctx.db` in
   * every query, mutation and live query: `read` is merged into every read (nested ones too),
   * `create`/`update`/`delete` checks refuse writes with FORBIDDEN inside the mutation's
   * transaction. Models without an entry are unrestricted (see `policyOptions`).
   */
  policies?: Policies<Client, Ctx>;
  policyOptions?: PolicyOptions;
  /**
   * The auth binding (`createTetherAuth(...)`): live subscriptions end with UNAUTHORIZED when
   * their session ends, calls on a WebSocket whose session ended are refused, and better-auth's
   * credential tables are closed to `ctx.db`.
   */
  auth?: { sessions: SessionGuard; protectedModels?: readonly string[] };
  /** Abuse limits, all on by default; each refusal is a typed tRPC error (TOO_MANY_REQUESTS, SERVICE_UNAVAILABLE, BAD_REQUEST). */
  limits?: {
    /**
     * Calls per caller per procedure (rate-limiter-flexible; memory by default, Redis/Postgres to
     * share). Merged over `DEFAULT_RATE_LIMITS`; `false` turns rate limits off.
     */
    rate?: RateLimitOptions<Ctx> | false;
    /** Live subscriptions open at once per connection / per user. Default 1000 per connection. */
    subscriptions?: SubscriptionLimitOptions;
    /** Mutation transactions running at once on this node, and how long others queue. Default `DEFAULT_MUTATION_SLOTS`. */
    mutations?: Partial<MutationSlotOptions>;
    /** Depth and size of a `$live` input and a presence state (BAD_REQUEST past them). Default `DEFAULT_JSON_BOUNDS`. */
    input?: Partial<JsonBounds>;
  };
  /**
   * Presence rooms (`$presence.join` / `$presence.set`): who may join (`authorize` gets `ctx.db`,
   * policy-scoped and read-tracked: a change to what it read re-checks open joins), entry
   * timeout, size limits.
   */
  presence?: PresenceOptions<Ctx, PolicyDb<Client>>;
  /** CRDT documents of `@crdt` fields (`$crdt.pull/push/stream`): update size limit, compaction. */
  crdt?: CrdtOptions;
}

/** `$live`'s input; the query's own input is bounded before it is hashed into a group key. */
const liveInputOf = (bounds: Partial<JsonBounds> | undefined) =>
  z.object({
    path: z.string().min(1).max(256),
    input: boundedJson(bounds).optional(),
    lastEventId: z.string().max(256).nullish(),
  });

/** Checked before the presence hub's own input (which serializes the state): depth and size first. */
const boundedPresenceState = (bounds: Partial<JsonBounds> | undefined) => z.object({ state: boundedJson(bounds).optional() });

function defaultScope(ctx: object): string {
  const user = (ctx as { user?: { id?: unknown } | null }).user;
  return JSON.stringify(user?.id ?? null);
}

/**
 * With auth, groups are shared per session: a group runs with its first subscriber's context,
 * and that context must end (UNAUTHORIZED) exactly when its own session does.
 */
function sessionScope(ctx: object): string {
  const { user, session } = ctx as { user?: { id?: unknown } | null; session?: { id?: unknown } | null };
  return JSON.stringify([user?.id ?? null, session?.id ?? null]);
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
  // No stack traces in error shapes in any mode (tRPC adds them whenever isDev), database errors
  // typed (errors/), `data.retryable` on limits and busy answers.
  const t = initTRPC.context<Ctx>().create({ isDev: false, errorFormatter: tetherErrorFormatter });
  const { store, schema } = options;
  const log = store.log;
  const guard = options.auth?.sessions ?? null;
  const scope = options.scope ?? (guard ? sessionScope : defaultScope);
  const txOptions = { maxWait: options.transaction?.maxWait ?? 10_000, timeout: options.transaction?.timeout ?? 15_000 };

  // Policies: one policy-scoped client (the caller comes from the async context, see
  // policies/scope.ts). Applied before read tracking: Prisma runs the first-applied extension
  // first, so the ReadSet records the merged where and invalidation stays narrow per caller.
  const protectedModels: Record<string, AnyModelPolicy> = {};
  for (const model of options.auth?.protectedModels ?? []) if (schema.models[model]) protectedModels[model] = denyAll;
  const engine = new PolicyEngine({
    schema,
    policies: hideUnreadableReferences(
      { ...protectedModels, ...(options.policies as Record<string, AnyModelPolicy | undefined> | undefined) },
      schema,
    ),
    ...options.policyOptions,
  });
  const baseDb = engine.active ? applyPolicies(store.db, engine) : store.db;

  // One extended client for every live execution; the recorder comes from the async context.
  const forwarding: ReadSink = {
    record: (read) => liveReads.getStore()?.record(read),
    recordRaw: () => liveReads.getStore()?.recordRaw(),
  };
  const trackedDb = trackReads(baseDb, forwarding, schema) as unknown as Client;
  /** Runs `fn` as `ctx`'s call under policies (a no-op without any). */
  const scoped = <T>(ctx: object, db: unknown, transactional: boolean, fn: () => T): T =>
    engine.active ? runWithPolicyScope({ ctx, db, transactional }, fn) : fn();
  /** An access check (presence `authorize`, a document's readability) run as a live query runs: its reads recorded. */
  const recordedRun: RecordedRun = async (ctx, check) => {
    const recorder = createReadSetRecorder();
    const allowed = await liveReads.run(recorder, () => scoped(ctx, trackedDb, false, async () => (await check(trackedDb)) === true));
    return { allowed, readSet: recorder.readSet() };
  };
  /** The node's change feed, shared by the reactor, CRDT streams and presence's access watch. */
  const startedFeed = async () => {
    await reactor.start();
    return feed!;
  };

  // Rate limits are on unless the app turns them off explicitly (`limits: { rate: false }`).
  const rateOptions = options.limits?.rate;
  const rateLimits = rateOptions === false ? null : new RateLimits<Ctx>(rateOptions ?? {});
  const callerOf = (rateOptions && rateOptions.key) || callerKey;
  const subscriptionLimits = new SubscriptionLimits(options.limits?.subscriptions);
  // PGlite runs one transaction at a time: mutations queue here, one by one, rather than in
  // Prisma's transaction start (which judges `maxWait` only once the driver hands it a connection,
  // then throws that transaction away: P2028 after the wait, not instead of it).
  const mutationSlots = new MutationSlots({ ...(store.engine === "pglite" ? { maxConcurrent: 1 } : {}), ...options.limits?.mutations });

  let router: AnyRouter | null = null;
  let feed: ChangeFeed | null = options.feed ?? null;
  const ownsFeed = !options.feed;
  const reactor = new Reactor({
    schema,
    log,
    config: options.reactor,
    feed: async () => {
      feed ??= await createChangeFeed({ sql: store.sql, log });
      // The session watcher sees each event before the reactor: a session's end is acted on
      // before anything committed after it reaches that session's subscribers.
      return guard ? withSessionWatch(feed, guard, log) : feed;
    },
    run: async ({ ctx, path, input, signal }) => {
      if (!router) throw new Error("live query before appRouter() was built");
      const recorder = createReadSetRecorder();
      const data = await liveReads.run(recorder, () => callQuery(router!, path, ctx, input, signal));
      return { data, readSet: recorder.readSet() };
    },
  });

  let closed = false;
  // Sessions held by WebSocket contexts are watched through the reactor's feed: start it then.
  guard?.attach?.(() => (closed ? Promise.resolve() : reactor.start()));

  // Every Tether procedure: a WebSocket context whose session ended is refused, calls are counted
  // against the caller's rate limit (not the reactor's own re-runs of live queries), input text
  // must be well-formed UTF-16 (limits/wellFormedText.ts), and a
  // database error becomes a typed one (errors/: CONFLICT, NOT_FOUND, SERVICE_UNAVAILABLE...)
  // with Tether's message, never Prisma's.
  const base = t.procedure.use(async ({ ctx, path, type, next, getRawInput }) => {
    guard?.assertActive(ctx);
    // The reactor's own re-runs of a live query pass here with an input already checked when the
    // subscription opened: neither counted nor walked again (a re-run is the live path's hot loop).
    if (!liveReads.getStore()) {
      if (rateLimits) await rateLimits.consume(ctx as unknown as Ctx, path, type);
      // A lone surrogate in any string would reach the database as an unclassified error (a 500).
      const illFormed = illFormedTextAt(await getRawInput());
      if (illFormed) throw new TRPCError({ code: "BAD_REQUEST", message: `${illFormed} is not valid text (a lone UTF-16 surrogate)` });
    }
    const result = await next();
    if (result.ok) return result;
    const error = toClientError(result.error);
    return error === result.error ? result : { ...result, error };
  });

  const query = base.use(({ ctx, next }) => {
    const db = liveReads.getStore() ? trackedDb : (baseDb as Client);
    return scoped(ctx, db, false, () => next({ ctx: { db } }));
  });

  const transaction = (baseDb as TetherPrismaClient).$transaction.bind(baseDb) as unknown as InteractiveTransaction;
  const mutation = base.use(async ({ ctx, next }) => {
    const run = (tx: TransactionClient<Client>) => next({ ctx: { db: tx } });
    let outcome: Awaited<ReturnType<typeof run>> | undefined;
    let commit: string | null = null;
    try {
      // Queued here (round-robin by caller) rather than in Prisma's connection wait: a flood of
      // one caller's mutations does not fail everyone else's with "Unable to start a transaction".
      await mutationSlots.run(callerOf(ctx as unknown as Ctx), () => transaction(
        (tx) =>
          scoped(ctx, tx, true, async () => {
            outcome = await run(tx as TransactionClient<Client>);
            // A failed procedure must leave nothing: throwing here rolls the transaction back.
            if (!outcome.ok) throw new RolledBack();
            const rows = await withoutPolicies(() =>
              (tx as { $queryRawUnsafe<T>(sql: string): Promise<T> }).$queryRawUnsafe<{ xid: string | null }[]>(
                "SELECT pg_current_xact_id_if_assigned()::text AS xid",
              ),
            );
            commit = rows[0]?.xid ?? null;
          }),
        txOptions,
      ));
    } catch (error) {
      if (!(error instanceof RolledBack)) throw error;
    }
    if (!outcome) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "mutation did not run" });
    if (commit) recordCommit(ctx, commit);
    return outcome;
  });

  const live = base.input(liveInputOf(options.limits?.input)).subscription(async function* ({ ctx, input, signal }) {
    if (!router) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "router not built" });
    await assertQueryPath(router, input.path);
    // `ctx` is the connection's own context object (no middleware of $live replaces it): one
    // WebSocket's subscriptions are counted together.
    const release = subscriptionLimits.acquire(ctx);
    const finished = new AbortController();
    try {
      // Aborted (reason: UNAUTHORIZED) when the subscriber's session ends.
      const sessionEnded = guard?.admit(ctx, finished.signal) ?? null;
      const stop = AbortSignal.any([signal, sessionEnded].filter((s): s is AbortSignal => s !== null && s !== undefined));
      const events = reactor.subscribe({
        path: input.path,
        input: input.input,
        ctx,
        scope: scope(ctx as unknown as Ctx),
        lastEventId: input.lastEventId ?? null,
        signal: stop,
      });
      for await (const event of events) {
        if (sessionEnded?.aborted) break; // nothing more once the session is over
        yield tracked(event.id, event.message);
      }
      if (sessionEnded?.aborted) throw sessionEnded.reason;
    } finally {
      finished.abort();
      release();
    }
  });

  // Presence: in memory, nothing persisted, relayed between nodes through the store's NOTIFY;
  // a join ends with its session too.
  const presence = new PresenceHub<Ctx>(options.presence as PresenceOptions<Ctx>, {
    sessionEnded: guard ? (ctx, until) => guard.admit(ctx, until) : undefined,
    sql: store.sql,
    log,
    access: { run: recordedRun, feed: startedFeed, schema, scope: (ctx) => scope(ctx as Ctx) },
  });
  const presenceRouter = t.router({
    join: base.input(presenceJoinInput).subscription(({ ctx, input, signal }) => presence.join(ctx as unknown as Ctx, input, signal)),
    set: base
      .input(boundedPresenceState(options.limits?.input))
      .input(presenceSetInput)
      .mutation(async ({ ctx, input }) => presence.set(ctx as unknown as Ctx, input)),
  });

  // CRDT documents: pull/push through the query/mutation builders (policies, transaction, commit
  // header), streams fed by this node's change feed (the reactor's, started with it).
  const crdt = createCrdt({
    sql: store.sql,
    schema,
    log,
    options: options.crdt,
    feed: startedFeed,
    access: recordedRun,
    scope: (ctx) => scope(ctx as Ctx),
    guard,
    subscriptionLimits,
  });
  const crdtRouter = t.router({
    pull: query.input(crdtPullInput).query(({ ctx, input }) => crdt.pull(ctx.db, input)),
    push: mutation.input(crdtPushInput).mutation(({ ctx, input }) => crdt.push(ctx.db, input)),
    stream: base.input(crdtStreamInput).subscription(({ ctx, input, signal }) => crdt.stream(ctx, input, signal ?? new AbortController().signal)),
  });

  /** Guard: a signed-in caller (UNAUTHORIZED otherwise); narrows `ctx.user` to non-null. */
  const authed = t.middleware(({ ctx, next }) => {
    guard?.assertActive(ctx);
    requireUser(ctx);
    return next({ ctx: ctx as unknown as Authed<Ctx> });
  });

  /** Guard: a signed-in caller whose `user.role` is one of `roles` (FORBIDDEN otherwise). */
  const role = (...roles: [string, ...string[]]) =>
    t.middleware(({ ctx, next }) => {
      guard?.assertActive(ctx);
      requireRole(ctx, roles);
      return next({ ctx: ctx as unknown as Authed<Ctx> });
    });

  function appRouter<Routes extends Parameters<typeof t.router>[0]>(routes: Routes) {
    const built = t.router({ ...routes, $live: live, $presence: presenceRouter, $crdt: crdtRouter });
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
    /** Guards (tRPC middlewares): `tether.query.use(tether.authed)`. */
    authed,
    admin: role("admin"),
    role,
    createCallerFactory: t.createCallerFactory,
    reactor,
    presence,
    /** The limits in force: `rate` (null when `limits.rate` is false) and the node's mutation slots. */
    limits: { rate: rateLimits, mutations: mutationSlots },
    /** CRDT documents: `stats()`, options. */
    crdt,
    /** Opens the change feed and starts the reactor (subscriptions also start it on demand). */
    start: () => reactor.start(),
    async close() {
      closed = true;
      await presence.close();
      await crdt.close();
      await reactor.close();
      if (ownsFeed) await feed?.close();
    },
  };
}

export type Tether<Client extends TetherPrismaClient, Ctx extends object> = ReturnType<typeof createTether<Client, Ctx>>;
