// The reactor's patches, applied by the protocol's `applyListPatch` (what every client runs).
import { applyListPatch } from "@tether/protocol";
import { describe, expect, it } from "vitest";
import { diffLists } from "./liveMessage.ts";
import { stableStringify } from "./stableJson.ts";

describe("diffLists", () => {
  const before = [{ id: "a", v: 1 }, { id: "b", v: 1 }, { id: 3, v: 1 }];

  it("makes patches that bring the client's rows to the new result", () => {
    const afters = [
      [{ id: "b", v: 2 }, { id: "a", v: 1 }, { id: 3, v: 1 }],
      [{ id: "a", v: 1 }, { id: 3, v: 1 }],
      [{ id: "a", v: 1 }, { id: "b", v: 1 }, { id: 3, v: 1 }, { id: "n", v: 0 }],
      [{ id: 3, v: 1 }],
    ];
    for (const after of afters) {
      const patch = diffLists(before, after, stableStringify);
      expect(patch).not.toBeNull();
      expect(patch!.upsert.length).toBeLessThanOrEqual(1);
      expect(applyListPatch(before, patch!)).toEqual(after);
    }
  });

  it("sends the full value when the rows have no unique ids", () => {
    expect(diffLists(before, [{ id: "a" }, { id: "a" }], stableStringify)).toBeNull();
    expect(diffLists(before, [{ v: 1 }], stableStringify)).toBeNull();
  });
});
