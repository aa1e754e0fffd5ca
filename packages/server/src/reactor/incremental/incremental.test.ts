// The exactness rules of incremental maintenance, one by one: what is maintained and applied
// without a query, and every case that must fall back to a re-run (null). The oracle against real
// re-runs on both engines is test/incrementalOracle.test.ts.
import { describe, expect, it } from "vitest";
import { schema } from "../../../../../generated/tether/index.ts";
import type { CapturedRow, Change } from "../../feed/index.ts";
import type { SchemaMeta } from "../../schema/index.ts";
import type { SoleCall } from "../readSet.ts";
import { stableStringify } from "../stableJson.ts";
import { applyChanges } from "./apply.ts";
import { maintainedList, type MaintainedList } from "./maintainable.ts";
import type { ColumnFacts } from "./columnFacts.ts";
import type { PrismaRow } from "./rowImage.ts";

const meta = schema as unknown as SchemaMeta;
const TASK_COLUMNS = ["id", "projectId", "title", "done", "position", "assigneeId", "createdAt", "updatedAt"].map((c) => `Task.${c}`);
/** As loadColumnFacts reports a database whose default collation is not bytewise, but Task's own text columns are "C". */
const COLUMNS: ColumnFacts = {
  exact: new Set([...TASK_COLUMNS, "Attachment.id", "Attachment.taskId", "Attachment.name"]),
  orderable: new Set(TASK_COLUMNS.filter((c) => c !== "Task.projectId").concat("Attachment.id")),
};

function image(over: CapturedRow = {}): CapturedRow {
  return {
    id: "t1", projectId: "p1", title: "x", done: false, position: 0, assigneeId: null,
    createdAt: "2024-05-01T10:00:00.123", updatedAt: "2024-05-01T10:00:00", ...over,
  };
}

function row(over: Partial<PrismaRow> = {}): PrismaRow {
  return {
    id: "t1", projectId: "p1", title: "x", done: false, position: 0, assigneeId: null,
    createdAt: new Date("2024-05-01T10:00:00.123Z"), updatedAt: new Date("2024-05-01T10:00:00Z"), ...over,
  };
}

function call(args: unknown, result: unknown, model = "Task", operation = "findMany"): SoleCall {
  return { model, operation, args, result, snapshot: stableStringify(result) };
}

/** maintainedList of a call whose result the procedure returned as is. */
function maintain(args: unknown, rows: PrismaRow[] = [row()], model = "Task"): MaintainedList | null {
  return maintainedList(call(args, rows, model), rows, stableStringify(rows), meta, COLUMNS);
}

const ORDER = [{ position: "desc" }, { id: "asc" }];

let seq = 0;
function change(op: Change["op"], old: CapturedRow | null, next: CapturedRow | null, over: Partial<Change> = {}): Change {
  seq += 1;
  const pk = { id: (next ?? old)?.id };
  return { seq: String(seq), xid: String(seq), table: "Task", op, pk, old, new: next, omitted: [], at: "", ...over };
}
const insert = (over: CapturedRow) => change("INSERT", null, image(over));
const update = (before: CapturedRow, after: CapturedRow) => change("UPDATE", image(before), image(after));
const remove = (over: CapturedRow) => change("DELETE", image(over), null);
const ids = (rows: PrismaRow[] | null) => rows?.map((r) => r.id) ?? null;

describe("what is maintained", () => {
  it("a findMany with where, orderBy ending in the primary key and take, returned as is", () => {
    expect(maintain({ where: { projectId: "p1" }, orderBy: ORDER, take: 3 })).not.toBeNull();
    expect(maintain({ orderBy: { id: "desc" } })).not.toBeNull();
  });

  it("re-runs when the procedure returned something else than the read's very result", () => {
    const rows = [row({ id: "a" }), row({ id: "b" })];
    const args = { orderBy: { id: "asc" } };
    expect(maintainedList(call(args, rows), [...rows], stableStringify(rows), meta, COLUMNS)).toBeNull(); // a copy
    const sole = call(args, rows);
    rows.reverse(); // sorted in place after the read
    expect(maintainedList(sole, rows, stableStringify(rows), meta, COLUMNS)).toBeNull();
    expect(maintainedList(null, rows, stableStringify(rows), meta, COLUMNS)).toBeNull(); // several operations
  });

  it("re-runs other operations and arguments it does not model", () => {
    const rows = [row()];
    expect(maintainedList(call({ orderBy: { id: "asc" } }, rows, "Task", "findFirst"), rows, stableStringify(rows), meta, COLUMNS)).toBeNull();
    for (const extra of [{ skip: 1 }, { cursor: { id: "t1" } }, { distinct: ["title"] }, { select: { id: true } }, { include: { project: true } }, { omit: { title: true } }]) {
      expect(maintain({ orderBy: { id: "asc" }, ...extra }), JSON.stringify(extra)).toBeNull();
    }
    for (const take of [0, -2, 1.5]) expect(maintain({ orderBy: { id: "asc" }, take })).toBeNull();
  });

  it("re-runs when the order is not fully determined or not reproducible", () => {
    expect(maintain({})).toBeNull(); // no orderBy: the database's order
    expect(maintain({ orderBy: { position: "asc" } })).toBeNull(); // ties of position
    expect(maintain({ orderBy: [{ id: "asc" }, { position: "asc" }] })).toBeNull(); // does not end in the key
    expect(maintain({ orderBy: [{ projectId: "asc" }, { id: "asc" }] })).toBeNull(); // a collation not known to be bytewise
    expect(maintain({ orderBy: [{ project: { name: "asc" } }, { id: "asc" }] })).toBeNull(); // through a relation
    expect(maintain({ orderBy: [{ position: "asc", title: "asc" }, { id: "asc" }] })).toBeNull(); // two keys in one term
    expect(maintainedList(call({ orderBy: { id: "asc" } }, [row()]), null, null, meta, COLUMNS)).toBeNull();
  });

  it("re-runs models with a column it cannot convert exactly, and rows that are not whole", () => {
    const attachment = { id: "a1", taskId: "t1", name: "n", data: new Uint8Array() };
    expect(maintainedList(call({ orderBy: { id: "asc" } }, [attachment], "Attachment"), [attachment], null, meta, COLUMNS)).toBeNull();
    // A column the catalog does not vouch for (uuid, citext, char(n), timestamp(6)...).
    const rows = [row()];
    const narrower = { ...COLUMNS, exact: new Set([...COLUMNS.exact].filter((c) => c !== "Task.assigneeId")) };
    expect(maintainedList(call({ orderBy: { id: "asc" } }, rows), rows, stableStringify(rows), meta, narrower)).toBeNull();
    const partial = [row()];
    delete partial[0]!.title; // a client-level omit
    expect(maintain({ orderBy: { id: "asc" } }, partial)).toBeNull();
  });
});

describe("applying changes", () => {
  const window = (take: number | undefined, where: unknown = { projectId: "p1" }) =>
    maintain({ where, orderBy: ORDER, take })!;
  const rows = [row({ id: "a", position: 5 }), row({ id: "b", position: 3 }), row({ id: "c", position: 3 })];

  it("inserts in order, ties broken by the key, and truncates a full window", () => {
    expect(ids(applyChanges(window(undefined), rows, [insert({ id: "bb", position: 3 })]))).toEqual(["a", "b", "bb", "c"]);
    expect(ids(applyChanges(window(3), rows, [insert({ id: "z", position: 9 })]))).toEqual(["z", "a", "b"]);
    // Past the end of a full window: outside, nothing changes.
    expect(ids(applyChanges(window(3), rows, [insert({ id: "d", position: 1 })]))).toEqual(["a", "b", "c"]);
    // Not in the filter: nothing changes.
    expect(ids(applyChanges(window(3), rows, [insert({ id: "z", position: 9, projectId: "p2" })]))).toEqual(["a", "b", "c"]);
  });

  it("converts the row image to Prisma's values", () => {
    const [inserted] = applyChanges(window(undefined), [], [insert({ id: "z", updatedAt: "2024-05-01T10:00:00.5+02:00" })])!;
    expect(inserted).toEqual(row({ id: "z", updatedAt: new Date("2024-05-01T08:00:00.500Z") }));
  });

  it("moves, removes and reorders within what is known", () => {
    expect(ids(applyChanges(window(undefined), rows, [update({ id: "c", position: 3 }, { id: "c", position: 6 })]))).toEqual(["c", "a", "b"]);
    expect(ids(applyChanges(window(undefined), rows, [remove({ id: "a", position: 5 })]))).toEqual(["b", "c"]);
    expect(ids(applyChanges(window(5), rows, [update({ id: "a", position: 5 }, { id: "a", position: 5, projectId: "p2" })]))).toEqual(["b", "c"]);
    // In a full window, a move that stays before its last row.
    expect(ids(applyChanges(window(3), rows, [update({ id: "c", position: 3 }, { id: "c", position: 4 })]))).toEqual(["a", "c", "b"]);
    // A row outside a full window leaving it: nothing changes.
    expect(ids(applyChanges(window(3), rows, [remove({ id: "d", position: 1 })]))).toEqual(["a", "b", "c"]);
  });

  it("re-runs when a row leaves a full window (the next row is the database's)", () => {
    expect(applyChanges(window(3), rows, [remove({ id: "b", position: 3 })])).toBeNull();
    expect(applyChanges(window(3), rows, [update({ id: "a", position: 5 }, { id: "a", position: 5, projectId: "p2" })])).toBeNull();
    expect(applyChanges(window(3), rows, [update({ id: "a", position: 5 }, { id: "a", position: 0 })])).toBeNull(); // sorts past the end
    // One inexact change in a batch: the whole batch re-runs.
    expect(applyChanges(window(3), rows, [insert({ id: "z", position: 9 }), remove({ id: "d", position: 1 })])).not.toBeNull();
    expect(applyChanges(window(3), rows, [insert({ id: "z", position: 9 }), remove({ id: "b", position: 3 })])).toBeNull();
  });

  it("re-runs what it cannot decide or convert", () => {
    const all = window(undefined);
    expect(applyChanges(all, rows, [change("TRUNCATE", null, null)])).toBeNull();
    expect(applyChanges(all, rows, [{ ...insert({ id: "z" }), omitted: ["title"] }])).toBeNull();
    expect(applyChanges(all, rows, [{ ...insert({ id: "z" }), table: "Project" }])).toBeNull();
    expect(applyChanges(window(undefined, { project: { name: "x" } }), rows, [insert({ id: "z" })])).toBeNull(); // relation filter
    expect(applyChanges(all, rows, [insert({ id: "z", updatedAt: "2024-05-01T10:00:00.123456" })])).toBeNull(); // microseconds
    expect(applyChanges(all, rows, [insert({ id: "z", updatedAt: "infinity" })])).toBeNull();
    expect(applyChanges(all, rows, [insert({ id: "z", position: 2 ** 60 })])).toBeNull();
    expect(applyChanges(all, rows, [insert({ id: "z", title: null })])).toBeNull(); // required column NULL
    expect(applyChanges(all, rows, [update({ id: "a", position: 5 }, { id: "a2", position: 5 })])).toBeNull(); // key moved
  });

  it("re-runs when the cache disagrees with the change's old row", () => {
    const all = window(undefined);
    expect(applyChanges(all, rows, [insert({ id: "a", position: 5 })])).toBeNull(); // already there
    expect(applyChanges(all, rows, [remove({ id: "q", position: 5 })])).toBeNull(); // matched, complete, absent
    expect(applyChanges(all, rows, [update({ id: "a", projectId: "p2" }, { id: "a", projectId: "p1" })])).toBeNull(); // present, old did not match
    // The run already saw this change (committed after its position, before its snapshot): the
    // cached row is in the later state, not the change's old one.
    expect(applyChanges(all, rows, [update({ id: "a", position: 4 }, { id: "a", position: 5 })])).toBeNull();
    expect(ids(applyChanges(all, rows, [update({ id: "a", position: 5 }, { id: "a", position: 4 })]))).toEqual(["a", "b", "c"]);
  });

  it("orders NULLs as Postgres does and strings by code point (a bytewise collation)", () => {
    const byAssignee = maintain({ orderBy: [{ assigneeId: "desc" }, { id: "asc" }] }, [])!;
    const nulls = applyChanges(byAssignee, [], [insert({ id: "a", assigneeId: "u1" }), insert({ id: "b", assigneeId: null })]);
    expect(ids(nulls)).toEqual(["b", "a"]); // DESC: NULLs first
    const last = maintain({ orderBy: [{ assigneeId: { sort: "desc", nulls: "last" } }, { id: "asc" }] }, [])!;
    expect(ids(applyChanges(last, [], [insert({ id: "a", assigneeId: "u1" }), insert({ id: "b", assigneeId: null })]))).toEqual(["a", "b"]);
    const byTitle = maintain({ orderBy: [{ title: "asc" }, { id: "asc" }] }, [])!;
    const titles = ["😀", "\uFF5E", "a", "B", "é"].map((title, i) => insert({ id: `t${i}`, title }));
    expect(applyChanges(byTitle, [], titles)?.map((r) => r.title)).toEqual(["B", "a", "é", "\uFF5E", "😀"]);
  });
});
