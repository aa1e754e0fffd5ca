import { COMMIT_HEADER, commitsOf } from "../procedures/index.ts";

/**
 * tRPC `responseMeta`: tells the client which transactions its mutations committed
 * (`x-tether-commit: <xid>,<xid>`), so it can wait until its live queries reflect them.
 */
export function commitResponseMeta({ ctx }: { ctx?: unknown }): { headers?: Record<string, string> } {
  if (!ctx || typeof ctx !== "object") return {};
  const commits = commitsOf(ctx);
  return commits.length > 0 ? { headers: { [COMMIT_HEADER]: commits.join(",") } } : {};
}
