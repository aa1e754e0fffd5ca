import type { FeedPosition } from "@tether/protocol";

// The position and its text form are wire protocol (@tether/protocol); moving it forward is the feed's.
export { decodePosition, encodePosition, positionIncludes, type FeedPosition } from "@tether/protocol";

/** The position after delivering `delivered` on top of `from`, moving the horizon to `horizon`. */
export function advance(from: FeedPosition, delivered: readonly string[], horizon: string): FeedPosition {
  const h = BigInt(horizon) > BigInt(from.horizon) ? horizon : from.horizon;
  const floor = BigInt(h);
  const seen = new Set<string>();
  for (const xid of [...from.seen, ...delivered]) if (BigInt(xid) >= floor) seen.add(xid);
  return { horizon: h, seen: [...seen].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0)) };
}
