import { TRPCError } from "@trpc/server";
import { describe, expect, it } from "vitest";
import { ManualClock } from "@tether/protocol";
import type { Change, FeedEvent } from "../feed/index.ts";
import { LiveSessions, parseTimestamp } from "./liveSessions.ts";

const change = (op: Change["op"], row: Record<string, unknown> | null, table = "Session"): Change => ({
  seq: "1",
  xid: "1",
  table,
  op,
  pk: row ? { id: row.id } : null,
  old: op === "INSERT" ? null : row,
  new: op === "DELETE" ? null : row,
  omitted: [],
  at: new Date().toISOString(),
});
const tx = (...changes: Change[]): FeedEvent => ({ type: "transaction", xid: "1", changes, position: "0:" });
/** How the trigger captures a timestamp(3): no zone, UTC. */
const captured = (ms: number) => new Date(ms).toISOString().replace("Z", "");

function setup(lookup: (ids: string[]) => Promise<Map<string, Date>> = async () => new Map(), clock?: ManualClock) {
  return new LiveSessions({ table: "Session", lookup, clock });
}
const ctxFor = (id: string, expiresAt: number) => ({ user: { id: "u" }, session: { id, expiresAt: new Date(expiresAt) } });
const codeOf = (reason: unknown) => (reason instanceof TRPCError ? reason.code : String(reason));

describe("LiveSessions", () => {
  it("ends a subscription at its session's expiry (timer, no database change)", () => {
    const clock = new ManualClock();
    const sessions = setup(undefined, clock);
    const signal = sessions.admit(ctxFor("s1", clock.now() + 150), new AbortController().signal)!;
    clock.advance(149);
    expect(signal.aborted).toBe(false);
    clock.advance(1);
    expect(signal.aborted).toBe(true);
    expect(codeOf(signal.reason)).toBe("UNAUTHORIZED");
  });

  it("ends on a DELETE of the session row, on expiresAt moved into the past, on TRUNCATE; re-arms on refresh", async () => {
    const sessions = setup();
    const far = Date.now() + 60_000;
    const untils = [new AbortController(), new AbortController(), new AbortController()];
    const a = sessions.admit(ctxFor("a", far), untils[0]!.signal)!;
    const b = sessions.admit(ctxFor("b", far), untils[1]!.signal)!;
    const c = sessions.admit(ctxFor("c", far), untils[2]!.signal)!;
    await sessions.onFeedEvent(tx(change("DELETE", { id: "a" }), change("DELETE", { id: "b" }, "Task")));
    expect([a.aborted, b.aborted, c.aborted]).toEqual([true, false, false]);
    await sessions.onFeedEvent(tx(change("UPDATE", { id: "b", expiresAt: captured(Date.now() + 120_000) })));
    expect(b.aborted).toBe(false);
    await sessions.onFeedEvent(tx(change("UPDATE", { id: "b", expiresAt: captured(Date.now() - 1) })));
    expect(b.aborted).toBe(true);
    await sessions.onFeedEvent(tx(change("TRUNCATE", null)));
    expect(c.aborted).toBe(true);
    // Ended subscriptions finish (as the live procedure's `finally` does): nothing is kept.
    for (const until of untils) until.abort();
    expect(sessions.size).toBe(0);
  });

  it("refuses later calls on a held WebSocket context once its session ended, until the socket closes", async () => {
    const sessions = setup();
    const socket = new AbortController();
    const ctx = ctxFor("w", Date.now() + 60_000);
    sessions.hold(ctx.session, socket.signal);
    expect(() => sessions.assertActive(ctx)).not.toThrow();
    await sessions.onFeedEvent(tx(change("DELETE", { id: "w" })));
    expect(() => sessions.assertActive(ctx)).toThrow(TRPCError);
    expect(() => sessions.admit(ctx, new AbortController().signal)).toThrow(/signed out or revoked/);
    socket.abort();
    expect(sessions.size).toBe(0);
    // An expired context is refused whether or not it is watched.
    expect(() => sessions.assertActive(ctxFor("old", Date.now() - 1))).toThrow(/expired/);
  });

  it("after a feed resync, asks the database where each watched session stands", async () => {
    const sessions = setup(async (ids) => new Map(ids.filter((id) => id === "kept").map((id) => [id, new Date(Date.now() + 60_000)])));
    const kept = sessions.admit(ctxFor("kept", Date.now() + 60_000), new AbortController().signal)!;
    const gone = sessions.admit(ctxFor("gone", Date.now() + 60_000), new AbortController().signal)!;
    await sessions.onFeedEvent({ type: "resync", reason: "trimmed", position: "0:" });
    expect([kept.aborted, gone.aborted]).toEqual([false, true]);
  });

  it("releases a session when its last subscription ends", () => {
    const sessions = setup();
    const until = new AbortController();
    sessions.admit(ctxFor("r", Date.now() + 60_000), until.signal);
    expect(sessions.size).toBe(1);
    until.abort();
    expect(sessions.size).toBe(0);
  });

  it("parses captured timestamps as UTC", () => {
    expect(parseTimestamp("2026-11-25T10:00:00.123")).toBe(Date.UTC(2026, 10, 25, 10, 0, 0, 123));
    expect(parseTimestamp("2026-11-25T10:00:00.123+02:00")).toBe(Date.UTC(2026, 10, 25, 8, 0, 0, 123));
    expect(parseTimestamp(null)).toBeNull();
  });
});
