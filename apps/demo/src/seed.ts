import type { PrismaClient } from "../../../generated/prisma/client.ts";

export const DEMO_USER = { id: "demo-user", email: "demo@tether.dev", name: "Demo User" };
export const DEMO_PROJECT = { id: "demo-project", name: "Launch Tether" };

/** Seeds a demo user and a sample project once; later runs leave existing data alone. */
export async function seed(db: PrismaClient): Promise<boolean> {
  if (await db.user.findUnique({ where: { id: DEMO_USER.id } })) return false;
  await db.$transaction(async (tx) => {
    await tx.user.create({ data: DEMO_USER });
    await tx.project.create({ data: { ...DEMO_PROJECT, ownerId: DEMO_USER.id } });
    const titles = ["Write the change feed", "Ship live queries", "Invite the team"];
    for (const [position, title] of titles.entries()) {
      await tx.task.create({ data: { projectId: DEMO_PROJECT.id, title, position, done: position === 0 } });
    }
  });
  return true;
}
