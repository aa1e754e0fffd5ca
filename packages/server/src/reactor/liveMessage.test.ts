// The reactor's patches, applied by the protocol's `applyListPatch` (what every client runs).
import { applyListPatch } from "@tether/protocol";
import fc from "fast-check";
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

  it("carries what changed, not the list: one row added to or removed from 1,000 rows", () => {
    const rows = Array.from({ length: 1_000 }, (_, i) => ({ id: `task-${i}`, title: `task ${i}`, done: false }));
    const added = [...rows.slice(0, 500), { id: "new", title: "new", done: false }, ...rows.slice(500)];
    const removed = rows.filter((_, i) => i !== 10);
    for (const after of [added, removed, [...rows, { id: "last", title: "last", done: true }]]) {
      const patch = diffLists(rows, after, stableStringify)!;
      expect(JSON.stringify(patch).length).toBeLessThan(200);
      expect(applyListPatch(rows, patch)).toEqual(after);
    }
  });

  it("any change of any list: the patch rebuilds the new list and keeps unchanged rows' objects", () => {
    const row = fc.record({ id: fc.integer({ min: 0, max: 30 }), v: fc.integer({ min: 0, max: 2 }) });
    const list = fc.uniqueArray(row, { selector: (r) => r.id, maxLength: 25 });
    fc.assert(
      fc.property(list, list, (old, next) => {
        // Rows equal to an old row are the server's new objects: the client must keep its own.
        const patch = diffLists(old, next, stableStringify);
        if (!patch) return;
        const after = applyListPatch(old, patch);
        expect(after).toEqual(next);
        const oldById = new Map(old.map((r) => [r.id, r]));
        for (const r of after) {
          const mine = oldById.get(r.id as number);
          if (mine && stableStringify(mine) === stableStringify(r)) expect(r).toBe(mine);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("applyListPatch", () => {
  const rows = [{ id: "a" }, { id: "b" }, { id: "c" }];

  it("throws on a patch that does not fit the rows held (the client resyncs)", () => {
    const misfits = [
      { start: 2, remove: 2, insert: [], upsert: [], at: [] }, // range past the end
      { start: 0, remove: 0, insert: ["zzz"], upsert: [], at: [] }, // a row neither kept nor carried
      { start: 0, remove: 0, insert: [], upsert: [{ id: "x" }], at: [0] }, // index holds another row
      { start: 0, remove: 0, insert: [], upsert: [{ id: "a" }], at: [] }, // at/upsert mismatch
    ];
    for (const patch of misfits) expect(() => applyListPatch(rows, patch)).toThrow();
  });
});
