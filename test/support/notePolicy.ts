// The README's note rule, shared by the policy tests: `ctx.user ? {...} : false`, where `{...}`
// lists the projects the caller owns or is a member of (looked up through `ctx.db`), and a caller
// who shares none (a stranger, a removed member) gets `false` as well.
import type { PrismaClient } from "../../generated/prisma/client.ts";
import type { PolicyContext } from "@tether/server";
import type { Ctx } from "./crdtApp.ts";

export async function readSharedNotes(ctx: PolicyContext<Ctx, Pick<PrismaClient, "project">>) {
  if (!ctx.user) return false as const;
  const userId = ctx.user.id;
  const projects = await ctx.db.project.findMany({ where: { OR: [{ ownerId: userId }, { members: { some: { userId } } }] }, select: { id: true } });
  return projects.length > 0 ? { projectId: { in: projects.map((p) => p.id) } } : (false as const);
}
