import { TRPCError } from "@trpc/server";
import { z } from "zod";
import type { UntypedWorkflowClient, WorkflowBuilder } from "@tether/server";
import type { PrismaClient } from "../../../../../generated/prisma/client.ts";
import type { DemoWorkflowLimits } from "./config.ts";

/** The welcome run of a user: one per user (the id is the run's idempotency key). */
export const welcomeWorkflowId = (userId: string) => `welcome:${userId}`;
/** The event the create-project mutation sends to that run. */
export const FIRST_PROJECT_EVENT = "first project";
/** The welcome message's id: one per user, however often its step runs (at least once). */
export const welcomeMessageId = (userId: string) => `welcome-${userId}`;
/** The nudge's id, for the same reason. */
export const nudgeMessageId = (userId: string) => `nudge-${userId}`;

/** What the run returns (its `output`). */
export interface WelcomeOutput {
  /** The user's first project, or null when the wait timed out and they were nudged. */
  firstProject: { id: string; name: string } | null;
}

type Db = Pick<PrismaClient, "user" | "message" | "project">;

/** Upserts one inbox message by id: a step that runs again (a crash mid-way) writes nothing new. */
async function deliver(db: Db, userId: string, id: string, message: (name: string) => { title: string; body: string }) {
  const user = await db.user.findUnique({ where: { id: userId }, select: { name: true } });
  // Deleted since signing up: nothing to deliver (not an error that would fail the run).
  if (!user) return { delivered: false };
  await db.message.upsert({ where: { id }, create: { id, userId, ...message(user.name) }, update: {} });
  return { delivered: true };
}

/**
 * Onboarding, durable: started by the sign-up's own transaction (router.ts, `onSignUp`). Sends
 * the welcome message, waits for the user's first project (the create-project mutation sends
 * the event in its transaction), and nudges them if none came within the timeout. Each step is
 * persisted: a restart resumes at the wait, with its original deadline.
 */
export function welcomeWorkflow(workflow: WorkflowBuilder<PrismaClient, undefined, undefined>, limits: DemoWorkflowLimits) {
  return workflow.input(z.object({ userId: z.string().min(1) })).run(async ({ step, input, ctx }): Promise<WelcomeOutput> => {
    await step.run("send welcome", () =>
      deliver(ctx.db, input.userId, welcomeMessageId(input.userId), (name) => ({
        title: `Welcome to Tether, ${name}!`,
        body: "Your projects, tasks and notes update live on every device. Try exporting a project as CSV: it runs as a background job with a live progress bar.",
      })),
    );
    const event = await step.waitForEvent<{ projectId: string }>(FIRST_PROJECT_EVENT, { timeout: limits.welcomeFirstProjectTimeoutMs });
    if (!event) {
      await step.run("nudge", () =>
        deliver(ctx.db, input.userId, nudgeMessageId(input.userId), () => ({
          title: "Start your first project",
          body: "Projects hold your tasks and a shared note. Create one from the project list, then share it with a teammate to see it update live.",
        })),
      );
      return { firstProject: null };
    }
    // Recorded as a step: the project's name as it was then is the run's, whatever happens to it later.
    const firstProject = await step.run("record first project", async () => {
      const project = await ctx.db.project.findUnique({ where: { id: event.projectId }, select: { id: true, name: true } });
      return project ?? { id: event.projectId, name: "(deleted)" };
    });
    return { firstProject };
  });
}

/**
 * Ends the wait of `userId`'s welcome run: call it in the transaction that creates a project of
 * theirs (the event then exists exactly when the project does; a finished run ignores it). A user
 * from before the welcome workflow existed has no run: nothing to tell, not an error.
 */
export async function announceFirstProject(workflows: Pick<UntypedWorkflowClient, "sendEvent">, userId: string, projectId: string): Promise<void> {
  try {
    await workflows.sendEvent(welcomeWorkflowId(userId), FIRST_PROJECT_EVENT, { projectId });
  } catch (error) {
    if (!(error instanceof TRPCError && error.code === "NOT_FOUND")) throw error;
  }
}
