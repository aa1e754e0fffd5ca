import { describe, expect, it } from "vitest";
import { schema } from "../../../../generated/tether/index.ts";
import type { CapturedRow, Change, ChangeOp } from "../feed/index.ts";
import { GroupIndex } from "./groupIndex.ts";
import { affects } from "./predicate.ts";
import type { Read, ReadSet } from "./readSet.ts";

type TestChange = Pick<Change, "table" | "op" | "old" | "new" | "omitted">;

const set = (...reads: Read[]): ReadSet => ({ reads, allTables: false });
const taskRead = (where?: unknown): Read => (where === undefined ? { model: "Task", operation: "findMany" } : { model: "Task", operation: "findMany", where });

function task(over: CapturedRow = {}): CapturedRow {
  return { id: "t1", projectId: "p1", title: "x", done: false, position: 0, assigneeId: "u1", createdAt: "2024-05-01T10:00:00", updatedAt: "2024-05-01T10:00:00", ...over };
}

function change(op: ChangeOp, old: CapturedRow | null, next: CapturedRow | null, omitted: string[] = []): TestChange {
  return { table: "Task", op, old, new: next, omitted };
}

function candidates(index: GroupIndex<string>, c: TestChange): string[] {
  return [...index.candidates(c)].sort();
}

describe("GroupIndex", () => {
  it("reaches only the groups filed under the changed rows' values, plus unfiled ones", () => {
    const index = new GroupIndex<string>(schema);
    index.add("u1", set(taskRead({ assigneeId: "u1" })));
    index.add("u2", set(taskRead({ assigneeId: { equals: "u2" } })));
    index.add("p1-open", set(taskRead({ projectId: "p1", done: false })));
    index.add("all", set(taskRead()));
    index.add("or", set(taskRead({ OR: [{ assigneeId: "u1" }, { assigneeId: "u2" }] })));
    expect(candidates(index, change("INSERT", null, task({ assigneeId: "u1", projectId: "p9" })))).toEqual(["all", "or", "u1"]);
    expect(candidates(index, change("UPDATE", task({ assigneeId: "u1" }), task({ assigneeId: "u2" })))).toEqual(["all", "or", "p1-open", "u1", "u2"]);
    expect(candidates(index, change("INSERT", null, task({ assigneeId: null, projectId: "p2" })))).toEqual(["all", "or"]);
  });

  it("falls back to every group of the table when it cannot tell", () => {
    const index = new GroupIndex<string>(schema);
    index.add("u1", set(taskRead({ assigneeId: "u1" })));
    index.add("u2", set(taskRead({ assigneeId: "u2" })));
    expect(candidates(index, change("TRUNCATE", null, null))).toEqual(["u1", "u2"]);
    expect(candidates(index, change("INSERT", null, task({ assigneeId: "u3" }), ["assigneeId"]))).toEqual(["u1", "u2"]);
    const { assigneeId: _, ...without } = task();
    expect(candidates(index, change("INSERT", null, without))).toEqual(["u1", "u2"]);
  });

  it("files a group under every read of the table, and forgets it on remove and re-add", () => {
    const index = new GroupIndex<string>(schema);
    index.add("two", set(taskRead({ assigneeId: "u1" }), taskRead({ projectId: "p2" })));
    index.add("mixed", set(taskRead({ assigneeId: "u1" }), taskRead({ done: true })));
    expect(candidates(index, change("INSERT", null, task({ assigneeId: "u9", projectId: "p2" })))).toEqual(["mixed", "two"]);
    expect(candidates(index, change("INSERT", null, task({ assigneeId: "u9", projectId: "p9" })))).toEqual(["mixed"]);
    index.add("two", set(taskRead({ assigneeId: "u5" })));
    expect(candidates(index, change("INSERT", null, task({ assigneeId: "u9", projectId: "p2" })))).toEqual(["mixed"]);
    index.remove("mixed");
    index.remove("two");
    expect(candidates(index, change("INSERT", null, task({ assigneeId: "u5" })))).toEqual([]);
  });

  it("never leaves out a group that affects() says a change reaches", () => {
    const values = ["u1", "u2", "U1", null];
    const wheres: unknown[] = [
      undefined,
      { assigneeId: "u1" },
      { assigneeId: "u2", done: false },
      { assigneeId: { equals: "U1" } },
      { assigneeId: { equals: "u1", mode: "insensitive" } },
      { assigneeId: { in: ["u1", "u2"] } },
      { assigneeId: { not: "u1" } },
      { assigneeId: null },
      { projectId: "p1", OR: [{ assigneeId: "u1" }, { done: true }] },
      { AND: [{ assigneeId: "u2" }] },
      { NOT: { assigneeId: "u1" } },
      { title: { contains: "x" } },
      { project: { ownerId: "u1" } },
    ];
    const index = new GroupIndex<number>(schema);
    const readSets = new Map<number, ReadSet>();
    wheres.forEach((where, i) => {
      const readSet = set(taskRead(where));
      readSets.set(i, readSet);
      index.add(i, readSet);
    });
    readSets.set(wheres.length, set(taskRead({ assigneeId: "u1" }), taskRead({ projectId: "p2" })));
    index.add(wheres.length, readSets.get(wheres.length)!);
    let checked = 0;
    for (const a of values) {
      for (const b of values) {
        for (const project of ["p1", "p2"]) {
          const changes = [
            change("INSERT", null, task({ assigneeId: a, projectId: project })),
            change("DELETE", task({ assigneeId: a, projectId: project }), null),
            change("UPDATE", task({ assigneeId: a }), task({ assigneeId: b, projectId: project })),
          ];
          for (const c of changes) {
            const reached = new Set(index.candidates(c));
            for (const [group, readSet] of readSets) {
              if (affects(readSet, c, schema)) expect(reached.has(group), `group ${group} for ${JSON.stringify(c)}`).toBe(true);
              checked += 1;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
  });
});
