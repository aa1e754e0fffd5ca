/**
 * The demo's API: projects and their tasks, scoped by row-level policies (a project and its tasks
 * are visible to the project's owner only). Every query here can be subscribed live from the
 * browser with `useLiveQuery`.
 */
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { initTether, type AuthContext, type Policies, type SessionGuard } from "@tether/server";
import type { PrismaClient } from "../../../../generated/prisma/client.ts";
import { schema } from "../../../../generated/tether/index.ts";
import type { DemoStore } from "./store.ts";

type Db = Pick<PrismaClient, "project">;

/** Does the caller own this project? (Rules run with policies suspended: explicit where.) */
async function ownsProject(ctx: AuthContext & { db: Db }, projectId: string): Promise<boolean> {
  if (!ctx.user) return false;
  return (await ctx.db.project.count({ where: { id: projectId, ownerId: ctx.user.id } })) > 0;
}

export const policies: Policies<PrismaClient, AuthContext> = {
  project: {
    read: (ctx) => (ctx.user ? { ownerId: ctx.user.id } : false),
    create: (ctx, row) => row.ownerId === ctx.user?.id,
    update: (ctx, row, next) => row.ownerId === ctx.user?.id && next.ownerId === ctx.user?.id,
    delete: (ctx, row) => row.ownerId === ctx.user?.id,
  },
  task: {
    read: (ctx) => (ctx.user ? { project: { ownerId: ctx.user.id } } : false),
    create: (ctx, row) => ownsProject(ctx, row.projectId),
    update: async (ctx, row, next) => (await ownsProject(ctx, row.projectId)) && ownsProject(ctx, next.projectId),
    delete: (ctx, row) => ownsProject(ctx, row.projectId),
  },
};

export const taskFilter = z.enum(["all", "open", "done", "mine"]);
export type TaskFilter = z.infer<typeof taskFilter>;

const taskFields = { id: true, title: true, done: true, position: true, assigneeId: true, createdAt: true, updatedAt: true } as const;

export function buildRouter(store: DemoStore, auth: { sessions: SessionGuard; protectedModels?: readonly string[] }) {
  const tether = initTether<AuthContext>().create({ store, schema, auth, policies });
  const authedQuery = tether.query.use(tether.authed);
  const authedMutation = tether.mutation.use(tether.authed);

  const router = tether.appRouter({
    /** The signed-in user, or null: pages use it to decide between the app and the sign-in form. */
    me: tether.query.query(({ ctx }) => (ctx.user ? { id: ctx.user.id, email: ctx.user.email, name: ctx.user.name } : null)),

    projects: tether.router({
      list: authedQuery.query(({ ctx }) =>
        ctx.db.project.findMany({
          orderBy: [{ createdAt: "asc" }, { id: "asc" }],
          select: { id: true, name: true, createdAt: true, tasks: { select: { id: true, done: true } } },
        }),
      ),
      /** NOT_FOUND for a project that does not exist or that the policy hides (someone else's). */
      get: authedQuery.input(z.object({ id: z.string().min(1) })).query(async ({ ctx, input }) => {
        const project = await ctx.db.project.findUnique({ where: { id: input.id }, select: { id: true, name: true, ownerId: true, createdAt: true } });
        if (!project) throw new TRPCError({ code: "NOT_FOUND", message: "No such project" });
        return project;
      }),
      create: authedMutation
        .input(z.object({ name: z.string().trim().min(1).max(80) }))
        .mutation(({ ctx, input }) => ctx.db.project.create({ data: { name: input.name, ownerId: ctx.user.id }, select: { id: true, name: true } })),
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
  return { tether, router };
}

export type AppRouter = ReturnType<typeof buildRouter>["router"];
