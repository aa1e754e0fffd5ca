import type { JobOwner } from "./types.ts";

/** Who is asking, as job access sees it: the signed-in user and whether they are an admin. */
export function viewerOf(ctx: unknown): { id: string; admin: boolean } | null {
  const user = (ctx as { user?: { id?: unknown; role?: unknown } | null } | null)?.user;
  if (!user || typeof user.id !== "string") return null;
  return { id: user.id, admin: user.role === "admin" };
}

/** The enqueuing user of a call (the job's owner). */
export function ownerOf(ctx: unknown): JobOwner | null {
  const viewer = viewerOf(ctx);
  return viewer ? { id: viewer.id } : null;
}
