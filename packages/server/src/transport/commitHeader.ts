import { COMMIT_HEADER, encodeCommitHeader } from "@tether/protocol";
import { takeCommits } from "../procedures/index.ts";

/**
 * tRPC `responseMeta`: tells the client which transactions its mutations committed
 * (`x-tether-commit: <xid>,<xid>`), so it can wait until its live queries reflect them. The commits
 * are taken, not just read: a context object shared by several requests must not hand one
 * request's commits to every later response.
 */
export function commitResponseMeta({ ctx }: { ctx?: unknown }): { headers?: Record<string, string> } {
  if (!ctx || typeof ctx !== "object") return {};
  const commits = takeCommits(ctx);
  return commits.length > 0 ? { headers: { [COMMIT_HEADER]: encodeCommitHeader(commits) } } : {};
}
