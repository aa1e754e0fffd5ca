import { randomUUID } from "node:crypto";
import type { TetherAuth, UntypedWorkflowClient } from "@tether/server";
import type { DemoStore } from "./store.ts";
import { announceFirstProject } from "./workflows/index.ts";

export const DEMO_USER = { email: "demo@tether.dev", password: "demo-password", name: "Demo User" };
/** A second account the sample project is shared with: sign in as both to see sharing live. */
export const TEAMMATE = { email: "sam@tether.dev", password: "demo-password", name: "Sam Teammate" };
export const DEMO_PROJECT = { id: "demo-project", name: "Launch Tether" };

/** A user with credentials (signed up through better-auth, so the password hash is real). */
async function ensureUser(store: DemoStore, auth: TetherAuth, account: typeof DEMO_USER, done: string[]) {
  const db = store.db;
  let user = await db.user.findUnique({ where: { email: account.email } });
  if (!user) {
    await auth.auth.api.signUpEmail({ body: account });
    user = await db.user.findUniqueOrThrow({ where: { email: account.email } });
    done.push(`user ${account.email}`);
  } else if (!(await db.account.findFirst({ where: { userId: user.id, providerId: "credential" } }))) {
    // A user row from an older seed (no credentials): give it the demo password.
    const context = await auth.auth.$context;
    await db.account.create({
      data: { id: randomUUID(), accountId: user.id, providerId: "credential", userId: user.id, password: await context.password.hash(account.password) },
    });
    done.push(`credentials ${account.email}`);
  }
  return user;
}

/**
 * The demo user, a teammate, and a sample project with tasks and a note, shared with the
 * teammate. Idempotent: each part is created only when missing.
 *
 * Welcome workflows: the users are signed up through better-auth, so each gets its run from
 * `onSignUp` like anyone else (nothing seed-specific). The sample project is the demo user's
 * first project, so its transaction sends the "first project" event as the create-project
 * mutation would: the demo user is not nudged about a project they own. The teammate owns none
 * and is nudged after the timeout, as any new user would be. Users seeded before the workflow
 * existed get no run (a welcome days after signing up would be wrong); their pages show none.
 */
export async function seed(store: DemoStore, auth: TetherAuth, workflowsIn: (tx: unknown) => Pick<UntypedWorkflowClient, "sendEvent">): Promise<string[]> {
  const done: string[] = [];
  const db = store.db;
  const user = await ensureUser(store, auth, DEMO_USER, done);
  const teammate = await ensureUser(store, auth, TEAMMATE, done);
  if (!(await db.project.findUnique({ where: { id: DEMO_PROJECT.id } }))) {
    const userId = user.id;
    await db.$transaction(async (tx) => {
      await tx.project.create({ data: { ...DEMO_PROJECT, ownerId: userId } });
      await announceFirstProject(workflowsIn(tx), userId, DEMO_PROJECT.id);
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
  if (!(await db.note.findUnique({ where: { projectId: DEMO_PROJECT.id } }))) {
    await db.note.create({ data: { projectId: DEMO_PROJECT.id, body: "Welcome! Everyone on the project edits this note together." } });
    done.push("note");
  }
  const membership = { projectId: DEMO_PROJECT.id, userId: teammate.id };
  if (!(await db.projectMember.findUnique({ where: { projectId_userId: membership } }))) {
    await db.projectMember.create({ data: membership });
    done.push("sharing");
  }
  return done;
}
