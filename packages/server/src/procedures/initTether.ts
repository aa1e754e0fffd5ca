import { initTRPC, TRPCError, tracked, type AnyRouter, type AnyTRPCProcedure } from "@trpc/server";
import type { LiveInput } from "@tether/protocol";
import { z } from "zod";
import type { RecordedRun } from "../access/index.ts";
import { requireRole, requireUser, withSessionWatch, type Authed, type SessionGuard } from "../auth/index.ts";
import { createCrdt, crdtPullInput, crdtPushInput, crdtStreamInput, type CrdtOptions } from "../crdt/index.ts";
import { tetherErrorFormatter, toClientError } from "../errors/index.ts";
import { createChangeFeed, type ChangeFeed } from "../feed/index.ts";
import {
  JobBuilder,
  JobRuntime,
  JOBS_TABLE,
  ownerOf,
  viewerOf,
  withJobsModel,
  type JobClient,
  type JobDefinition,
  type JobOwner,
  type JobRuntimeOptions,
  type UntypedJobClient,
} from "../jobs/index.ts";
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
  unstorableTextAt,
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
  unscopedRawSql,
} from "../policies/index.ts";
import {
  WorkflowBuilder,
  WorkflowRuntime,
  WORKFLOW_STEPS_TABLE,
  WORKFLOWS_TABLE,
  withWorkflowModels,
  type UntypedWorkflowClient,
  type WorkflowClient,
  type WorkflowDefinition,
  type WorkflowOwner,
  type WorkflowRuntimeOptions,
  DEFAULT_WORKFLOW_LIMITS,
} from "../workflows/index.ts";
import { PresenceHub, presenceJoinInput, presenceSetInput, type PresenceOptions } from "../presence/index.ts";
import { Reactor, createReadSetRecorder, loadColumnFacts, trackReads, type ReactorConfig, type ReadSink } from "../reactor/index.ts";
import type { SchemaMeta } from "../schema/index.ts";
import type { PrismaLike, Store } from "../store/index.ts";
import { captureCommitXid } from "../store/index.ts";
import { assertQueryPath, callQuery } from "./callByPath.ts";
import { recordCommit } from "./commits.ts";
import { liveReads } from "./liveReads.ts";
import { assertLiveSerializable, liveAwareTransformer, markLiveMessage, type DataTransformerOptions } from "./liveTransformer.ts";
import { assertDecodable, decodeInputSafely } from "./undecodableInput.ts";
import { createJsonGuard } from "./jsonGuard.ts";
import { registerInternals } from "./internals.ts";
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
  /**
   * Background jobs (`tether.job`, `tether.jobs`, `tether.cron`): this node's runtime options and
   * limits (DEFAULT_JOB_LIMITS). pg-boss starts only if the app defines a job or a schedule.
   */
  jobs?: JobRuntimeOptions;
  /** Durable workflows (`tether.workflow`, `tether.workflows`): limits (DEFAULT_WORKFLOW_LIMITS) and clock. */
  workflows?: WorkflowRuntimeOptions;
  /**
   * A tRPC data transformer (`superjson`, …), as `initTRPC.create({ transformer })` takes: every
   * procedure's input and output, live messages included, go through it, so `Date`, `BigInt`,
   * `Decimal` arrive typed. Clients pass the same one (`createTetherClient({ transformer })`).
   * Default: none (JSON; see docs/transformers.md for what that does to such values).
   */
  transformer?: DataTransformerOptions;
}

/** `$live`'s input; the query's own input is bounded before it is hashed into a group key. */
const liveInputOf = (bounds: Partial<JsonBounds> | undefined) =>
  z.object({
    path: z.string().min(1).max(256),
    input: boundedJson(bounds).optional(),
    lastEventId: z.string().max(256).nullish(),
  }) satisfies z.ZodType<LiveInput, LiveInput>;

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

// Job and dead-letter ids are UUIDs (ours and pg-boss's): anything else (a NUL, a non-UUID that
// pg-boss's uuid column refuses) is BAD_REQUEST here, never a database error. Format only, so the
// answer says nothing about which jobs exist.
const jobIdInput = z.object({ id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "a job id is a UUID") });
// Workflow ids are chosen by apps ("welcome:<user>"), not UUIDs: any storable text up to the name bound.
const workflowIdInput = z.object({
  id: z
    .string()
    .min(1)
    .max(DEFAULT_WORKFLOW_LIMITS.maxNameLength)
    .refine((id) => unstorableTextAt(id) === null, "a workflow id holds no NUL or lone surrogate"),
});

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
    create<Client extends TetherPrismaClient, Transformer extends DataTransformerOptions | undefined = undefined>(
      options: TetherOptions<Client, Ctx> & { transformer?: Transformer },
    ) {
      return createTether<Client, Ctx, Transformer>(options);
    },
  };
}

function createTether<Client extends TetherPrismaClient, Ctx extends object, Transformer extends DataTransformerOptions | undefined>(
  options: TetherOptions<Client, Ctx> & { transformer?: Transformer },
) {
  // No stack traces in error shapes in any mode (tRPC adds them whenever isDev), database errors
  // typed (errors/), `data.retryable` on limits and busy answers. The app's transformer (its type
  // tells clients whether values arrive transformed) serializes live messages once per result.
  // Its input decoder never throws (undecodableInput.ts): a malformed input is a BAD_REQUEST per call.
  const liveTransformer = options.transformer ? liveAwareTransformer(options.transformer) : null;
  const runtimeOptions = {
    isDev: false as const,
    errorFormatter: tetherErrorFormatter,
    transformer: (liveTransformer ? decodeInputSafely(liveTransformer) : undefined) as Transformer,
  };
  // tRPC's shape check cannot see through the generic transformer: the options are exactly these.
  const t = initTRPC.context<Ctx>().create<typeof runtimeOptions>(runtimeOptions as never);
  const { store, schema } = options;
  // Without a transformer, a BigInt in a live result ends its subscription with a clear error.
  const jsonGuard = createJsonGuard(schema, options.transformer !== undefined);
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
    recordCall: (call) => liveReads.getStore()?.recordCall(call) ?? (() => undefined),
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
  // Background jobs: definitions collect here; pg-boss starts with the first need (start(), a
  // mutation, an enqueue) and only if the app defined any job or schedule.
  const jobRuntime = new JobRuntime({ driver: store.driver, sql: store.sql, log, db: store.db, options: options.jobs });
  // Workflows: a thin layer on the job runtime (each resume is a job); defining one defines its resume job.
  const workflowRuntime = new WorkflowRuntime({ sql: store.sql, log, db: store.db, jobs: jobRuntime, options: options.workflows });
  const noJobs: UntypedJobClient = {
    enqueue: async (name) => {
      throw new TRPCError({ code: "BAD_REQUEST", message: `no job named ${JSON.stringify(String(name)).slice(0, 120)} (the app defines no jobs)` });
    },
  };

  const reactor = new Reactor({
    // The jobs table is a model to the reactor only: `$jobs.get` runs are filed by job id.
    schema: withWorkflowModels(withJobsModel(schema)),
    log,
    config: options.reactor,
    columnFacts: () => loadColumnFacts(store.sql),
    feed: async () => {
      feed ??= await createChangeFeed({ sql: store.sql, log });
      // The session watcher sees each event before the reactor: a session's end is acted on
      // before anything committed after it reaches that session's subscribers.
      return guard ? withSessionWatch(feed, guard, log) : feed;
    },
    run: async ({ ctx, path, input, signal }) => {
      if (!router) throw new Error("live query before appRouter() was built");
      const recorder = createReadSetRecorder((call) => reactor.couldMaintain(call));
      const data = await liveReads.run(recorder, () => callQuery(router!, path, ctx, input, signal));
      return { data, readSet: recorder.readSet(), soleCall: recorder.soleCall() };
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
      const rawInput = await getRawInput();
      assertDecodable(rawInput);
      // A lone surrogate in any string would reach the database as an unclassified error (a 500).
      const illFormed = illFormedTextAt(rawInput);
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
  const mutation = base.use(async ({ ctx, next, path }) => {
    // Started before the transaction: on PGlite (one connection) pg-boss's start inside it would wait for it.
    if (jobRuntime.enabled && !jobRuntime.started) await jobRuntime.start();
    const owner = ownerOf(ctx);
    const run = (tx: TransactionClient<Client>) => {
      const jobs: UntypedJobClient = jobRuntime.enabled
        ? { enqueue: (name, input, opts) => jobRuntime.enqueueIn(unscopedRawSql(tx), name, input, opts, owner) }
        : noJobs;
      const workflows: UntypedWorkflowClient = workflowRuntime.clientIn(unscopedRawSql(tx), owner);
      return next({ ctx: { db: tx, jobs, workflows } });
    };
    let outcome: Awaited<ReturnType<typeof run>> | undefined;
    let commit: string | null = null;
    try {
      // Queued here (round-robin by caller) rather than in Prisma's connection wait: a flood of
      // one caller's mutations does not fail everyone else's with "Unable to start a transaction".
      // The commit's transaction id is asked for right in front of COMMIT (store/commitXid.ts).
      const committed = await mutationSlots.run(callerOf(ctx as unknown as Ctx), () => captureCommitXid(() => transaction(
        (tx) =>
          scoped(ctx, tx, true, async () => {
            outcome = await run(tx as TransactionClient<Client>);
            // A failed procedure must leave nothing: throwing here rolls the transaction back.
            if (!outcome.ok) throw new RolledBack();
            // An answer JSON cannot carry would fail after COMMIT: fail before it instead.
            if (jsonGuard && outcome.ok) jsonGuard.output(path, outcome.data);
          }),
        txOptions,
      )));
      commit = committed.xid;
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
        jsonGuard?.live(input.path, event.message);
        if (liveTransformer) assertLiveSerializable(liveTransformer, input.path, event.message);
        yield tracked(event.id, markLiveMessage(event.message));
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

  // CRDT documents: pull through the query builder (policies), push relayed and group-committed,
  // streams fed by relays and this node's change feed (the reactor's, started with it).
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
    // A push's write check: the row as the caller reads it, through its model's update policy.
    mayUpdate: async (ctx, db, model, row) => {
      const policy = engine.policyOf(model);
      if (!policy) return true;
      if (!policy.update) return false;
      const update = policy.update;
      return (await withoutPolicies(() => update({ ...ctx, db }, row, row))) === true;
    },
  });
  const crdtRouter = t.router({
    pull: query.input(crdtPullInput).query(({ ctx, input }) => crdt.pull(ctx.db, input)),
    // Not a transactional mutation: pushes to one document are committed in groups (crdt/docWriter.ts).
    push: base.input(crdtPushInput).mutation(({ ctx, input }) => crdt.push(ctx, input)),
    stream: base.input(crdtStreamInput).subscription(({ ctx, input, signal }) => crdt.stream(ctx, input, signal ?? new AbortController().signal)),
  });

  // Jobs: a job is a procedure clients cannot call (NOT_FOUND before its input is parsed); the
  // runtime finds its definition by the procedure object.
  const jobDefinitions = new WeakMap<object, JobDefinition>();
  const uncallable = base.use(() => {
    throw new TRPCError({ code: "NOT_FOUND", message: "jobs are enqueued by mutations, not called" });
  });
  const job = new JobBuilder<Client, undefined, undefined>({ schema: null, options: {} }, (definition) => {
    const procedure = (definition.schema ? uncallable.input(definition.schema) : uncallable).mutation(() => null);
    jobDefinitions.set(procedure, definition);
    return procedure;
  });
  let jobsRouter: AnyRouter | null = null;

  /** The app's jobs (once): a router of `tether.job` procedures, each named by its dotted path in it. */
  function jobs<Routes extends Parameters<typeof t.router>[0]>(routes: Routes) {
    if (jobsRouter) throw new Error("tether.jobs() is called once, with every job of the app");
    const built = t.router(routes);
    const procedures = (built as unknown as { _def: { procedures: Record<string, AnyTRPCProcedure> } })._def.procedures;
    for (const [path, procedure] of Object.entries(procedures)) {
      const definition = jobDefinitions.get(procedure);
      if (!definition) throw new Error(`${path} in tether.jobs() is not a job (tether.job...handler())`);
      jobRuntime.define(path, definition);
    }
    jobsRouter = built;
    return built;
  }

  /**
   * For clients of transactions Tether did not open (`inTransaction`): refuses while the job
   * runtime is not started — on PGlite, pg-boss starting inside the open transaction would wait
   * for it forever.
   */
  const afterStart = <T>(what: string, run: () => Promise<T>): Promise<T> =>
    jobRuntime.started ? run() : Promise.reject(new Error(`${what}: start the job runtime (tether.start()) first`));

  /**
   * Builders whose `ctx.jobs` is typed by the app's jobs router: `const { mutation } =
   * tether.withJobs(jobs)`; `ctx.jobs.enqueue("exportCsv", input)` then checks name and input.
   */
  function withJobs<Jobs extends AnyRouter>(_jobs: Jobs) {
    return {
      // Types only: ctx.jobs is already there at run time.
      mutation: mutation.use(({ next }) => next({ ctx: {} as { jobs: JobClient<Jobs> } })),
      /**
       * `ctx.jobs` for a Prisma interactive transaction Tether did not open (better-auth's sign-up:
       * `createTetherAuth({ onSignUp })`): enqueues join `tx`, owned by `owner`. The runtime must be
       * started (`tether.start()`) before `tx` opened: on PGlite, pg-boss starting inside an open
       * transaction would wait for it forever, so this refuses instead.
       */
      inTransaction(tx: unknown, owner: JobOwner | null = null): JobClient<Jobs> {
        const enqueue: UntypedJobClient["enqueue"] = (name, input, opts) =>
          afterStart("jobs.inTransaction", () => jobRuntime.enqueueIn(unscopedRawSql(tx), name, input, opts, owner ? { id: owner.id } : null));
        return { enqueue } as JobClient<Jobs>;
      },
    };
  }

  /**
   * A cron schedule: `tether.cron("0 3 * * *", "nightlyDigest", input?)`. One run per tick across
   * every node (pg-boss's cron, minute resolution); `timezone` defaults to UTC.
   */
  function cron(expression: string, name: string, input?: unknown, cronOptions: { timezone?: string } = {}) {
    jobRuntime.addCron({ expression, name, input: input ?? null, timezone: cronOptions.timezone ?? "UTC" });
  }

  // Workflows: procedures clients cannot call, like jobs; the runtime finds each definition by its procedure.
  const workflowDefinitions = new WeakMap<object, WorkflowDefinition>();
  const notCallableWorkflow = base.use(() => {
    throw new TRPCError({ code: "NOT_FOUND", message: "workflows are started by mutations, not called" });
  });
  const workflow = new WorkflowBuilder<Client, undefined, undefined>(null, (definition) => {
    const procedure = (definition.schema ? notCallableWorkflow.input(definition.schema) : notCallableWorkflow).mutation(() => null);
    workflowDefinitions.set(procedure, definition);
    return procedure;
  });
  let workflowsRouter: AnyRouter | null = null;

  /** The app's workflows (once): a router of `tether.workflow` procedures, each named by its dotted path. */
  function workflows<Routes extends Parameters<typeof t.router>[0]>(routes: Routes) {
    if (workflowsRouter) throw new Error("tether.workflows() is called once, with every workflow of the app");
    const built = t.router(routes);
    const procedures = (built as unknown as { _def: { procedures: Record<string, AnyTRPCProcedure> } })._def.procedures;
    for (const [path, procedure] of Object.entries(procedures)) {
      const definition = workflowDefinitions.get(procedure);
      if (!definition) throw new Error(`${path} in tether.workflows() is not a workflow (tether.workflow...run())`);
      workflowRuntime.define(path, definition);
    }
    workflowsRouter = built;
    return built;
  }

  /** Builders whose `ctx.workflows` is typed by the app's workflows router. */
  function withWorkflows<Workflows extends AnyRouter>(_workflows: Workflows) {
    return {
      // Types only: ctx.workflows is already there at run time.
      mutation: mutation.use(({ next }) => next({ ctx: {} as { workflows: WorkflowClient<Workflows> } })),
      /**
       * `ctx.workflows` for a Prisma interactive transaction Tether did not open (better-auth's
       * sign-up: `createTetherAuth({ onSignUp })`): starts and events join `tx`, runs are owned by
       * `owner`. As with `withJobs(...).inTransaction`, the runtime must be started first.
       */
      inTransaction(tx: unknown, owner: WorkflowOwner | null = null): WorkflowClient<Workflows> {
        const client = workflowRuntime.clientIn(unscopedRawSql(tx), owner);
        const what = "workflows.inTransaction";
        const workflows: UntypedWorkflowClient = {
          start: (name, input, opts) => afterStart(what, () => client.start(name, input, opts)),
          sendEvent: (workflowId, name, payload) => afterStart(what, () => client.sendEvent(workflowId, name, payload)),
        };
        return workflows as WorkflowClient<Workflows>;
      },
    };
  }

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

  const adminOnly = base.use(({ ctx, next }) => {
    requireRole(ctx, ["admin"]);
    return next();
  });
  const jobsRouterOf = t.router({
    /** A job's state, for its owner or an admin (NOT_FOUND for anyone else): subscribe it with `$live`. */
    get: query.input(jobIdInput).query(({ ctx, input }) => {
      // Raw SQL is invisible to read tracking: record what this read depends on (this job's row).
      liveReads.getStore()?.record({ model: JOBS_TABLE, operation: "findUnique", where: { id: input.id } });
      return jobRuntime.read(input.id, viewerOf(ctx));
    }),
    /** Cancels a job not yet finished (owner or admin; NOT_FOUND otherwise). Returns its state. */
    cancel: base.input(jobIdInput).mutation(({ ctx, input }) => jobRuntime.cancel(input.id, viewerOf(ctx))),
    /** Admin: cron schedules with their next run time. */
    schedules: adminOnly.query(() => jobRuntime.schedules()),
    /** Admin: run a job (a cron's, with its input) now. */
    runNow: adminOnly
      .input(z.object({ name: z.string().min(1).max(200) }))
      .mutation(({ ctx, input }) => jobRuntime.runNow(input.name, ownerOf(ctx))),
    /** Admin: jobs out of attempts. */
    deadLetters: adminOnly.query(() => jobRuntime.deadLetters()),
    /** Admin: one more attempt for a dead letter's job (same id, same state row). */
    retryDeadLetter: adminOnly.input(jobIdInput).mutation(({ input }) => jobRuntime.retryDeadLetter(input.id)),
  });

  const workflowsRouterOf = t.router({
    /** A run's state and steps, for its owner or an admin (NOT_FOUND for anyone else): subscribe it with `$live`. */
    get: query.input(workflowIdInput).query(({ ctx, input }) => {
      // Raw SQL is invisible to read tracking: this run's row and its steps.
      liveReads.getStore()?.record({ model: WORKFLOWS_TABLE, operation: "findUnique", where: { id: input.id } });
      liveReads.getStore()?.record({ model: WORKFLOW_STEPS_TABLE, operation: "findMany", where: { workflow_id: input.id } });
      return workflowRuntime.read(input.id, viewerOf(ctx));
    }),
    /** Cancels a run not yet finished (owner or admin; NOT_FOUND otherwise). Returns its state. */
    cancel: base.input(workflowIdInput).mutation(async ({ ctx, input }) => {
      if (workflowRuntime.enabled) await jobRuntime.start();
      return workflowRuntime.cancel(input.id, viewerOf(ctx));
    }),
  });

  function appRouter<Routes extends Parameters<typeof t.router>[0]>(routes: Routes) {
    const built = t.router({ ...routes, $live: live, $presence: presenceRouter, $crdt: crdtRouter, $jobs: jobsRouterOf, $workflows: workflowsRouterOf });
    // Jobs and workflows stay in the router's type (inferRouterInputs/Outputs see them) but not in
    // its dispatch table: calling one over any transport is answered exactly as an unknown path
    // is, so a client learns nothing about which exist.
    const procedures = (built as unknown as { _def: { procedures: Record<string, AnyTRPCProcedure> } })._def.procedures;
    for (const [path, procedure] of Object.entries(procedures)) {
      if (jobDefinitions.has(procedure) || workflowDefinitions.has(procedure)) delete procedures[path];
    }
    router = built;
    return built;
  }

  const tether = {
    /** tRPC's own builders, for anything Tether does not wrap. */
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
    /** This node's counters, for `createMetrics` or a health page: live queries, CRDT documents. */
    stats: { live: () => reactor.stats(), crdt: () => crdt.stats() },
    presence,
    /** The limits in force: `rate` (null when `limits.rate` is false) and the node's mutation slots. */
    limits: { rate: rateLimits, mutations: mutationSlots },
    /** Job builder: `tether.job.input(schema).handler(async ({ ctx, input, progress, signal }) => output)`. */
    job,
    jobs,
    withJobs,
    cron,
    /** The node's job runtime: enqueue outside mutations, dead letters, schedules, stats, stop. */
    jobRuntime,
    /** Workflow builder: `tether.workflow.input(schema).run(async ({ step, input, ctx }) => output)`. */
    workflow,
    workflows,
    withWorkflows,
    /**
     * The node's workflow runtime: `workflowRuntime.client(owner).start(name, input, { id })` from a
     * job, a cron tick or server code (commits at once); reads, cancel, stats.
     */
    workflowRuntime,
    /** Opens the change feed and starts the reactor (and the job runtime, if the app has jobs). */
    async start() {
      await reactor.start();
      await crdt.start();
      if (jobRuntime.enabled) await jobRuntime.start();
    },
    /**
     * Resolves once this node has processed every change committed before the call: each live
     * query it affected has re-run and queued its message to its subscribers. For tests and
     * scripts ("my write is live now") instead of polling stats; `signal` gives up the wait.
     */
    settled(signal?: AbortSignal): Promise<void> {
      return reactor.settled(signal);
    },
    async close() {
      closed = true;
      // Jobs first: handlers still running get their grace period while the store is open.
      await jobRuntime.stop();
      await presence.close();
      await crdt.close();
      await reactor.close();
      if (ownsFeed) await feed?.close();
    },
  };
  registerInternals(tether, { reactor, crdt });
  return tether;
}

export type Tether<
  Client extends TetherPrismaClient,
  Ctx extends object,
  Transformer extends DataTransformerOptions | undefined = undefined,
> = ReturnType<typeof createTether<Client, Ctx, Transformer>>;
