/**
 * Commit positions of the mutations a request ran, keyed by the request's context object, so a
 * transport can tell the client (header `x-tether-commit`) which transactions to wait for when
 * it wants its live queries to reflect its own writes.
 */
const commitsByContext = new WeakMap<object, string[]>();

export function recordCommit(ctx: object, xid: string): void {
  const list = commitsByContext.get(ctx);
  if (list) list.push(xid);
  else commitsByContext.set(ctx, [xid]);
}

/** Transaction ids committed by mutations run with this context (xid8 decimal strings). */
export function commitsOf(ctx: object): readonly string[] {
  return commitsByContext.get(ctx) ?? [];
}

export const COMMIT_HEADER = "x-tether-commit";
