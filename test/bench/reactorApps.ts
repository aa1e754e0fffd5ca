/**
 * The two systems the reactor bench compares, with the same queries and the same mutation:
 * - Tether: a router built with initTether (like test/fixtures/app.ts); subscribers go through
 *   the generic `$live` subscription.
 * - Baseline, "what users hand-write today": a plain tRPC v11 router (initTRPC, no Tether). The
 *   mutation emits "invalidate" on a Node EventEmitter; each subscription is an async generator
 *   that yields its query's result, then on every "invalidate" re-runs its Prisma findMany on
 *   store.db and yields the new result (the `on(ee, …, { signal })` pattern of tRPC's docs).
 */
import { EventEmitter, on } from "node:events";
import { initTRPC } from "@trpc/server";
import { z } from "zod";
import { initTether, type ChangeFeed } from "@tether/server";
import { schema } from "../../generated/tether/index.ts";
import type { AppStore } from "../support/databases.ts";

export interface BenchContext {
  user: { id: string } | null;
}

const byProjectInput = z.object({ projectId: z.string() });
const byAssigneeInput = z.object({ assigneeId: z.string() });
const addInput = z.object({ projectId: z.string(), title: z.string().min(1).max(200), assigneeId: z.string().optional() });

const byProjectArgs = (projectId: string) =>
  ({ where: { projectId }, orderBy: [{ position: "asc" as const }, { id: "asc" as const }] });
const byAssigneeArgs = (assigneeId: string) => ({ where: { assigneeId }, orderBy: { id: "asc" as const } });

export function buildTetherBench(store: AppStore, feed: ChangeFeed) {
  // The bench queries read nothing of the context: every subscriber may share one execution, so
  // the app declares one scope (the default scope is per user id).
  const tether = initTether<BenchContext>().create({ store, schema, feed, scope: () => "shared" });
  const router = tether.appRouter({
    tasks: tether.router({
      byProject: tether.query.input(byProjectInput).query(({ ctx, input }) => ctx.db.task.findMany(byProjectArgs(input.projectId))),
      byAssignee: tether.query.input(byAssigneeInput).query(({ ctx, input }) => ctx.db.task.findMany(byAssigneeArgs(input.assigneeId))),
      add: tether.mutation.input(addInput).mutation(({ ctx, input }) => ctx.db.task.create({ data: input })),
    }),
  });
  const createCaller = tether.createCallerFactory(router);
  return { tether, router, caller: (ctx: BenchContext, signal?: AbortSignal) => createCaller(ctx, { signal }) };
}

export function buildBaselineBench(store: AppStore) {
  const t = initTRPC.context<BenchContext>().create();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const counters = { refetches: 0 };
  const db = store.db;

  /** The hand-written live query: initial result, then a refetch per invalidation. */
  function live<Input, Output>(load: (input: Input) => Promise<Output>) {
    return async function* ({ input, signal }: { input: Input; signal: AbortSignal | undefined }) {
      const invalidations = on(events, "invalidate", { signal });
      yield await load(input);
      for await (const _ of invalidations) {
        counters.refetches += 1;
        yield await load(input);
      }
    };
  }
  const byProject = (input: z.infer<typeof byProjectInput>) => db.task.findMany(byProjectArgs(input.projectId));
  const byAssignee = (input: z.infer<typeof byAssigneeInput>) => db.task.findMany(byAssigneeArgs(input.assigneeId));

  const router = t.router({
    tasks: t.router({
      byProject: t.procedure.input(byProjectInput).query(({ input }) => byProject(input)),
      byAssignee: t.procedure.input(byAssigneeInput).query(({ input }) => byAssignee(input)),
      onByProject: t.procedure.input(byProjectInput).subscription(live(byProject)),
      onByAssignee: t.procedure.input(byAssigneeInput).subscription(live(byAssignee)),
      add: t.procedure.input(addInput).mutation(async ({ input }) => {
        const row = await db.task.create({ data: input });
        events.emit("invalidate");
        return row;
      }),
    }),
  });
  const createCaller = t.createCallerFactory(router);
  return {
    router,
    counters,
    listeners: () => events.listenerCount("invalidate"),
    caller: (ctx: BenchContext, signal?: AbortSignal) => createCaller(ctx, { signal }),
  };
}
