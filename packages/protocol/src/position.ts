/**
 * Change-feed positions, as live messages report them: `"<horizon>:<xid>,<xid>…"` — every
 * transaction with xid < horizon is reflected, and so is each listed xid ≥ horizon.
 *
 * A copy of the pure parser in packages/server/src/feed/position.ts (the server package is
 * Node-only at runtime); `test/client/protocol.test.ts` checks the two agree.
 */
export interface FeedPosition {
  readonly horizon: string;
  readonly seen: readonly string[];
}

const POSITION_PATTERN = /^\d+(:(\d+(,\d+)*)?)?$/;
const XID_PATTERN = /^\d+$/;

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

/** Parses an `x-tether-commit` header (`<xid>,<xid>`); ignores anything that is not an xid. */
export function parseCommitHeader(header: string | null | undefined): string[] {
  if (!header) return [];
  return header
    .split(",")
    .map((part) => part.trim())
    .filter((part) => XID_PATTERN.test(part));
}
