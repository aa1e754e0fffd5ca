// The wire protocol's pure codecs. Server and client both import them from here, so there is no
// second copy to compare with: these check the codecs themselves.
import { describe, expect, it } from "vitest";
import {
  applyListPatch,
  base64DecodedLength,
  decodePosition,
  encodeCommitHeader,
  encodeEventId,
  encodePosition,
  eventHash,
  fromBase64,
  isBase64,
  parseCommitHeader,
  positionIncludes,
  toBase64,
} from "./index.ts";

describe("live patches", () => {
  const before = [{ id: "a", v: 1 }, { id: "b", v: 1 }, { id: 3, v: 1 }];

  it("reorders, updates, adds and removes rows", () => {
    // b moves before a and changes; the head range [0, 2) is replaced by b, a.
    expect(applyListPatch(before, { start: 0, remove: 2, insert: ["b", "a"], upsert: [{ id: "b", v: 2 }], at: [0] })).toEqual([{ id: "b", v: 2 }, { id: "a", v: 1 }, { id: 3, v: 1 }]);
    expect(applyListPatch(before, { start: 1, remove: 1, insert: [], upsert: [], at: [] })).toEqual([{ id: "a", v: 1 }, { id: 3, v: 1 }]);
    expect(applyListPatch(before, { start: 3, remove: 0, insert: ["n"], upsert: [{ id: "n", v: 0 }], at: [3] })).toEqual([...before, { id: "n", v: 0 }]);
    // A row changed in place, outside the replaced range.
    expect(applyListPatch(before, { start: 3, remove: 0, insert: [], upsert: [{ id: "a", v: 9 }], at: [0] })).toEqual([{ id: "a", v: 9 }, { id: "b", v: 1 }, { id: 3, v: 1 }]);
  });

  it("keeps the objects of rows it does not change", () => {
    const after = applyListPatch(before, { start: 3, remove: 0, insert: ["n"], upsert: [{ id: "n", v: 0 }], at: [3] });
    expect(after[0]).toBe(before[0]);
    expect(after[2]).toBe(before[2]);
  });

  it("throws on a row it neither keeps nor carries (the caller resyncs)", () => {
    expect(() => applyListPatch(before, { start: 0, remove: 0, insert: ["zzz"], upsert: [], at: [] })).toThrow();
  });
});

describe("event ids", () => {
  it("round-trips the hash", () => {
    expect(eventHash(encodeEventId(7, "abc"))).toBe("abc");
    expect(eventHash(encodeEventId(7, ""))).toBeNull();
    for (const foreign of [null, undefined, "", "abc", ".abc"]) expect(eventHash(foreign)).toBeNull();
  });
});

describe("positions", () => {
  it("decodes, encodes and answers read-your-writes", () => {
    expect(decodePosition("0")).toEqual({ horizon: "0", seen: [] });
    expect(decodePosition("0:")).toEqual({ horizon: "0", seen: [] });
    expect(decodePosition("100:100,104")).toEqual({ horizon: "100", seen: ["100", "104"] });
    expect(decodePosition(encodePosition({ horizon: "11", seen: ["12", "15"] }))).toEqual({ horizon: "11", seen: ["12", "15"] });
    const included = ["0", "4", "99", "100", "104"].filter((xid) => positionIncludes("100:100,104", xid));
    expect(included).toEqual(["0", "4", "99", "100", "104"]);
    expect(["103", "105"].filter((xid) => positionIncludes("100:100,104", xid))).toEqual([]);
    expect(positionIncludes("18446744073709551615:18446744073709551616", "18446744073709551616")).toBe(true);
  });

  it("rejects what is not a position", () => {
    for (const bad of ["", "x", "1:a", "1:2,", "-1:"]) expect(() => decodePosition(bad)).toThrow(TypeError);
  });
});

describe("commit header", () => {
  it("round-trips xids and ignores anything else", () => {
    expect(parseCommitHeader(encodeCommitHeader(["5", "18446744073709551616"]))).toEqual(["5", "18446744073709551616"]);
    expect(parseCommitHeader(" 5 , x, -1,7")).toEqual(["5", "7"]);
    expect(parseCommitHeader(null)).toEqual([]);
  });
});

describe("base64", () => {
  it("round-trips bytes of every value and length, as an own buffer", () => {
    for (const length of [0, 1, 2, 3, 4, 0x8001]) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 37) % 256);
      const text = toBase64(bytes);
      expect(isBase64(text)).toBe(true);
      expect(base64DecodedLength(text)).toBe(length);
      const back = fromBase64(text);
      expect(back).toEqual(bytes);
      expect(back.byteOffset).toBe(0);
      expect(back.buffer.byteLength).toBe(length);
    }
    expect(toBase64(new Uint8Array([251, 255]))).toBe("+/8=");
    for (const bad of ["a", "ab=c", "-_8=", "abc"]) expect(isBase64(bad)).toBe(false);
  });
});
