/**
 * A change-feed position: how far a reader has consumed the change log, in commit order. Live
 * messages report one; the client compares it with the transaction ids of its own writes.
 *
 * Sequence numbers are taken when a row is written, not when its transaction commits, so "last
 * seq read" would skip a slow transaction's changes. Instead a position is a snapshot horizon over
 * transaction ids: every transaction with xid < `horizon` has been delivered (or had no changes),
 * and `seen` lists the transactions ≥ horizon delivered already. It is the same on every node, so
 * a client may resume on another node. Text form: `"<horizon>:<xid>,<xid>…"`.
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

/** Does data at `position` reflect transaction `xid`? (read-your-writes) */
export function positionIncludes(position: FeedPosition | string, xid: string | bigint): boolean {
  const p = typeof position === "string" ? decodePosition(position) : position;
  const x = BigInt(xid);
  return x < BigInt(p.horizon) || p.seen.includes(x.toString());
}
