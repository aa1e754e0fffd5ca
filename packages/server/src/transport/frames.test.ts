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
  const patch = { kind: "patch", version: 4, position: "11", patch: { order: ["a"], upsert: rows } };

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

  it("with a data transformer, stringifies a live message's serialized part once for many frames", () => {
    const spy = vi.spyOn(JSON, "stringify");
    // What procedures/liveTransformer.ts sends: the transformer's output of the big part, one object per result.
    const value = { json: [{ id: "b", at: "1970-01-01T00:00:00.000Z" }], meta: { values: { "0.at": ["Date"] } } };
    const serialized = { $tetherLive: { kind: "full", version: 1, position: "1" }, part: "data", value };
    for (let id = 1; id <= 100; id += 1) {
      const encoded = encodeFrame(frame(id, { ...serialized }), true);
      expect(JSON.parse(encoded)).toEqual(JSON.parse(JSON.stringify(frame(id, serialized))));
    }
    expect(spy.mock.calls.filter(([arg]) => arg === value)).toHaveLength(1);
    spy.mockRestore();
  });
});
