import { liveAwareDeserializer, type LiveMessage } from "@tether/protocol";
import { SuperJSON } from "superjson";
import { describe, expect, it, vi } from "vitest";
import { liveAwareTransformer, markLiveMessage } from "./liveTransformer.ts";

describe("liveAwareTransformer", () => {
  const superjson = new SuperJSON();
  const rows = [{ id: "a", at: new Date(5), count: 2n ** 60n }];

  function setup() {
    const serialize = vi.fn((value: unknown) => superjson.serialize(value));
    const transformer = liveAwareTransformer({ serialize, deserialize: (value) => superjson.deserialize(value as never) });
    const client = liveAwareDeserializer({ serialize: (v) => superjson.serialize(v), deserialize: (v) => superjson.deserialize(v as never) });
    return { serialize, server: transformer.output, client };
  }

  it("serializes a live message's big part once per object, for WebSocket and SSE frames alike, and the client gets the message back", () => {
    const { serialize, server, client } = setup();
    const full = markLiveMessage({ kind: "full", version: 1, position: "9", data: rows });
    // A late joiner's message: a new object around the same result.
    const lateJoiner = markLiveMessage({ kind: "full", version: 1, position: "10", data: rows });
    const frames = [
      ...Array.from({ length: 50 }, (_, i) => server.serialize({ id: `1.h${i}`, data: full })), // WebSocket: tRPC's tracked envelope
      ...Array.from({ length: 50 }, () => server.serialize(full)), // SSE: the message itself
      server.serialize({ id: "1.x", data: lateJoiner }),
    ];
    expect(serialize.mock.calls.filter(([value]) => value === rows)).toHaveLength(1);
    expect(serialize).toHaveBeenCalledTimes(1);
    const wire = frames.map((frame) => JSON.parse(JSON.stringify(frame)) as unknown);
    expect(client(wire[0])).toEqual({ id: "1.h0", data: full });
    expect(client(wire[50])).toEqual(full);
    expect(client(wire[100])).toEqual({ id: "1.x", data: lateJoiner });
    const restored = client(wire[50]) as Extract<LiveMessage, { kind: "full" }>;
    expect((restored.data as typeof rows)[0]!.at).toBeInstanceOf(Date);
    expect(typeof (restored.data as typeof rows)[0]!.count).toBe("bigint");
  });

  it("carries patches and resumed messages; leaves everything else to the app's transformer", () => {
    const { serialize, server, client } = setup();
    const patch = markLiveMessage({ kind: "patch", version: 2, position: "11", patch: { start: 0, remove: 1, insert: ["a"], upsert: rows, at: [0] } });
    const resumed = markLiveMessage({ kind: "resumed", version: 2, position: "11" });
    const roundTrip = (value: unknown) => client(JSON.parse(JSON.stringify(server.serialize(value))));
    expect(roundTrip({ id: "2.h", data: patch })).toEqual({ id: "2.h", data: patch });
    expect(roundTrip(resumed)).toEqual(resumed);
    // Same shape, not yielded by $live: an ordinary value, through the app's transformer whole.
    const lookalike = { kind: "full", version: 1, position: "1", data: rows };
    serialize.mockClear();
    expect(roundTrip({ id: "x", data: lookalike })).toEqual({ id: "x", data: lookalike });
    expect(serialize).toHaveBeenCalledWith({ id: "x", data: lookalike });
    expect(roundTrip(rows)).toEqual(rows);
  });
});
