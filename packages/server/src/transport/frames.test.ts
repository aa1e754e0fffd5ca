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

describe("encodeFrame's template for tRPC's tracked frames", () => {
  /** Exactly what tRPC's adapter builds (key order included), for any id and jsonrpc. */
  const trpcFrame = (id: number | string, jsonrpc: "2.0" | undefined, eventId: string, message: unknown) => {
    const result: Record<string, unknown> = { type: "data", data: { id: eventId, data: message } };
    result.id = eventId;
    return { id, jsonrpc, result };
  };

  it("writes the same JSON as JSON.stringify, byte for byte, and stringifies a shared message once", () => {
    const spy = vi.spyOn(JSON, "stringify");
    const message = { kind: "patch", version: 2, position: "9:", patch: { start: 1, remove: 0, insert: ["q\"é"], upsert: [{ id: "q\"é" }], at: [1] } };
    for (const [id, jsonrpc] of [[1, "2.0"], ["x\"y", undefined], [0, undefined]] as const) {
      const frame = trpcFrame(id, jsonrpc, "2.h\"", message);
      const expected = JSON.stringify(frame);
      expect(encodeFrame(frame, true)).toBe(expected);
    }
    // Once per message: its patch, and its small shell around it.
    expect(spy.mock.calls.filter(([value]) => value === message.patch)).toHaveLength(1);
    expect(spy.mock.calls.filter(([value]) => (value as { kind?: unknown } | null)?.kind === "patch")).toHaveLength(1);
    spy.mockRestore();
  });

  it("falls back for frames of another shape", () => {
    const message = { kind: "full", version: 1, position: "1", data: [] };
    const extra = { ...trpcFrame(1, "2.0", "1.h", message), extra: true };
    expect(JSON.parse(encodeFrame(extra, true))).toEqual(JSON.parse(JSON.stringify(extra)));
    const notTracked = { id: 1, result: { type: "data", data: message } };
    expect(JSON.parse(encodeFrame(notTracked, true))).toEqual(JSON.parse(JSON.stringify(notTracked)));
  });
});
