import { z } from "zod";
import type { JobBuilder } from "@tether/server";
import type { PrismaClient } from "../../../../../generated/prisma/client.ts";

/** The welcome message's id for a user: one per user, however often the job runs (at-least-once). */
export const welcomeMessageId = (userId: string) => `welcome-${userId}`;

/** Enqueued by the sign-up's own transaction (app.ts, `onSignUp`): writes a welcome message into the new user's inbox. */
export function sendWelcomeJob(job: JobBuilder<PrismaClient, undefined, undefined>) {
  return job.input(z.object({ userId: z.string().min(1) })).handler(async ({ ctx, input }) => {
    const user = await ctx.db.user.findUnique({ where: { id: input.userId }, select: { name: true } });
    if (!user) return { sent: false };
    const id = welcomeMessageId(input.userId);
    await ctx.db.message.upsert({
      where: { id },
      create: {
        id,
        userId: input.userId,
        title: `Welcome to Tether, ${user.name}!`,
        body: "Your projects, tasks and notes update live on every device. Try exporting a project as CSV: it runs as a background job with a live progress bar.",
      },
      update: {},
    });
    return { sent: true };
  });
}
