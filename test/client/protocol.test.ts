// The client keeps its own copy of the live wire format and the position parser (the server
// package is Node-only at runtime). These checks fail when the two copies drift apart.
import { describe, expect, expectTypeOf, it } from "vitest";
import * as server from "@tether/server";
import * as client from "@tether/client";

describe("client and server agree on the live protocol", () => {
  it("has the same message and patch types", () => {
    expectTypeOf<client.LiveMessage>().toEqualTypeOf<server.LiveMessage>();
    expectTypeOf<client.ListPatch>().toEqualTypeOf<server.ListPatch>();
    expectTypeOf<client.FeedPosition>().toEqualTypeOf<server.FeedPosition>();
  });

  it("uses the same header", () => {
    expect(client.COMMIT_HEADER).toBe(server.COMMIT_HEADER);
  });

  it("applies patches the same way", () => {
    const before = [{ id: "a", v: 1 }, { id: "b", v: 1 }, { id: 3, v: 1 }];
    const stable = (v: unknown) => server.stableStringify(v);
    const afters = [
      [{ id: "b", v: 2 }, { id: "a", v: 1 }, { id: 3, v: 1 }],
      [{ id: "a", v: 1 }, { id: 3, v: 1 }],
      [{ id: "a", v: 1 }, { id: "b", v: 1 }, { id: 3, v: 1 }, { id: "n", v: 0 }],
      [{ id: 3, v: 1 }],
    ];
    for (const after of afters) {
      const patch = server.diffLists(before, after, stable);
      expect(patch).not.toBeNull();
      expect(client.applyListPatch(before, patch!)).toEqual(server.applyListPatch(before, patch!));
      expect(client.applyListPatch(before, patch!)).toEqual(after);
    }
    const broken = { order: ["zzz"], upsert: [] };
    expect(() => client.applyListPatch(before, broken)).toThrow();
    expect(() => server.applyListPatch(before, broken)).toThrow();
  });

  it("reads positions the same way", () => {
    const positions = ["0", "0:", "5:", "100:100,104", "18446744073709551615:18446744073709551616"];
    const xids = ["0", "4", "5", "99", "100", "103", "104", "105", "18446744073709551616"];
    for (const position of positions) {
      expect(client.decodePosition(position)).toEqual(server.decodePosition(position));
      for (const xid of xids) {
        expect([position, xid, client.positionIncludes(position, xid)]).toEqual([position, xid, server.positionIncludes(position, xid)]);
      }
    }
    for (const bad of ["", "x", "1:a", "1:2,", "-1:"]) {
      expect(() => client.decodePosition(bad)).toThrow(TypeError);
      expect(() => server.decodePosition(bad)).toThrow(TypeError);
    }
    const encoded = server.encodePosition({ horizon: "11", seen: ["12"] });
    expect(client.positionIncludes(encoded, "12")).toBe(true);
    expect(client.positionIncludes(encoded, "11")).toBe(false);
  });
});
