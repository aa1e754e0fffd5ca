/**
 * The demo's API: projects, their members, tasks and notes, scoped by row-level policies (a project
 * and everything in it is visible to its owner and to the users it is shared with), plus each
 * user's inbox and CSV exports (visible to that user only), the background jobs behind them and
 * the durable welcome workflow every sign-up starts.
 * Every query here can be subscribed live from the browser with `useLiveQuery`.
 */
import { randomUUID } from "node:crypto";
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { initTether, type AuthContext, type Policies, type SessionGuard } from "@tether/server";
import { transformer } from "../lib/transformer.ts";
import type { PrismaClient } from "../../../../generated/prisma/client.ts";
import { schema } from "../../../../generated/tether/index.ts";
import { demoJobLimits, demoJobs, type DemoJobLimits } from "./jobs/index.ts";
import { announceFirstProject, demoWorkflowLimits, demoWorkflows, welcomeWorkflowId, type DemoWorkflowLimits } from "./workflows/index.ts";
import type { DemoStore } from "./store.ts";

type Db = Pick<PrismaClient, "project">;
type RuleCtx = AuthContext & { db: Db };

/** Projects a user may see: the ones they own and the ones shared with them. */
export const visibleTo = (userId: string) => ({ OR: [{ ownerId: userId }, { members: { some: { userId } } }] });

/** Does the caller own this project? (Rules run with policies suspended: explicit where.) */
async function ownsProject(ctx: RuleCtx, projectId: string): Promise<boolean> {
  if (!ctx.user) return false;
  return (await ctx.db.project.count({ where: { id: projectId, ownerId: ctx.user.id } })) > 0;
}

/** Is the caller the owner or a member of this project? */
async function canAccessProject(ctx: RuleCtx, projectId: string): Promise<boolean> {
  if (!ctx.user) return false;
  return (await ctx.db.project.count({ where: { id: projectId, ...visibleTo(ctx.user.id) } })) > 0;
}

export const policies: Policies<PrismaClient, AuthContext> = {
  project: {
    read: (ctx) => (ctx.user ? visibleTo(ctx.user.id) : false),
    create: (ctx, row) => row.ownerId === ctx.user?.id,
    update: (ctx, row, next) => row.ownerId === ctx.user?.id && next.ownerId === ctx.user?.id,
    delete: (ctx, row) => row.ownerId === ctx.user?.id,
  },
  projectMember: {
    read: (ctx) => (ctx.user ? { project: visibleTo(ctx.user.id) } : false),
    // Only the owner shares; a member may leave (delete their own membership).
    create: (ctx, row) => ownsProject(ctx, row.projectId),
    // Memberships never move: only the owner's idempotent re-share (an upsert) writes one again.
    update: async (ctx, row, next) => row.projectId === next.projectId && row.userId === next.userId && ownsProject(ctx, row.projectId),
    delete: async (ctx, row) => row.userId === ctx.user?.id || ownsProject(ctx, row.projectId),
  },
  task: {
    read: (ctx) => (ctx.user ? { project: visibleTo(ctx.user.id) } : false),
    create: (ctx, row) => canAccessProject(ctx, row.projectId),
    update: async (ctx, row, next) => (await canAccessProject(ctx, row.projectId)) && canAccessProject(ctx, next.projectId),
    delete: (ctx, row) => canAccessProject(ctx, row.projectId),
  },
  note: {
    read: (ctx) => (ctx.user ? { project: visibleTo(ctx.user.id) } : false),
    create: (ctx, row) => canAccessProject(ctx, row.projectId),
    update: (ctx, row, next) => row.projectId === next.projectId && canAccessProject(ctx, row.projectId),
    delete: (ctx, row) => ownsProject(ctx, row.projectId),
  },
  // A user's inbox is theirs alone. Messages are written by jobs (system access), never by clients.
  message: {
    read: (ctx) => (ctx.user ? { userId: ctx.user.id } : false),
    update: (ctx, row, next) => row.userId === ctx.user?.id && next.userId === row.userId,
    delete: (ctx, row) => row.userId === ctx.user?.id,
  },
  // An export is its requester's alone (a teammate exporting the same project gets their own).
  // Anyone who can see a project may export it; the job fills the row in (system access).
  projectExport: {
    read: (ctx) => (ctx.user ? { ownerId: ctx.user.id } : false),
    create: async (ctx, row) => row.ownerId === ctx.user?.id && canAccessProject(ctx, row.projectId),
    delete: (ctx, row) => row.ownerId === ctx.user?.id,
  },
};

export const taskFilter = z.enum(["all", "open", "done", "mine"]);
export type TaskFilter = z.infer<typeof taskFilter>;

const taskFields = { id: true, title: true, done: true, position: true, assigneeId: true, createdAt: true, updatedAt: true } as const;

export interface DemoRouterOptions {
  /** The jobs' knobs over DEFAULT_DEMO_JOBS (and TETHER_DEMO_EXPORT_PAUSE_MS). */
  jobs?: Partial<DemoJobLimits>;
  /** The workflows' knobs over DEFAULT_DEMO_WORKFLOWS (and TETHER_DEMO_WELCOME_TIMEOUT_MS). */
  workflows?: Partial<DemoWorkflowLimits>;
}

export function buildRouter(store: DemoStore, auth: { sessions: SessionGuard; protectedModels?: readonly string[] }, options: DemoRouterOptions = {}) {
  const tether = initTether<AuthContext>().create({
    store,
    schema,
    auth,
    policies,
    // Dates (and anything else superjson knows) arrive typed in the browser, live updates included.
    transformer,
    // Abuse limits, spelled out (these equal or tighten Tether's defaults): per signed-in user
    // (else per IP) and procedure path, TOO_MANY_REQUESTS past them.
    limits: {
      rate: {
        query: { points: 600, duration: 60 },
        mutation: { points: 120, duration: 60 },
        subscription: { points: 60, duration: 60 },
        procedures: {
          // A board page opens a handful of live queries; reconnects reopen them.
          $live: { points: 300, duration: 60 },
          // Typing in a note: Loro updates, a few per second per typist.
          "$crdt.push": { points: 1200, duration: 60 },
          // Cursor and selection updates.
          "$presence.set": { points: 1200, duration: 60 },
          // Sharing by email is rare: a tighter budget limits probing which emails have accounts.
          "projects.share": { points: 30, duration: 60 },
        },
      },
      // A browser tab holds a few dozen live queries at most.
      subscriptions: { maxPerConnection: 200, maxPerUser: 500 },
      // Mutation transactions at once: Tether's default (one on PGlite, six of the ten Postgres
      // connections), queued fairly by user for at most 10 s (then SERVICE_UNAVAILABLE, retryable).
      mutations: { maxWaitMs: 10_000, maxQueued: 1_000 },
      input: { maxDepth: 16, maxBytes: 16 * 1024 },
    },
    // The only rooms are notes' (`note:<id>`): joining one needs read access to the note. Read
    // through `ctx.db` (the note's policy applies), so Tether records the read and ends the join
    // when a membership change revokes it.
    presence: {
      authorize: async (ctx, room) => {
        const noteId = /^note:(.+)$/.exec(room)?.[1];
        if (!ctx.user || !noteId) return false;
        return (await ctx.db.note.count({ where: { id: noteId } })) > 0;
      },
    },
  });
  const authedQuery = tether.query.use(tether.authed);
  const authedMutation = tether.mutation.use(tether.authed);
  const jobLimits = demoJobLimits(options.jobs);
  const jobs = tether.jobs(demoJobs(tether.job, jobLimits));
  const jobsClient = tether.withJobs(jobs);
  const jobMutation = jobsClient.mutation.use(tether.authed);
  const workflows = tether.workflows(demoWorkflows(tether.workflow, demoWorkflowLimits(options.workflows)));
  const workflowsClient = tether.withWorkflows(workflows);
  const workflowMutation = workflowsClient.mutation.use(tether.authed);

  /**
   * For `createTetherAuth({ onSignUp })`: runs in the sign-up's own transaction, so the welcome
   * workflow exists exactly when the user does (a failed sign-up starts nothing). Owned by the
   * user: only they (or an admin) may watch it.
   */
  const onSignUp = async (user: { id: string }, tx: unknown) => {
    await workflowsClient.inTransaction(tx, user).start("welcome", { userId: user.id }, { id: welcomeWorkflowId(user.id) });
  };

  const router = tether.appRouter({
    /** The app's jobs: in the router so clients infer their outputs (`JobOutput<...>`); not callable. */
    jobs,
    /** The app's workflows, likewise (`WorkflowOutput<...>`); started by sign-ups, watched with `useWorkflow`. */
    workflows,

    /** The signed-in user, or null: pages use it to decide between the app and the sign-in form. */
    me: tether.query.query(({ ctx }) => (ctx.user ? { id: ctx.user.id, email: ctx.user.email, name: ctx.user.name } : null)),

    projects: tether.router({
      list: authedQuery.query(({ ctx }) =>
        ctx.db.project.findMany({
          orderBy: [{ createdAt: "asc" }, { id: "asc" }],
          select: {
            id: true,
            name: true,
            ownerId: true,
            createdAt: true,
            owner: { select: { name: true } },
            tasks: { select: { id: true, done: true } },
          },
        }),
      ),
      /** NOT_FOUND for a project that does not exist or that the policy hides (someone else's). */
      get: authedQuery.input(z.object({ id: z.string().min(1) })).query(async ({ ctx, input }) => {
        const project = await ctx.db.project.findUnique({
          where: { id: input.id },
          select: { id: true, name: true, ownerId: true, createdAt: true, note: { select: { id: true } } },
        });
        if (!project) throw new TRPCError({ code: "NOT_FOUND", message: "No such project" });
        return project;
      }),
      create: workflowMutation
        .input(z.object({ name: z.string().trim().min(1).max(80) }))
        .mutation(async ({ ctx, input }) => {
          const project = await ctx.db.project.create({ data: { name: input.name, ownerId: ctx.user.id }, select: { id: true, name: true } });
          // Every project has its collaborative note from the start (same transaction).
          await ctx.db.note.create({ data: { projectId: project.id } });
          // Ends the welcome workflow's wait, in this transaction: the event exists exactly when the
          // project does. Every project sends it — not only one counted as the first — so a user
          // who owns projects made elsewhere (the seed, SQL) still ends the wait with their next;
          // once the run has finished, the engine ignores the event (no row is written).
          await announceFirstProject(ctx.workflows, ctx.user.id, project.id);
          return project;
        }),
      /** The owner and everyone the project is shared with. */
      members: authedQuery.input(z.object({ projectId: z.string().min(1) })).query(async ({ ctx, input }) => {
        const project = await ctx.db.project.findUnique({
          where: { id: input.projectId },
          select: {
            owner: { select: { id: true, name: true, email: true } },
            members: { orderBy: [{ createdAt: "asc" }, { id: "asc" }], select: { user: { select: { id: true, name: true, email: true } } } },
          },
        });
        if (!project) throw new TRPCError({ code: "NOT_FOUND", message: "No such project" });
        return [{ ...project.owner, role: "owner" as const }, ...project.members.map((m) => ({ ...m.user, role: "member" as const }))];
      }),
      /** Shares a project with another user by email (owner only: the policy refuses anyone else). */
      share: authedMutation
        .input(z.object({ projectId: z.string().min(1), email: z.string().trim().toLowerCase().email().max(200) }))
        .mutation(async ({ ctx, input }) => {
          const project = await ctx.db.project.findUnique({ where: { id: input.projectId }, select: { ownerId: true } });
          if (!project) throw new TRPCError({ code: "NOT_FOUND", message: "No such project" });
          if (project.ownerId !== ctx.user.id) throw new TRPCError({ code: "FORBIDDEN", message: "Only the project's owner can share it" });
          const user = await ctx.db.user.findUnique({ where: { email: input.email }, select: { id: true, name: true } });
          if (!user) throw new TRPCError({ code: "NOT_FOUND", message: `No user with the email ${input.email}` });
          if (user.id === ctx.user.id) throw new TRPCError({ code: "BAD_REQUEST", message: "You own this project already" });
          await ctx.db.projectMember.upsert({
            where: { projectId_userId: { projectId: input.projectId, userId: user.id } },
            create: { projectId: input.projectId, userId: user.id },
            update: {},
          });
          return { userId: user.id, name: user.name };
        }),
      /** Removes a member (the owner removes anyone; a member can remove themself). */
      unshare: authedMutation
        .input(z.object({ projectId: z.string().min(1), userId: z.string().min(1) }))
        .mutation(async ({ ctx, input }) => {
          const { count } = await ctx.db.projectMember.deleteMany({ where: { projectId: input.projectId, userId: input.userId } });
          if (count === 0) throw new TRPCError({ code: "NOT_FOUND", message: "No such member" });
          return { removed: count };
        }),
    }),

    tasks: tether.router({
      byProject: authedQuery
        .input(z.object({ projectId: z.string().min(1), filter: taskFilter.default("all") }))
        .query(({ ctx, input }) => {
          const where =
            input.filter === "open"
              ? { done: false }
              : input.filter === "done"
                ? { done: true }
                : input.filter === "mine"
                  ? { assigneeId: ctx.user.id }
                  : {};
          return ctx.db.task.findMany({
            where: { projectId: input.projectId, ...where },
            orderBy: [{ position: "asc" }, { createdAt: "asc" }, { id: "asc" }],
            select: taskFields,
          });
        }),
      add: authedMutation
        .input(z.object({ projectId: z.string().min(1), title: z.string().trim().min(1).max(200) }))
        .mutation(async ({ ctx, input }) => {
          const last = await ctx.db.task.findFirst({ where: { projectId: input.projectId }, orderBy: { position: "desc" }, select: { position: true } });
          return ctx.db.task.create({
            data: { projectId: input.projectId, title: input.title, position: (last?.position ?? -1) + 1, assigneeId: ctx.user.id },
            select: taskFields,
          });
        }),
      setDone: authedMutation
        .input(z.object({ id: z.string().min(1), done: z.boolean() }))
        .mutation(({ ctx, input }) => ctx.db.task.update({ where: { id: input.id }, data: { done: input.done }, select: taskFields })),
      /** Moves a task one place up or down in its project; positions are renumbered 0..n-1. */
      reorder: authedMutation
        .input(z.object({ id: z.string().min(1), direction: z.enum(["up", "down"]) }))
        .mutation(async ({ ctx, input }) => {
          const task = await ctx.db.task.findUnique({ where: { id: input.id }, select: { projectId: true } });
          if (!task) throw new TRPCError({ code: "NOT_FOUND", message: "No such task" });
          const tasks = await ctx.db.task.findMany({
            where: { projectId: task.projectId },
            orderBy: [{ position: "asc" }, { createdAt: "asc" }, { id: "asc" }],
            select: { id: true, position: true },
          });
          const from = tasks.findIndex((t) => t.id === input.id);
          const to = input.direction === "up" ? from - 1 : from + 1;
          if (to < 0 || to >= tasks.length) return { moved: false };
          const order = tasks.map((t) => t.id);
          [order[from], order[to]] = [order[to]!, order[from]!];
          for (const [position, id] of order.entries()) {
            if (tasks.find((t) => t.id === id)!.position !== position) await ctx.db.task.update({ where: { id }, data: { position } });
          }
          return { moved: true };
        }),
    }),

    notes: tether.router({
      /**
       * The note's text as its column holds it: what the page shows (and the server renders) until
       * the collaborative document has loaded. Read once, not live — the document is what stays live.
       */
      text: authedQuery.input(z.object({ projectId: z.string().min(1) })).query(async ({ ctx, input }) => {
        const note = await ctx.db.note.findUnique({ where: { projectId: input.projectId }, select: { id: true, body: true } });
        if (!note) throw new TRPCError({ code: "NOT_FOUND", message: "No such note" });
        return note;
      }),
    }),

    exports: tether.router({
      /**
       * "Export project as CSV": records the export and enqueues its job in this mutation's
       * transaction. The client watches the job (`useJob(jobId)`) and downloads `/exports/<exportId>.csv`.
       */
      start: jobMutation.input(z.object({ projectId: z.string().min(1) })).mutation(async ({ ctx, input }) => {
        const project = await ctx.db.project.findUnique({ where: { id: input.projectId }, select: { id: true } });
        if (!project) throw new TRPCError({ code: "NOT_FOUND", message: "No such project" });
        // The read policy shows the caller only their own exports.
        const attemptsMs = jobLimits.exportTimeoutSeconds * 1000 * (jobLimits.exportRetries + 1);
        const pending = await ctx.db.projectExport.count({ where: { status: "pending", createdAt: { gt: new Date(Date.now() - attemptsMs) } } });
        if (pending >= jobLimits.maxPendingExportsPerUser) {
          throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: `You have ${pending} exports running; wait for one to finish` });
        }
        const exportId = randomUUID();
        const jobId = await ctx.jobs.enqueue("exportCsv", { exportId });
        await ctx.db.projectExport.create({ data: { id: exportId, projectId: project.id, ownerId: ctx.user.id, jobId } });
        return { exportId, jobId };
      }),
      /** The caller's latest export of a project (null when none), so a reloaded page finds it again. */
      latest: authedQuery.input(z.object({ projectId: z.string().min(1) })).query(({ ctx, input }) =>
        ctx.db.projectExport.findFirst({
          where: { projectId: input.projectId },
          orderBy: [{ createdAt: "desc" }, { id: "desc" }],
          select: { id: true, jobId: true, status: true, rows: true, createdAt: true },
        }),
      ),
    }),

    inbox: tether.router({
      /** The caller's messages, newest first (live: a job's welcome message appears by itself). */
      list: authedQuery.query(({ ctx }) =>
        ctx.db.message.findMany({
          orderBy: [{ createdAt: "desc" }, { id: "asc" }],
          take: 50,
          select: { id: true, title: true, body: true, read: true, createdAt: true },
        }),
      ),
    }),

    activity: tether.router({
      /** The latest task changes of a project (created, completed, renamed, moved), newest first. */
      recent: authedQuery.input(z.object({ projectId: z.string().min(1) })).query(({ ctx, input }) =>
        ctx.db.task.findMany({
          where: { projectId: input.projectId },
          orderBy: [{ updatedAt: "desc" }, { id: "asc" }],
          take: 8,
          select: taskFields,
        }),
      ),
    }),
  });
  /** `ctx.workflows` for a transaction the router did not open (the seed's), as the system. */
  const workflowsIn = (tx: unknown) => workflowsClient.inTransaction(tx, null);
  return { tether, router, onSignUp, workflowsIn };
}

export type AppRouter = ReturnType<typeof buildRouter>["router"];
