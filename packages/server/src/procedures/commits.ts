/**
 * Commit positions of the mutations a request ran, keyed by the request's context object, so a
 * transport can tell the client (header `x-tether-commit`) which transactions to wait for when
 * it wants its live queries to reflect its own writes.
 */
const commitsByContext = new WeakMap<object, string[]>();

/**
 * Most commits kept per context. A WebSocket connection's context is never read by a response
 * (there is no header to carry them), so without a bound its list would grow for the life of the
 * connection; an HTTP batch never comes near this many mutations.
 */
const MAX_COMMITS_PER_CONTEXT = 64;

export function recordCommit(ctx: object, xid: string): void {
  const list = commitsByContext.get(ctx);
  if (!list) {
    commitsByContext.set(ctx, [xid]);
    return;
  }
  list.push(xid);
  if (list.length > MAX_COMMITS_PER_CONTEXT) list.splice(0, list.length - MAX_COMMITS_PER_CONTEXT);
}

/** Transaction ids committed by mutations run with this context (xid8 decimal strings). */
export function commitsOf(ctx: object): readonly string[] {
  return commitsByContext.get(ctx) ?? [];
}

/**
 * The commits recorded for this context, forgotten as they are read: a transport calls it once per
 * response. A context object may outlive its request (a `createContext` that returns a shared or
 * cached object, a WebSocket connection's context), and its commits must reach that request's
 * response only, not pile up into every later one.
 */
export function takeCommits(ctx: object): readonly string[] {
  const list = commitsByContext.get(ctx) ?? [];
  commitsByContext.delete(ctx);
  return list;
}

export { COMMIT_HEADER } from "@tether/protocol";
