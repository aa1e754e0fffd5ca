import { randomUUID } from "node:crypto";
import type { TetherAuth } from "@tether/server";
import type { DemoStore } from "./store.ts";

export const DEMO_USER = { email: "demo@tether.dev", password: "demo-password", name: "Demo User" };
export const DEMO_PROJECT = { id: "demo-project", name: "Launch Tether" };

/**
 * The demo user (signed up through better-auth, so the password hash is real) and a sample
 * project with tasks. Idempotent: each part is created only when missing.
 */
export async function seed(store: DemoStore, auth: TetherAuth): Promise<string[]> {
  const done: string[] = [];
  const db = store.db;
  let user = await db.user.findUnique({ where: { email: DEMO_USER.email } });
  if (!user) {
    await auth.auth.api.signUpEmail({ body: DEMO_USER });
    user = await db.user.findUniqueOrThrow({ where: { email: DEMO_USER.email } });
    done.push("user");
  } else if (!(await db.account.findFirst({ where: { userId: user.id, providerId: "credential" } }))) {
    // A user row from an older seed (no credentials): give it the demo password.
    const context = await auth.auth.$context;
    await db.account.create({
      data: { id: randomUUID(), accountId: user.id, providerId: "credential", userId: user.id, password: await context.password.hash(DEMO_USER.password) },
    });
    done.push("credentials");
  }
  if (!(await db.project.findUnique({ where: { id: DEMO_PROJECT.id } }))) {
    const userId = user.id;
    await db.$transaction(async (tx) => {
      await tx.project.create({ data: { ...DEMO_PROJECT, ownerId: userId } });
      const tasks = [
        { title: "Write the change feed", done: true, mine: true },
        { title: "Ship live queries", done: true, mine: true },
        { title: "Build the Next.js demo", done: false, mine: true },
        { title: "Invite the team", done: false, mine: false },
        { title: "Collaborative documents with Loro", done: false, mine: false },
      ];
      for (const [position, task] of tasks.entries()) {
        await tx.task.create({
          data: { projectId: DEMO_PROJECT.id, title: task.title, position, done: task.done, assigneeId: task.mine ? userId : null },
        });
      }
    });
    done.push("project");
  }
  return done;
}
