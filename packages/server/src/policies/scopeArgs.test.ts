import { describe, expect, it } from "vitest";
import { schema } from "../../../../generated/tether/index.ts";
import { conjoin, foldWhere, type Condition } from "./condition.ts";
import { ArgScoper } from "./scopeArgs.ts";

const RULES: Record<string, Condition> = {
  Project: { ownerId: "me" },
  Task: { project: { ownerId: "me" } },
  User: { id: "me" },
};
const scoper = new ArgScoper(schema, async (model) => RULES[model] ?? true);
const args = async (model: string, read: Record<string, unknown>, options?: { ownRule?: boolean }) => (await scoper.scopeRead(model, read, options))?.args;

describe("policy argument scoping", () => {
  it("merges the rule beside the caller's where, keeping unique fields at the top (findUnique)", async () => {
    expect(await args("Project", { where: { id: "p1" } })).toEqual({ where: { id: "p1", AND: [{ ownerId: "me" }] } });
    expect(await args("Project", {})).toEqual({ where: { ownerId: "me" } });
    expect(conjoin({ id: "x", AND: { a: 1 } }, [true, false])).toEqual({ id: "x", AND: [{ a: 1 }, false] });
    expect(conjoin(undefined, [true])).toBeUndefined();
  });

  it("scopes list relations in include/select where they are read, and _count", async () => {
    expect(await args("Project", { include: { tasks: true } })).toEqual({
      include: { tasks: { where: { project: { ownerId: "me" } } } },
      where: { ownerId: "me" },
    });
    expect(await args("User", { select: { projects: { where: { name: "n" }, take: 2 } } })).toEqual({
      select: { projects: { take: 2, where: { name: "n", AND: [{ ownerId: "me" }] } } },
      where: { id: "me" },
    });
    expect(await args("Project", { select: { _count: { select: { tasks: true } } } })).toEqual({
      select: { _count: { select: { tasks: { where: { project: { ownerId: "me" } } } } } },
      where: { ownerId: "me" },
    });
  });

  it("turns a to-one include into a condition on the including row (required: is; optional: or none)", async () => {
    expect(await args("Task", { include: { project: true, assignee: true } })).toEqual({
      include: { project: true, assignee: true },
      where: {
        AND: [
          { project: { ownerId: "me" } },
          { project: { is: { ownerId: "me" } } },
          { OR: [{ assignee: { is: null } }, { assignee: { is: { id: "me" } } }] },
        ],
      },
    });
    // Deeper to-one includes fold into the outer condition.
    const nested = await args("Task", { include: { project: { include: { owner: true } } } }, { ownRule: false });
    expect(nested?.where).toEqual({ project: { is: { AND: [{ ownerId: "me" }, { owner: { is: { id: "me" } } }] } } });
  });

  it("judges relation filters only against admitted rows", async () => {
    const where = await scoper.scopeWhere("Project", {
      OR: [{ tasks: { some: { title: "t" } } }, { tasks: { every: { done: true } } }, { tasks: { none: {} } }],
      owner: { is: { name: "x" } },
    });
    expect(where).toEqual({
      OR: [
        { tasks: { some: { title: "t", AND: [{ project: { ownerId: "me" } }] } } },
        { tasks: { every: { OR: [{ done: true }, { NOT: { project: { ownerId: "me" } } }] } } },
        { tasks: { none: { AND: [{ project: { ownerId: "me" } }] } } },
      ],
      owner: { is: { name: "x", AND: [{ id: "me" }] } },
    });
    // `assignee: null` asks for no assignee the caller may read.
    expect(await scoper.scopeWhere("Task", { assignee: null, project: { name: "p" } })).toEqual({
      assignee: { isNot: { id: "me" } },
      project: { name: "p", AND: [{ ownerId: "me" }] },
    });
  });
});

describe("folding constants and empty lists out of a where", () => {
  const fold = (model: string, where: unknown) => foldWhere(schema, model, where);

  it("decides AND/OR/NOT of constants and empty lists itself", () => {
    expect(fold("Project", { OR: [] })).toBe(false);
    expect(fold("Project", { id: "p", AND: [{ OR: [] }] })).toBe(false); // Prisma 6.19 returns the row
    expect(fold("Project", { AND: [] })).toBe(true);
    expect(fold("Project", {})).toBe(true);
    expect(fold("Project", { NOT: [] })).toBe(true);
    expect(fold("Project", { NOT: { OR: [] } })).toBe(true);
    expect(fold("Project", { NOT: [{ name: "a" }, false] })).toEqual({ NOT: [{ name: "a" }] });
    expect(fold("Project", { OR: [false, { name: "a" }] })).toEqual({ OR: [{ name: "a" }] });
    expect(fold("Project", { OR: [{ name: "a" }, { AND: [] }] })).toBe(true);
    expect(fold("Project", { id: { in: [] } })).toBe(false);
    expect(fold("Project", { id: { notIn: [] } })).toBe(true);
    expect(fold("Project", { id: { not: { in: [] } } })).toBe(true);
    expect(fold("Project", { name: { in: [], mode: "insensitive" } })).toBe(false);
    expect(fold("Project", { id: "p", name: undefined })).toEqual({ id: "p" });
  });

  it("judges relation filters over a related set that admits nothing as over the empty set", () => {
    expect(fold("Project", { tasks: { some: false } })).toBe(false);
    expect(fold("Project", { tasks: { none: false } })).toBe(true);
    expect(fold("Project", { tasks: { every: { OR: [{ done: true }, { NOT: false }] } } })).toBe(true);
    expect(fold("Project", { tasks: { every: { OR: [] } } })).toEqual({ tasks: { none: {} } });
    expect(fold("Task", { project: { is: { AND: [false] } } })).toBe(false);
    expect(fold("Task", { project: { isNot: false } })).toBe(true);
    expect(fold("Task", { project: { AND: [{ OR: [] }] } })).toBe(false);
    expect(fold("Task", { assignee: { is: null } })).toEqual({ assignee: { is: null } });
  });

  it("scopes a read whose rule admits nothing without a where for Prisma", async () => {
    const deny = new ArgScoper(schema, async (model) => (model === "Task" ? false : true));
    expect(await deny.scopeRead("Task", { where: { id: "t" } })).toBeNull();
    expect(await deny.scopeFilter("Task", { id: "t" })).toBe(false);
    // Nested lists and counts of the denied model are left out and filled in.
    expect(await deny.scopeRead("Project", { include: { tasks: true, _count: true } })).toEqual({
      args: { include: { _count: { select: { members: true, exports: true } } } },
      fill: { emptyLists: ["tasks"], zeroCounts: ["tasks"], placeholders: [], nested: {} },
    });
    expect(await deny.scopeRead("Project", { select: { tasks: { select: { id: true } } } })).toEqual({
      args: { select: { id: true } },
      fill: { emptyLists: ["tasks"], zeroCounts: [], placeholders: ["id"], nested: {} },
    });
    // A to-one include of the denied model hides the including row (inner join).
    expect(await deny.scopeRead("Attachment", { include: { task: true } })).toBeNull();
    // Relation filters through it: as over the empty set.
    expect(await deny.scopeFilter("Project", { tasks: { some: {} } })).toBe(false);
    expect(await deny.scopeFilter("Project", { tasks: { every: { done: true } }, name: "n" })).toEqual({ name: "n" });
    expect(await deny.scopeFilter("Attachment", { task: null })).toBe(true);
  });

  it("scopes orderBy through relations: to-one by inner join, relation _count kept, dropped or refused", async () => {
    // Ordering tasks by their project's name: only tasks whose project the caller may read.
    expect(await args("Task", { orderBy: [{ project: { name: "asc" } }, { id: "asc" }] })).toEqual({
      orderBy: [{ project: { name: "asc" } }, { id: "asc" }],
      where: { AND: [{ project: { ownerId: "me" } }, { project: { is: { ownerId: "me" } } }] },
    });
    // Through two to-one relations: each related row must be readable.
    expect(await args("Attachment", { orderBy: { task: { project: { name: "desc" } } } })).toEqual({
      orderBy: { task: { project: { name: "desc" } } },
      where: { task: { is: { AND: [{ project: { ownerId: "me" } }, { project: { is: { ownerId: "me" } } }] } } },
    });
    // A relation _count through a where rule cannot be scoped: refused, whatever rows exist.
    await expect(args("Project", { orderBy: { tasks: { _count: "desc" } } })).rejects.toMatchObject({ code: "FORBIDDEN" });
    // Through a rule admitting every row it is kept; through one admitting none, dropped (all counts 0).
    const open = new ArgScoper(schema, async (model) => (model === "Task" ? true : { ownerId: "me" }));
    expect(await open.scopeRead("Project", { orderBy: { tasks: { _count: "desc" } } })).toEqual({ args: { orderBy: { tasks: { _count: "desc" } }, where: { ownerId: "me" } }, fill: null });
    const none = new ArgScoper(schema, async (model) => (model === "Task" ? false : true));
    expect(await none.scopeRead("Project", { orderBy: [{ tasks: { _count: "desc" } }, { id: "asc" }] })).toEqual({ args: { orderBy: [{ id: "asc" }] }, fill: null });
    expect(await none.scopeRead("Project", { orderBy: { tasks: { _count: "desc" } } })).toEqual({ args: {}, fill: null });
  });
});
