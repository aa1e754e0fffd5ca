import { describe, expect, it, vi } from "vitest";
import { encodeFrame } from "./frames.ts";

/** A `$live` data frame as tRPC's WS adapter builds it around a tracked message. */
const frame = (id: number, message: unknown) => ({
  id,
  jsonrpc: "2.0",
  result: { type: "data", id: "3.h", data: { id: "3.h", data: message } },
});

describe("encodeFrame", () => {
  const rows = [{ id: "a", title: "x".repeat(100), done: false, at: new Date(0) }];
  const full = { kind: "full", version: 3, position: "10", data: rows };
  const patch = { kind: "patch", version: 4, position: "11", patch: { start: 0, remove: 1, insert: ["a"], upsert: rows, at: [0] } };

  it("encodes what JSON.stringify encodes, for full, patch, resumed and other frames", () => {
    for (const message of [full, patch, { kind: "resumed", version: 3, position: "10" }, { other: true }]) {
      expect(JSON.parse(encodeFrame(frame(7, message), true))).toEqual(JSON.parse(JSON.stringify(frame(7, message))));
    }
    expect(encodeFrame({ id: 1, result: { type: "started" } }, true)).toBe(JSON.stringify({ id: 1, result: { type: "started" } }));
  });

  it("stringifies a shared result once for many frames, and never caches unshared ones", () => {
    const spy = vi.spyOn(JSON, "stringify");
    const sharedRows = [{ id: "b" }];
    const message = { kind: "full", version: 1, position: "1", data: sharedRows };
    for (let id = 1; id <= 100; id += 1) encodeFrame(frame(id, { ...message }), true);
    expect(spy.mock.calls.filter(([value]) => value === sharedRows)).toHaveLength(1);
    const own = [{ id: "c" }];
    encodeFrame(frame(1, { ...message, data: own }), false);
    encodeFrame(frame(2, { ...message, data: own }), false);
    expect(spy.mock.calls.filter(([value]) => value === own)).toHaveLength(0); // stringified whole, twice
    spy.mockRestore();
  });
});
