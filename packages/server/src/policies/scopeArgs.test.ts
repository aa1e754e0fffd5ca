import { describe, expect, it } from "vitest";
import { schema } from "../../../../generated/tether/index.ts";
import { ArgScoper, andWhere, NOTHING, type Condition } from "./scopeArgs.ts";

const RULES: Record<string, Condition> = {
  Project: { ownerId: "me" },
  Task: { project: { ownerId: "me" } },
  User: { id: "me" },
};
const scoper = new ArgScoper(schema, async (model) => RULES[model] ?? true);

describe("policy argument scoping", () => {
  it("merges the rule beside the caller's where, keeping unique fields at the top (findUnique)", async () => {
    expect(await scoper.scopeRead("Project", { where: { id: "p1" } })).toEqual({ where: { id: "p1", AND: [{ ownerId: "me" }] } });
    expect(await scoper.scopeRead("Project", {})).toEqual({ where: { ownerId: "me" } });
    expect(andWhere({ id: "x", AND: { a: 1 } }, [true, false])).toEqual({ id: "x", AND: [{ a: 1 }, NOTHING] });
    expect(andWhere(undefined, [true])).toBeUndefined();
  });

  it("scopes list relations in include/select where they are read, and _count", async () => {
    expect(await scoper.scopeRead("Project", { include: { tasks: true } })).toEqual({
      include: { tasks: { where: { project: { ownerId: "me" } } } },
      where: { ownerId: "me" },
    });
    expect(await scoper.scopeRead("User", { select: { projects: { where: { name: "n" }, take: 2 } } })).toEqual({
      select: { projects: { take: 2, where: { name: "n", AND: [{ ownerId: "me" }] } } },
      where: { id: "me" },
    });
    expect(await scoper.scopeRead("Project", { select: { _count: { select: { tasks: true } } } })).toEqual({
      select: { _count: { select: { tasks: { where: { project: { ownerId: "me" } } } } } },
      where: { ownerId: "me" },
    });
  });

  it("turns a to-one include into a condition on the including row (required: is; optional: or none)", async () => {
    expect(await scoper.scopeRead("Task", { include: { project: true, assignee: true } })).toEqual({
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
    const nested = await scoper.scopeRead("Task", { include: { project: { include: { owner: true } } } }, { ownRule: false });
    expect(nested.where).toEqual({ project: { is: { AND: [{ ownerId: "me" }, { owner: { is: { id: "me" } } }] } } });
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
    expect(await scoper.scopeWhere("Task", { assignee: null, project: { name: "p" } })).toEqual({
      assignee: null,
      project: { name: "p", AND: [{ ownerId: "me" }] },
    });
  });
});
