import { describe, expect, it } from "vitest";
import { schema } from "../../../../generated/tether/index.ts";
import { createReadSetRecorder, readsOfOperation, trackReads, type Read } from "./readSet.ts";

const reads = (model: string, operation: string, args?: unknown): Read[] => readsOfOperation(schema, model, operation, args);
const models = (list: Read[]) => list.map((r) => r.model);

describe("readsOfOperation: the operation's own model", () => {
  it.each(["findMany", "findFirst", "findFirstOrThrow", "findUnique", "findUniqueOrThrow", "count", "aggregate", "groupBy"])(
    "%s is a read, with its where",
    (operation) => {
      expect(reads("Task", operation, { where: { projectId: "p1" } })).toEqual([{ model: "Task", operation, where: { projectId: "p1" } }]);
    },
  );

  it("no where (or no args at all) reads every row: the read has no where", () => {
    expect(reads("Task", "findMany")).toEqual([{ model: "Task", operation: "findMany" }]);
    expect(reads("Task", "findMany", {})).toEqual([{ model: "Task", operation: "findMany" }]);
    expect(reads("Task", "findMany", { where: undefined })).toEqual([{ model: "Task", operation: "findMany" }]);
    expect(reads("Task", "count", { select: { _all: true, title: true } })).toEqual([{ model: "Task", operation: "count" }]);
  });

  it("keeps the where exactly as given (Dates, nested operators)", () => {
    const where = { createdAt: { gte: new Date(0) }, OR: [{ title: { contains: "x", mode: "insensitive" } }, { done: true }] };
    expect(reads("Task", "findMany", { where })[0]).toEqual({ model: "Task", operation: "findMany", where });
  });

  it.each([
    "create",
    "createMany",
    "createManyAndReturn",
    "update",
    "updateMany",
    "updateManyAndReturn",
    "upsert",
    "delete",
    "deleteMany",
  ])("%s is a write, not a read, even with an include", (operation) => {
    expect(reads("Task", operation, { where: { id: "t1" }, data: { title: "x" }, include: { project: true } })).toEqual([]);
  });

  it("aggregate and groupBy: only the where bounds the rows", () => {
    expect(reads("Task", "aggregate", { where: { done: true }, _count: { _all: true }, _max: { position: true } })).toEqual([
      { model: "Task", operation: "aggregate", where: { done: true } },
    ]);
    expect(reads("Task", "groupBy", { by: ["projectId"], where: { done: false }, having: { position: { _avg: { gt: 1 } } }, orderBy: { _count: { id: "desc" } } })).toEqual([
      { model: "Task", operation: "groupBy", where: { done: false } },
    ]);
  });
});

describe("readsOfOperation: include and select of relations", () => {
  it("include: true reads the related model, all rows (the join is ignored)", () => {
    expect(reads("Task", "findMany", { where: { projectId: "p1" }, include: { project: true, assignee: true } })).toEqual([
      { model: "Task", operation: "findMany", where: { projectId: "p1" } },
      { model: "Project", operation: "include" },
      { model: "User", operation: "include" },
    ]);
  });

  it("include with a where carries that where", () => {
    expect(reads("Project", "findMany", { include: { tasks: { where: { done: false }, orderBy: { position: "asc" }, take: 5 } } })).toEqual([
      { model: "Project", operation: "findMany" },
      { model: "Task", operation: "include", where: { done: false } },
    ]);
  });

  it("nested include walks every level", () => {
    const list = reads("User", "findUnique", {
      where: { id: "alice" },
      include: { projects: { include: { tasks: { where: { done: false }, include: { attachments: true, assignee: true } } } } },
    });
    expect(list).toEqual([
      { model: "User", operation: "findUnique", where: { id: "alice" } },
      { model: "Project", operation: "include" },
      { model: "Task", operation: "include", where: { done: false } },
      { model: "Attachment", operation: "include" },
      { model: "User", operation: "include" },
    ]);
  });

  it("select of a relation reads it; select of columns adds nothing; false/undefined select nothing", () => {
    expect(reads("Task", "findMany", { select: { id: true, title: true } })).toEqual([{ model: "Task", operation: "findMany" }]);
    expect(reads("Task", "findMany", { select: { id: true, project: { select: { name: true } }, assignee: false, attachments: undefined } })).toEqual([
      { model: "Task", operation: "findMany" },
      { model: "Project", operation: "include" },
    ]);
    expect(reads("Project", "findFirst", { select: { tasks: { where: { assigneeId: "bob" }, select: { assignee: { select: { name: true } } } } } })).toEqual([
      { model: "Project", operation: "findFirst" },
      { model: "Task", operation: "include", where: { assigneeId: "bob" } },
      { model: "User", operation: "include" },
    ]);
  });

  it("an include of an unknown field (or of a model outside the schema) is ignored, not thrown on", () => {
    expect(reads("Task", "findMany", { include: { nonsense: true } })).toEqual([{ model: "Task", operation: "findMany" }]);
    expect(reads("Ghost", "findMany", { include: { x: true }, where: { a: { some: {} } } })).toEqual([{ model: "Ghost", operation: "findMany", where: { a: { some: {} } } }]);
  });
});

describe("readsOfOperation: _count", () => {
  it("_count: true counts every list relation", () => {
    expect(reads("Project", "findMany", { include: { _count: true } })).toEqual([
      { model: "Project", operation: "findMany" },
      { model: "Task", operation: "count" },
      { model: "ProjectMember", operation: "count" },
      { model: "ProjectExport", operation: "count" },
    ]);
    const userLists = Object.values(schema.models.User.fields).flatMap((f) => ("relation" in f && f.isList ? [f.relation.model] : []));
    expect(userLists).toEqual(expect.arrayContaining(["Project", "Task"]));
    expect(reads("User", "findMany", { include: { _count: true } })).toEqual([
      { model: "User", operation: "findMany" },
      ...userLists.map((model) => ({ model, operation: "count" })),
    ]);
    expect(reads("Task", "findMany", { select: { _count: true } })).toEqual([
      { model: "Task", operation: "findMany" },
      { model: "Attachment", operation: "count" },
    ]);
  });

  it("_count: { select } counts only the chosen relations, with their where", () => {
    expect(reads("User", "findMany", { select: { _count: { select: { tasks: { where: { done: false } }, projects: false } } } })).toEqual([
      { model: "User", operation: "findMany" },
      { model: "Task", operation: "count", where: { done: false } },
    ]);
    expect(reads("User", "findMany", { include: { _count: { select: { projects: true } } } })).toEqual([
      { model: "User", operation: "findMany" },
      { model: "Project", operation: "count" },
    ]);
  });

  it("_count: false counts nothing; _count inside a nested include counts there", () => {
    expect(reads("User", "findMany", { include: { _count: false } })).toEqual([{ model: "User", operation: "findMany" }]);
    expect(reads("User", "findMany", { include: { projects: { include: { _count: { select: { tasks: true } } } } } })).toEqual([
      { model: "User", operation: "findMany" },
      { model: "Project", operation: "include" },
      { model: "Task", operation: "count" },
    ]);
  });

  it("regression: a relation filter in a _count's where makes the related model a dependency", () => {
    expect(reads("Project", "findMany", { select: { _count: { select: { tasks: { where: { assignee: { is: { name: "Alice" } } } } } } } })).toEqual([
      { model: "Project", operation: "findMany" },
      { model: "Task", operation: "count", where: { assignee: { is: { name: "Alice" } } } },
      { model: "User", operation: "relationFilter" },
    ]);
  });
});

describe("readsOfOperation: relation filters", () => {
  it.each([
    ["some", { tasks: { some: { done: false } } }],
    ["every", { tasks: { every: { done: true } } }],
    ["none", { tasks: { none: {} } }],
  ])("to-many %s: the related model is read, with no where", (_name, where) => {
    expect(reads("Project", "findMany", { where })).toEqual([
      { model: "Project", operation: "findMany", where },
      { model: "Task", operation: "relationFilter" },
    ]);
  });

  it.each([
    ["is", { assignee: { is: { name: "Alice" } } }],
    ["isNot", { assignee: { isNot: { name: "Alice" } } }],
    ["is null", { assignee: { is: null } }],
    ["null", { assignee: null }],
    ["direct", { assignee: { name: "Alice" } }],
  ])("to-one %s: the related model is read, with no where", (_name, where) => {
    expect(reads("Task", "findMany", { where })).toEqual([
      { model: "Task", operation: "findMany", where },
      { model: "User", operation: "relationFilter" },
    ]);
  });

  it("inside AND / OR / NOT, as arrays and objects", () => {
    expect(models(reads("Task", "findMany", { where: { AND: [{ done: false }, { project: { name: "x" } }] } }))).toEqual(["Task", "Project"]);
    expect(models(reads("Task", "findMany", { where: { OR: [{ assignee: { is: null } }, { attachments: { some: {} } }] } }))).toEqual(["Task", "User", "Attachment"]);
    expect(models(reads("Task", "findMany", { where: { NOT: { project: { is: { name: "x" } } } } }))).toEqual(["Task", "Project"]);
    expect(models(reads("Task", "findMany", { where: { NOT: [{ OR: [{ assignee: { isNot: null } }] }] } }))).toEqual(["Task", "User"]);
  });

  it("nested relation filters reach every model on the path", () => {
    const where = { projects: { some: { tasks: { every: { assignee: { is: { name: "Bob" } }, attachments: { none: { name: "x" } } } } } } };
    expect(models(reads("User", "findMany", { where }))).toEqual(["User", "Project", "Task", "User", "Attachment"]);
    expect(models(reads("Task", "findMany", { where: { project: { owner: { email: "a@x" } } } }))).toEqual(["Task", "Project", "User"]);
  });

  it("relation filters inside an include's where", () => {
    expect(reads("Project", "findMany", { include: { tasks: { where: { assignee: { name: "Bob" } } } } })).toEqual([
      { model: "Project", operation: "findMany" },
      { model: "Task", operation: "include", where: { assignee: { name: "Bob" } } },
      { model: "User", operation: "relationFilter" },
    ]);
  });

  it("scalar filters add no relation reads", () => {
    expect(reads("Task", "findMany", { where: { title: { contains: "is" }, assigneeId: { not: null } } })).toHaveLength(1);
  });
});

describe("readsOfOperation: cursor and orderBy", () => {
  it("regression: a cursor reads its own row (Prisma looks up its sort values whatever the where)", () => {
    expect(reads("Task", "findMany", { where: { done: false }, cursor: { id: "t5" }, orderBy: { position: "asc" }, skip: 1, take: 10 })).toEqual([
      { model: "Task", operation: "findMany", where: { done: false } },
      { model: "Task", operation: "cursor", where: { id: "t5" } },
    ]);
    expect(reads("Project", "findMany", { include: { tasks: { cursor: { id: "t5" }, take: 2 } } })).toEqual([
      { model: "Project", operation: "findMany" },
      { model: "Task", operation: "include" },
      { model: "Task", operation: "cursor", where: { id: "t5" } },
    ]);
  });

  it("regression: an orderBy through a relation reads the related model", () => {
    expect(reads("Task", "findMany", { where: { projectId: "p1" }, orderBy: { assignee: { name: "asc" } } })).toEqual([
      { model: "Task", operation: "findMany", where: { projectId: "p1" } },
      { model: "User", operation: "orderBy" },
    ]);
    expect(models(reads("Task", "findMany", { orderBy: [{ done: "asc" }, { project: { owner: { name: "desc" } } }] }))).toEqual(["Task", "Project", "User"]);
    expect(models(reads("User", "findMany", { orderBy: { tasks: { _count: "desc" } } }))).toEqual(["User", "Task"]);
  });

  it("an orderBy of columns adds nothing", () => {
    expect(reads("Task", "findMany", { orderBy: [{ position: "asc" }, { createdAt: { sort: "desc", nulls: "last" } }] })).toHaveLength(1);
  });
});

describe("createReadSetRecorder", () => {
  it("records reads in order and keeps identical ones once", () => {
    const recorder = createReadSetRecorder(() => true);
    recorder.record({ model: "Task", operation: "findUnique", where: { id: "t1" } });
    recorder.record({ model: "Task", operation: "findUnique", where: { id: "t1" } });
    recorder.record({ model: "Task", operation: "findFirst", where: { id: "t1" } }); // same rows: same read
    recorder.record({ model: "Task", operation: "findUnique", where: { id: "t2" } });
    recorder.record({ model: "User", operation: "findUnique", where: { id: "t1" } });
    recorder.record({ model: "Task", operation: "findMany" });
    expect(recorder.readSet()).toEqual({
      allTables: false,
      reads: [
        { model: "Task", operation: "findUnique", where: { id: "t1" } },
        { model: "Task", operation: "findUnique", where: { id: "t2" } },
        { model: "User", operation: "findUnique", where: { id: "t1" } },
        { model: "Task", operation: "findMany" },
      ],
    });
  });

  it("a raw query marks every table", () => {
    const recorder = createReadSetRecorder(() => true);
    expect(recorder.readSet().allTables).toBe(false);
    recorder.recordRaw();
    expect(recorder.readSet()).toEqual({ reads: [], allTables: true });
  });

  it("soleCall() is the one model operation and its result, snapshotted when it arrived", () => {
    const recorder = createReadSetRecorder(() => true);
    const rows = [{ id: "b" }, { id: "a" }];
    const resolved = recorder.recordCall({ model: "Task", operation: "findMany", args: { take: 2 } });
    expect(recorder.soleCall()).toBeNull(); // not answered yet
    resolved(rows);
    rows.reverse(); // the procedure sorts in place afterwards: the snapshot shows the original
    expect(recorder.soleCall()).toEqual({ model: "Task", operation: "findMany", args: { take: 2 }, result: rows, snapshot: '[{"id":"b"},{"id":"a"}]' });
    expect(recorder.soleCall()!.result).toBe(rows);
    recorder.recordCall({ model: "User", operation: "count", args: {} })(3);
    expect(recorder.soleCall()).toBeNull(); // two operations
    const count = createReadSetRecorder(() => true);
    count.recordCall({ model: "Task", operation: "count", args: {} })(3);
    expect(count.soleCall()).toBeNull(); // not a findMany: not kept
    const raw = createReadSetRecorder(() => true);
    raw.recordCall({ model: "Task", operation: "findMany", args: {} })([]);
    raw.recordRaw();
    expect(raw.soleCall()).toBeNull();
  });

  it("readSet() is a snapshot", () => {
    const recorder = createReadSetRecorder(() => true);
    const before = recorder.readSet();
    recorder.record({ model: "Task", operation: "findMany" });
    expect(before.reads).toEqual([]);
    expect(recorder.readSet().reads).toHaveLength(1);
  });

  it("regression: a where with a bigint (a BigInt column's filter) does not throw", () => {
    const recorder = createReadSetRecorder(() => true);
    recorder.record({ model: "Metric", operation: "findMany", where: { big: { gt: 5n } } });
    recorder.record({ model: "Metric", operation: "findMany", where: { big: { gt: 5n } } });
    recorder.record({ model: "Metric", operation: "findMany", where: { big: { gt: 6n } } });
    recorder.record({ model: "Metric", operation: "findMany", where: { big: { gt: "5" } } });
    expect(recorder.readSet().reads.map((r) => r.where)).toEqual([{ big: { gt: 5n } }, { big: { gt: 6n } }, { big: { gt: "5" } }]);
  });
});

describe("trackReads (extension logic, on a stand-in client)", () => {
  type AllOperations = (params: { model?: string; operation: string; args: unknown; query: (args: unknown) => Promise<unknown> }) => Promise<unknown>;
  function extend() {
    let hook: AllOperations | undefined;
    const client = {
      $extends(extension: { name: string; query: { $allOperations: AllOperations } }) {
        expect(extension.name).toBe("tether-read-tracking");
        hook = extension.query.$allOperations;
        return { extended: true };
      },
    };
    const recorder = createReadSetRecorder(() => true);
    const extended = trackReads(client, recorder, schema);
    return { extended, recorder, run: (params: Omit<Parameters<AllOperations>[0], "query">, result: unknown = "rows") => hook!({ ...params, query: async (args) => ({ result, args }) }) };
  }

  it("returns the extended client and passes queries through unchanged", async () => {
    const { extended, run } = extend();
    expect(extended).toEqual({ extended: true });
    const args = { where: { id: "t1" } };
    await expect(run({ model: "Task", operation: "findUnique", args })).resolves.toEqual({ result: "rows", args });
  });

  it("records model reads with their nested reads, not writes", async () => {
    const { recorder, run } = extend();
    await run({ model: "Task", operation: "findMany", args: { where: { done: false }, include: { project: true } } });
    await run({ model: "Task", operation: "update", args: { where: { id: "t1" }, data: { done: true }, include: { assignee: true } } });
    await run({ model: "User", operation: "create", args: { data: { id: "u" } } });
    expect(recorder.readSet()).toEqual({
      allTables: false,
      reads: [
        { model: "Task", operation: "findMany", where: { done: false } },
        { model: "Project", operation: "include" },
      ],
    });
  });

  it.each(["$queryRaw", "$queryRawUnsafe", "$queryRawTyped"])("%s marks every table", async (operation) => {
    const { recorder, run } = extend();
    await run({ operation, args: ["SELECT 1"] });
    expect(recorder.readSet().allTables).toBe(true);
  });

  it.each(["$executeRaw", "$executeRawUnsafe"])("%s is a write: nothing recorded", async (operation) => {
    const { recorder, run } = extend();
    await run({ operation, args: ["UPDATE x SET y = 1"] });
    expect(recorder.readSet()).toEqual({ reads: [], allTables: false });
  });
});
