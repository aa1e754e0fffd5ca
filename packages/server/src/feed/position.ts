/**
 * A feed position: how far a reader has consumed the change log, in commit order.
 *
 * Sequence numbers are taken when a row is written, not when its transaction commits, so "last
 * seq read" would skip a slow transaction's changes (DESIGN.md, Change log and feed). Instead a
 * position is a snapshot horizon over transaction ids: every transaction with xid < `horizon`
 * has been delivered (or had no changes), and `seen` lists the transactions ≥ horizon delivered
 * already. It is the same on every node, so a client may resume on another node.
 */
export interface FeedPosition {
  /** xid8 as a decimal string. */
  readonly horizon: string;
  /** Delivered transaction ids ≥ horizon, ascending, as decimal strings. */
  readonly seen: readonly string[];
}

const POSITION_PATTERN = /^\d+(:(\d+(,\d+)*)?)?$/;

/** `"<horizon>:<xid>,<xid>"` — compact, URL- and header-safe. */
export function encodePosition(position: FeedPosition): string {
  return `${position.horizon}:${position.seen.join(",")}`;
}

export function decodePosition(text: string): FeedPosition {
  if (!POSITION_PATTERN.test(text)) {
    throw new TypeError(`invalid change-feed position ${JSON.stringify(text)}: expected "<xid>:<xid>,<xid>…"`);
  }
  const [horizon = "0", seen = ""] = text.split(":");
  return { horizon, seen: seen ? seen.split(",") : [] };
}

/** Has the transaction `xid` been delivered to a reader at `position`? (read-your-writes) */
export function positionIncludes(position: FeedPosition | string, xid: string | bigint): boolean {
  const p = typeof position === "string" ? decodePosition(position) : position;
  const x = BigInt(xid);
  return x < BigInt(p.horizon) || p.seen.includes(x.toString());
}

/** The position after delivering `delivered` on top of `from`, moving the horizon to `horizon`. */
export function advance(from: FeedPosition, delivered: readonly string[], horizon: string): FeedPosition {
  const h = BigInt(horizon) > BigInt(from.horizon) ? horizon : from.horizon;
  const floor = BigInt(h);
  const seen = new Set<string>();
  for (const xid of [...from.seen, ...delivered]) if (BigInt(xid) >= floor) seen.add(xid);
  return { horizon: h, seen: [...seen].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0)) };
}
