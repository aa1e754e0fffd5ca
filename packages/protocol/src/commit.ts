/**
 * Read-your-writes: a response to a request whose mutations committed carries their transaction
 * ids in this header (`<xid>,<xid>`); the client waits until its live queries' positions include
 * them (`positionIncludes`).
 */
export const COMMIT_HEADER = "x-tether-commit";

const XID_PATTERN = /^\d+$/;

/** The header's value for these transaction ids. */
export function encodeCommitHeader(xids: readonly string[]): string {
  return xids.join(",");
}

/** Parses an `x-tether-commit` header (`<xid>,<xid>`); ignores anything that is not an xid. */
export function parseCommitHeader(header: string | null | undefined): string[] {
  if (!header) return [];
  return header
    .split(",")
    .map((part) => part.trim())
    .filter((part) => XID_PATTERN.test(part));
}

/**
 * A call whose tRPC `context` has this key set to true goes over the WebSocket when the client
 * uses one (its subscriptions' socket), else over HTTP like other calls. For calls that need no
 * commit tracking and must not wait for a request of their own: CRDT pushes.
 */
export const VIA_SOCKET = "tetherViaSocket";
