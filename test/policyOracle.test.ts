// The seeded rows are the oracle: for every read entry point × read-policy shape × caller, what
// Tether's policy-scoped `ctx.db` returns must be what the policy says, computed here in plain
// TypeScript from the rows (never by asking Prisma what a where means). One model at a time is
// under the policy being tested (the others are open), so a deny is seen at the top level, in
// nested include/select and `_count`, and through relation filters. Writes that read through the
// policy (update/delete/upsert/…Many) are checked too, and `$crdt.pull`, `$crdt.stream` and
// `$live` through a real server. Prisma 6.19 drops an empty `OR` nested in an `AND`: a deny that
// reached Prisma as `{ OR: [] }` admitted every row; shapes below reach every such corner.
import { TRPCError } from "@trpc/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { initTether, type Policies } from "@tether/server";
import { createTetherServer, type TetherServer } from "@tether/server/adapters/node";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { schema } from "../generated/tether/index.ts";
import { trpcCode } from "./support/crdtApp.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { connectAs, userFromRequest } from "./support/userClient.ts";

type Row = Record<string, unknown>;
/** What `ctx.db` is inside a mutation: the transaction client. */
type Db = Pick<PrismaClient, "project" | "task" | "note" | "projectMember">;
type Model = "Project" | "Task" | "Note" | "ProjectMember";
type User = string | null;
interface Ctx {
  user: { id: string } | null;
}

// ---- the dataset -------------------------------------------------------------------------------
const USERS = ["olive", "mia", "sam"];
const CALLERS: Array<[name: string, user: User]> = [
  ["anonymous", null],
  ["stranger", "sam"],
  ["member", "mia"],
  ["owner", "olive"],
];
const SEED = {
  Project: [
    { id: "p1", name: "Alpha", ownerId: "olive" },
    { id: "p2", name: "Beta", ownerId: "sam" },
    { id: "p3", name: "Gamma", ownerId: "olive" },
  ],
  ProjectMember: [
    { id: "m1", projectId: "p1", userId: "mia" },
    { id: "m2", projectId: "p2", userId: "olive" },
  ],
  Task: [
    { id: "t1", projectId: "p1", title: "write", done: false, position: 1, assigneeId: "mia" },
    { id: "t2", projectId: "p1", title: "ship", done: true, position: 2, assigneeId: null },
    { id: "t3", projectId: "p2", title: "plan", done: true, position: 3, assigneeId: "sam" },
    { id: "t4", projectId: "p3", title: "idle", done: false, position: 4, assigneeId: "olive" },
  ],
  Note: [
    { id: "n1", projectId: "p1", body: "alpha note" },
    { id: "n2", projectId: "p2", body: "beta note" },
  ],
};

// ---- policy shapes -----------------------------------------------------------------------------
/** Can `user` see project `projectId`: owner or member (the demo's rule), in TypeScript. */
const sees = (user: User, projectId: unknown) =>
  user !== null && SEED.Project.some((p) => p.id === projectId && (p.ownerId === user || SEED.ProjectMember.some((m) => m.projectId === p.id && m.userId === user)));
const ownerOf = (projectId: unknown) => SEED.Project.find((p) => p.id === projectId)!.ownerId;
const visibleTo = (user: string) => ({ OR: [{ ownerId: user }, { members: { some: { userId: user } } }] });

/** Per model: a scalar where on the caller (with its meaning), the same through relations, a caller-independent one. */
const WHERES: Record<Model, { scalar(user: string): Row; scalarMeans(row: Row, user: string): boolean; relation(user: string): Row; constant: Row; constantMeans(row: Row): boolean }> = {
  Project: {
    scalar: (u) => ({ ownerId: u }),
    scalarMeans: (r, u) => r.ownerId === u,
    relation: (u) => visibleTo(u),
    constant: { name: { in: ["Alpha", "Gamma"] } },
    constantMeans: (r) => r.name === "Alpha" || r.name === "Gamma",
  },
  Task: {
    scalar: (u) => ({ assigneeId: u }),
    scalarMeans: (r, u) => r.assigneeId === u,
    relation: (u) => ({ project: visibleTo(u) }),
    constant: { done: true },
    constantMeans: (r) => r.done === true,
  },
  Note: {
    // The projects the caller owns, listed: a member owns none, so `in: []`.
    scalar: (u) => ({ projectId: { in: SEED.Project.filter((p) => p.ownerId === u).map((p) => p.id) } }),
    scalarMeans: (r, u) => ownerOf(r.projectId) === u,
    relation: (u) => ({ project: visibleTo(u) }),
    constant: { body: { contains: "beta" } },
    constantMeans: (r) => String(r.body).includes("beta"),
  },
  ProjectMember: {
    scalar: (u) => ({ userId: u }),
    scalarMeans: (r, u) => r.userId === u,
    relation: (u) => ({ project: visibleTo(u) }),
    constant: { projectId: "p1" },
    constantMeans: (r) => r.projectId === "p1",
  },
};

interface Shape {
  name: string;
  /** What the policy's `read` returns (sync or async). */
  read(model: Model, user: User): unknown;
  /** What it means, from the rows. */
  admits(model: Model, row: Row, user: User): boolean;
  /** Every row, none, or a where that depends on the rows (a relation `_count` orderBy is refused through it). */
  kind(model: Model, user: User): "all" | "none" | "where";
}
const ALL = () => "all" as const;
const NONE = () => "none" as const;
const whereIfUser = (_m: Model, u: User) => (u ? ("where" as const) : ("none" as const));
const relationMeans = (model: Model, row: Row, user: User) => (model === "Project" ? sees(user, row.id) : sees(user, row.projectId));
const SHAPES: Shape[] = [
  { name: "false", read: () => false, admits: () => false, kind: NONE },
  { name: "true", read: () => true, admits: () => true, kind: ALL },
  { name: "async user ? scalar where : false", read: async (m, u) => (u ? WHERES[m].scalar(u) : false), admits: (m, r, u) => u !== null && WHERES[m].scalarMeans(r, u),
    // A member owns no project: the Note's list of owned projects is `in: []`.
    kind: (m, u) => (u === null || (m === "Note" && !SEED.Project.some((p) => p.ownerId === u)) ? "none" : "where"),
  },
  { name: "user ? relation where : false", read: (m, u) => (u ? WHERES[m].relation(u) : false), admits: (m, r, u) => relationMeans(m, r, u), kind: whereIfUser },
  { name: "constant where", read: (m) => WHERES[m].constant, admits: (m, r) => WHERES[m].constantMeans(r), kind: () => "where" },
  { name: "user ? true : false", read: (_m, u) => u !== null, admits: (_m, _r, u) => u !== null, kind: (_m, u) => (u ? "all" : "none") },
  { name: "{}", read: () => ({}), admits: () => true, kind: ALL },
  { name: "{ OR: [] }", read: () => ({ OR: [] }), admits: () => false, kind: NONE },
  { name: "{ AND: [] }", read: () => ({ AND: [] }), admits: () => true, kind: ALL },
  { name: "{ id: { in: [] } }", read: () => ({ id: { in: [] } }), admits: () => false, kind: NONE },
  { name: "{ AND: [{ OR: [] }] }", read: () => ({ AND: [{ OR: [] }] }), admits: () => false, kind: NONE },
  { name: "{ NOT: { OR: [] } }", read: () => ({ NOT: { OR: [] } }), admits: () => true, kind: ALL },
  {
    name: "user ? { OR: [in: [], relation] } : { OR: [] }",
    read: (m, u) => (u ? { OR: [{ id: { in: [] } }, WHERES[m].relation(u)] } : { OR: [] }),
    admits: (m, r, u) => relationMeans(m, r, u),
    kind: whereIfUser,
  },
];

/** The policy under test: one model gets the shape, the others are open. */
let current: { target: Model; shape: Shape } = { target: "Project", shape: SHAPES[1]! };
const policyOf = (model: Model) => ({
  read: (ctx: Ctx) => (current.target === model ? (current.shape.read(model, ctx.user?.id ?? null) as never) : true),
  create: () => true,
  update: () => true,
  delete: () => true,
});
const policies: Policies<PrismaClient, Ctx> = {
  project: policyOf("Project"),
  task: policyOf("Task"),
  note: policyOf("Note"),
  projectMember: policyOf("ProjectMember"),
};

// ---- what the policy says, from the rows -------------------------------------------------------
class World {
  constructor(
    readonly rows: Record<Model, Row[]>,
    private readonly user: User,
  ) {}
  admits(model: Model, row: Row): boolean {
    return current.target !== model || current.shape.admits(model, row, this.user);
  }
  kind(model: Model): "all" | "none" | "where" {
    return current.target !== model ? "all" : current.shape.kind(model, this.user);
  }
  all(model: Model): Row[] {
    return this.rows[model].filter((r) => this.admits(model, r)).sort((a, b) => String(a.id).localeCompare(String(b.id)));
  }
  byId(model: Model, id: string): Row | null {
    return this.all(model).find((r) => r.id === id) ?? null;
  }
  tasksOf(p: Row) {
    return this.all("Task").filter((t) => t.projectId === p.id);
  }
  membersOf(p: Row) {
    return this.all("ProjectMember").filter((m) => m.projectId === p.id);
  }
  /** The project of a row, if admitted (a to-one relation filter sees only that). */
  projectOf(row: Row): Row | null {
    return this.byId("Project", String(row.projectId));
  }
  /** The note of a project, if there is one and it is admitted. */
  noteOf(p: Row): Row | null {
    return this.all("Note").find((n) => n.projectId === p.id) ?? null;
  }
  /** Does the project have a note at all (the inner-join condition of an included to-one). */
  hasAnyNote(p: Row): boolean {
    return this.rows.Note.some((n) => n.projectId === p.id);
  }
}

const pick = (row: Row, keys: string[]) => Object.fromEntries(keys.map((k) => [k, row[k]]));
const ids = (rows: Row[]) => rows.map((r) => ({ id: r.id }));

interface Read {
  name: string;
  /** Models whose policy can change the answer. */
  touches: Model[];
  run(db: Db): Promise<unknown>;
  expected(w: World): unknown;
}
const orderById = { orderBy: { id: "asc" as const } };
type Delegate = {
  findMany(a?: unknown): Promise<unknown>;
  findFirst(a: unknown): Promise<unknown>;
  findUnique(a: unknown): Promise<unknown>;
  findFirstOrThrow(a: unknown): Promise<unknown>;
  findUniqueOrThrow(a: unknown): Promise<unknown>;
  count(a?: unknown): Promise<unknown>;
  aggregate(a: unknown): Promise<unknown>;
  groupBy(a: unknown): Promise<unknown>;
};
const delegate = (db: Db, model: Model) => (db as unknown as Record<string, Delegate>)[model.charAt(0).toLowerCase() + model.slice(1)]!;
const PROBE: Record<Model, string> = { Project: "p1", Task: "t1", Note: "n1", ProjectMember: "m1" };
const GROUP: Record<Model, string> = { Project: "ownerId", Task: "projectId", Note: "projectId", ProjectMember: "projectId" };
const NOT_FOUND = { error: "NOT_FOUND" };

/** Every top-level entry point of one model. */
function topLevel(model: Model): Read[] {
  const id = PROBE[model];
  const by = GROUP[model];
  const count = (w: World) => w.all(model).length;
  const minMax = (w: World, f: "min" | "max") => {
    const all = w.all(model).map((r) => String(r.id));
    return all.length === 0 ? null : f === "min" ? all[0] : all[all.length - 1];
  };
  const reads: Read[] = [
    { name: "findMany", touches: [model], run: (db) => delegate(db, model).findMany(orderById), expected: (w) => w.all(model) },
    { name: "findFirst", touches: [model], run: (db) => delegate(db, model).findFirst({ where: { id } }), expected: (w) => w.byId(model, id) },
    { name: "findUnique", touches: [model], run: (db) => delegate(db, model).findUnique({ where: { id } }), expected: (w) => w.byId(model, id) },
    { name: "findFirstOrThrow", touches: [model], run: (db) => delegate(db, model).findFirstOrThrow({ where: { id } }), expected: (w) => w.byId(model, id) ?? NOT_FOUND },
    { name: "findUniqueOrThrow", touches: [model], run: (db) => delegate(db, model).findUniqueOrThrow({ where: { id } }), expected: (w) => w.byId(model, id) ?? NOT_FOUND },
    { name: "findMany skip/take", touches: [model], run: (db) => delegate(db, model).findMany({ ...orderById, skip: 1, take: 1 }), expected: (w) => w.all(model).slice(1, 2) },
    { name: "count", touches: [model], run: (db) => delegate(db, model).count(), expected: count },
    { name: "count where", touches: [model], run: (db) => delegate(db, model).count({ where: { id } }), expected: (w) => (w.byId(model, id) ? 1 : 0) },
    { name: "count select", touches: [model], run: (db) => delegate(db, model).count({ select: { _all: true, id: true } }), expected: (w) => ({ _all: count(w), id: count(w) }) },
    {
      name: "aggregate",
      touches: [model],
      run: (db) => delegate(db, model).aggregate({ _count: { _all: true, id: true }, _min: { id: true }, _max: { id: true } }),
      expected: (w) => ({ _count: { _all: count(w), id: count(w) }, _min: { id: minMax(w, "min") }, _max: { id: minMax(w, "max") } }),
    },
    {
      name: "groupBy",
      touches: [model],
      run: (db) => delegate(db, model).groupBy({ by: [by], _count: { _all: true }, orderBy: { [by]: "asc" } }),
      expected: (w) => {
        const groups = new Map<string, number>();
        for (const r of w.all(model)) groups.set(String(r[by]), (groups.get(String(r[by])) ?? 0) + 1);
        return [...groups.keys()].sort().map((key) => ({ [by]: key, _count: { _all: groups.get(key) } }));
      },
    },
  ];
  return reads.map((read) => ({ ...read, name: `${model}.${read.name}` }));
}

/** Nested include/select, `_count`, to-one includes, relation filters. */
const NESTED: Read[] = [
  {
    name: "project include tasks, members, note, _count",
    touches: ["Project", "Task", "ProjectMember", "Note"],
    run: (db) => db.project.findMany({ ...orderById, include: { tasks: orderById, members: orderById, note: true, _count: true } }),
    // An included to-one the caller may not read hides the including row (inner join); none at all reads null.
    expected: (w) =>
      w
        .all("Project")
        .filter((p) => !w.hasAnyNote(p) || w.noteOf(p))
        .map((p) => ({ ...p, tasks: w.tasksOf(p), members: w.membersOf(p), note: w.noteOf(p), _count: { tasks: w.tasksOf(p).length, members: w.membersOf(p).length, exports: 0 } })),
  },
  {
    name: "project select tasks where, _count select with where",
    touches: ["Project", "Task", "ProjectMember"],
    run: (db) =>
      db.project.findMany({
        ...orderById,
        select: { id: true, tasks: { where: { done: false }, select: { id: true }, ...orderById }, _count: { select: { tasks: { where: { done: true } }, members: true } } },
      }),
    expected: (w) =>
      w.all("Project").map((p) => ({
        id: p.id,
        tasks: ids(w.tasksOf(p).filter((t) => !t.done)),
        _count: { tasks: w.tasksOf(p).filter((t) => t.done).length, members: w.membersOf(p).length },
      })),
  },
  {
    name: "project select only tasks",
    touches: ["Project", "Task"],
    run: (db) => db.project.findMany({ ...orderById, select: { tasks: { select: { id: true }, ...orderById } } }),
    expected: (w) => w.all("Project").map((p) => ({ tasks: ids(w.tasksOf(p)) })),
  },
  {
    name: "project select only _count of tasks",
    touches: ["Project", "Task"],
    run: (db) => db.project.findMany({ ...orderById, select: { _count: { select: { tasks: true } } } }),
    expected: (w) => w.all("Project").map((p) => ({ _count: { tasks: w.tasksOf(p).length } })),
  },
  {
    name: "project findUnique include tasks",
    touches: ["Project", "Task"],
    run: (db) => db.project.findUnique({ where: { id: "p1" }, include: { tasks: orderById } }),
    expected: (w) => {
      const p = w.byId("Project", "p1");
      return p && { ...p, tasks: w.tasksOf(p) };
    },
  },
  {
    name: "task include project (required to-one)",
    touches: ["Task", "Project"],
    run: (db) => db.task.findMany({ ...orderById, include: { project: true } }),
    expected: (w) => w.all("Task").flatMap((t) => (w.projectOf(t) ? [{ ...t, project: w.projectOf(t) }] : [])),
  },
  {
    name: "note include project include members",
    touches: ["Note", "Project", "ProjectMember"],
    run: (db) => db.note.findMany({ ...orderById, include: { project: { include: { members: orderById } } } }),
    expected: (w) => w.all("Note").flatMap((n) => (w.projectOf(n) ? [{ ...n, project: { ...w.projectOf(n)!, members: w.membersOf(w.projectOf(n)!) } }] : [])),
  },
  {
    name: "member select project select tasks",
    touches: ["ProjectMember", "Project", "Task"],
    run: (db) => db.projectMember.findMany({ ...orderById, select: { id: true, project: { select: { id: true, tasks: { select: { id: true }, ...orderById } } } } }),
    expected: (w) => w.all("ProjectMember").flatMap((m) => (w.projectOf(m) ? [{ id: m.id, project: { id: m.projectId, tasks: ids(w.tasksOf(w.projectOf(m)!)) } }] : [])),
  },
];

/** A relation filter on projects or tasks, its meaning on the admitted rows. */
const filter = (name: string, model: "Project" | "Task", touches: Model[], where: Row, means: (w: World, row: Row) => boolean): Read => ({
  name: `${model} where ${name}`,
  touches: [model, ...touches],
  run: (db) => delegate(db, model).findMany({ where, ...orderById, select: { id: true } }),
  expected: (w) => ids(w.all(model).filter((r) => means(w, r))),
});
const FILTERS: Read[] = [
  filter("tasks some not done", "Project", ["Task"], { tasks: { some: { done: false } } }, (w, p) => w.tasksOf(p).some((t) => !t.done)),
  filter("tasks every done", "Project", ["Task"], { tasks: { every: { done: true } } }, (w, p) => w.tasksOf(p).every((t) => t.done)),
  filter("tasks none done", "Project", ["Task"], { tasks: { none: { done: true } } }, (w, p) => !w.tasksOf(p).some((t) => t.done)),
  filter("tasks none", "Project", ["Task"], { tasks: { none: {} } }, (w, p) => w.tasksOf(p).length === 0),
  filter("NOT tasks some", "Project", ["Task"], { NOT: { tasks: { some: {} } } }, (w, p) => w.tasksOf(p).length === 0),
  filter("OR [tasks some ship, name Gamma]", "Project", ["Task"], { OR: [{ tasks: { some: { title: "ship" } } }, { name: "Gamma" }] }, (w, p) => w.tasksOf(p).some((t) => t.title === "ship") || p.name === "Gamma"),
  filter("members some mia", "Project", ["ProjectMember"], { members: { some: { userId: "mia" } } }, (w, p) => w.membersOf(p).some((m) => m.userId === "mia")),
  filter("note is alpha", "Project", ["Note"], { note: { is: { body: { contains: "alpha" } } } }, (w, p) => String(w.noteOf(p)?.body ?? "").includes("alpha")),
  filter("note isNot alpha", "Project", ["Note"], { note: { isNot: { body: { contains: "alpha" } } } }, (w, p) => !String(w.noteOf(p)?.body ?? "").includes("alpha")),
  filter("note null", "Project", ["Note"], { note: null }, (w, p) => w.noteOf(p) === null),
  filter("note isNot null", "Project", ["Note"], { note: { isNot: null } }, (w, p) => w.noteOf(p) !== null),
  filter("project is owned by olive", "Task", ["Project"], { project: { is: { ownerId: "olive" } } }, (w, t) => w.projectOf(t)?.ownerId === "olive"),
  filter("project isNot owned by olive", "Task", ["Project"], { project: { isNot: { ownerId: "olive" } } }, (w, t) => w.projectOf(t)?.ownerId !== "olive"),
  filter("project named Alpha (bare)", "Task", ["Project"], { project: { name: "Alpha" } }, (w, t) => w.projectOf(t)?.name === "Alpha"),
  filter("project members some mia", "Task", ["Project", "ProjectMember"], { project: { members: { some: { userId: "mia" } } } }, (w, t) => {
    const p = w.projectOf(t);
    return p !== null && w.membersOf(p).some((m) => m.userId === "mia");
  }),
  filter("project tasks every done", "Task", ["Project"], { project: { is: { tasks: { every: { done: true } } } } }, (w, t) => {
    const p = w.projectOf(t);
    return p !== null && w.tasksOf(p).every((x) => x.done);
  }),
  {
    name: "Project count where tasks some",
    touches: ["Project", "Task"],
    run: (db) => db.project.count({ where: { tasks: { some: {} } } }),
    expected: (w) => w.all("Project").filter((p) => w.tasksOf(p).length > 0).length,
  },
];

/** `a` before `b` by `key` (ascending; nulls last, as Postgres sorts them), then by id. */
const by = (key: (r: Row) => unknown, direction: "asc" | "desc") => (a: Row, b: Row) => {
  const [x, y] = [key(a), key(b)];
  if (x !== y) {
    if (x === null || x === undefined) return direction === "asc" ? 1 : -1;
    if (y === null || y === undefined) return direction === "asc" ? -1 : 1;
    return (String(x) < String(y) ? -1 : 1) * (direction === "asc" ? 1 : -1);
  }
  return String(a.id).localeCompare(String(b.id));
};
/**
 * An order through a relation is a read of it, compared in order: a relation `_count` counts only
 * admitted rows (kept when the rule admits all, dropped when none — every count is 0 — refused
 * otherwise), and ordering by a to-one's field keeps only rows whose related row is admitted.
 */
const ORDERS: Read[] = [
  {
    name: "project orderBy tasks _count",
    touches: ["Project", "Task"],
    run: (db) => db.project.findMany({ orderBy: [{ tasks: { _count: "asc" } }, { id: "asc" }], select: { id: true } }),
    expected: (w) => {
      const kind = w.kind("Task");
      if (kind === "where") return { error: "FORBIDDEN" };
      return ids([...w.all("Project")].sort(by((p) => (kind === "all" ? w.rows.Task.filter((t) => t.projectId === p.id).length : 0), "asc")));
    },
  },
  {
    name: "task orderBy project name",
    touches: ["Task", "Project"],
    run: (db) => db.task.findMany({ orderBy: [{ project: { name: "desc" } }, { id: "asc" }], select: { id: true } }),
    expected: (w) => ids(w.all("Task").filter((t) => w.projectOf(t)).sort(by((t) => w.projectOf(t)!.name, "desc"))),
  },
  {
    name: "project orderBy note body (optional to-one)",
    touches: ["Project", "Note"],
    run: (db) => db.project.findMany({ orderBy: [{ note: { body: "desc" } }, { id: "asc" }], select: { id: true } }),
    expected: (w) =>
      ids(
        w
          .all("Project")
          .filter((p) => !w.hasAnyNote(p) || w.noteOf(p))
          .sort(by((p) => w.noteOf(p)?.body ?? null, "desc")),
      ),
  },
  {
    name: "project include tasks orderBy project name",
    touches: ["Project", "Task"],
    run: (db) => db.project.findMany({ ...orderById, select: { id: true, tasks: { orderBy: [{ project: { name: "asc" } }, { id: "asc" }], select: { id: true } } } }),
    expected: (w) => w.all("Project").map((p) => ({ id: p.id, tasks: ids(w.tasksOf(p)) })),
  },
  {
    name: "task count orderBy project name, take 2",
    touches: ["Task", "Project"],
    run: (db) => db.task.count({ orderBy: { project: { name: "asc" } }, take: 2 }),
    expected: (w) => Math.min(2, w.all("Task").filter((t) => w.projectOf(t)).length),
  },
];

const MODELS: Model[] = ["Project", "Task", "Note", "ProjectMember"];
const READS: Read[] = [...MODELS.flatMap(topLevel), ...NESTED, ...FILTERS, ...ORDERS];

/** Writes that read through the policy; every update/delete/create check allows. */
interface Write {
  name: string;
  run(db: Db): Promise<unknown>;
  expected(w: World): unknown;
}
const WRITES: Record<"Task" | "Note", Write[]> = {
  Task: [
    { name: "update", run: (db) => db.task.update({ where: { id: "t1" }, data: { title: "x" }, select: { id: true } }), expected: (w) => (w.byId("Task", "t1") ? { id: "t1" } : NOT_FOUND) },
    { name: "delete", run: (db) => db.task.delete({ where: { id: "t1" }, select: { id: true } }), expected: (w) => (w.byId("Task", "t1") ? { id: "t1" } : NOT_FOUND) },
    { name: "updateMany", run: (db) => db.task.updateMany({ data: { title: "x" } }), expected: (w) => ({ count: w.all("Task").length }) },
    { name: "deleteMany", run: (db) => db.task.deleteMany({ where: { done: true } }), expected: (w) => ({ count: w.all("Task").filter((t) => t.done).length }) },
    {
      name: "upsert existing",
      run: (db) => db.task.upsert({ where: { id: "t1" }, create: { id: "t1", projectId: "p1", title: "new" }, update: { title: "x" }, select: { id: true, title: true } }),
      // Not admitted: it can only try to create, and the id is taken (CONFLICT, as a plain create's).
      expected: (w) => (w.byId("Task", "t1") ? { id: "t1", title: "x" } : { error: "CONFLICT" }),
    },
    {
      name: "upsert new",
      run: (db) => db.task.upsert({ where: { id: "t9" }, create: { id: "t9", projectId: "p3", title: "new" }, update: { title: "x" }, select: { id: true, title: true } }),
      expected: () => ({ id: "t9", title: "new" }),
    },
  ],
  Note: [
    { name: "update", run: (db) => db.note.update({ where: { id: "n1" }, data: { body: "x" }, select: { id: true } }), expected: (w) => (w.byId("Note", "n1") ? { id: "n1" } : NOT_FOUND) },
    { name: "delete", run: (db) => db.note.delete({ where: { id: "n1" }, select: { id: true } }), expected: (w) => (w.byId("Note", "n1") ? { id: "n1" } : NOT_FOUND) },
    { name: "updateMany", run: (db) => db.note.updateMany({ data: { body: "x" } }), expected: (w) => ({ count: w.all("Note").length }) },
  ],
};

/** A result as data, an error as its tRPC code ("refused" for anything that is not one). */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return JSON.parse(JSON.stringify((await run()) ?? null));
  } catch (error) {
    return { error: error instanceof TRPCError ? error.code : "refused" };
  }
}

class Rollback extends Error {}

function buildApp(store: AppStore) {
  const tether = initTether<Ctx>().create({
    store,
    schema,
    policies,
    // The docs' authorize: a room per note, open to whoever may read the note through ctx.db.
    presence: { authorize: async (ctx, room) => (await ctx.db.note.count({ where: { id: room.replace(/^note:/, "") } })) > 0 },
  });
  let written: unknown;
  const router = tether.appRouter({
    reads: tether.query.input(z.array(z.string())).query(async ({ ctx, input }) => {
      const out: Record<string, unknown> = {};
      for (const name of input) out[name] = await outcome(() => READS.find((r) => r.name === name)!.run(ctx.db));
      return out;
    }),
    /** One write, then rolled back: the dataset stays as seeded. */
    write: tether.mutation.input(z.object({ model: z.enum(["Task", "Note"]), name: z.string() })).mutation(async ({ ctx, input }) => {
      written = await outcome(() => WRITES[input.model].find((w) => w.name === input.name)!.run(ctx.db));
      throw new Rollback();
    }),
    notes: tether.query.query(({ ctx }) => ctx.db.note.findMany(orderById)),
  });
  const caller = (user: User) => tether.createCallerFactory(router)({ user: user ? { id: user } : null });
  return {
    tether,
    router,
    reads: (user: User, names: string[]) => caller(user).reads(names),
    write: async (user: User, model: "Task" | "Note", name: string) => {
      await caller(user)
        .write({ model, name })
        .catch((error: unknown) => {
          if (!(error instanceof TRPCError && error.cause instanceof Rollback)) throw error;
        });
      return written;
    },
  };
}
type Router = ReturnType<typeof buildApp>["router"];

const normal = (value: unknown) => JSON.parse(JSON.stringify(value ?? null));

describe.each(engines)("policies agree with the rows on %s", (engine) => {
  let store: AppStore;
  let closeStore: () => Promise<void>;
  let app: ReturnType<typeof buildApp>;
  let server: TetherServer;
  let rows: Record<Model, Row[]>;
  const cleanups: Array<() => unknown> = [];
  let cases = 0;

  beforeAll(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    closeStore = made.close;
    await store.db.user.createMany({ data: USERS.map((id) => ({ id, email: `${id}@x`, name: id })) });
    await store.db.project.createMany({ data: SEED.Project });
    await store.db.projectMember.createMany({ data: SEED.ProjectMember });
    await store.db.task.createMany({ data: SEED.Task });
    await store.db.note.createMany({ data: SEED.Note });
    // The rows as stored (defaults and timestamps filled in), read once, unscoped.
    rows = {
      Project: normal(await store.db.project.findMany()),
      Task: normal(await store.db.task.findMany()),
      Note: normal(await store.db.note.findMany()),
      ProjectMember: normal(await store.db.projectMember.findMany()),
    };
    app = buildApp(store);
    server = await createTetherServer({ router: app.router, createContext: userFromRequest, port: 0, closeGraceMs: 100 });
  });
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await server?.close();
    await app?.tether.close();
    await closeStore?.();
    console.log(`policy oracle on ${engine}: ${cases} cases compared`);
  });

  const configs = MODELS.flatMap((target) => SHAPES.map((shape) => [`${target}: ${shape.name}`, target, shape] as const));

  it.each(configs)("reads and writes — %s", async (_name, target, shape) => {
    current = { target, shape };
    const reads = READS.filter((r) => r.touches.includes(target));
    const wrong: string[] = [];
    for (const [caller, user] of CALLERS) {
      const world = new World(rows, user);
      const got = await app.reads(user, reads.map((r) => r.name));
      for (const read of reads) {
        cases += 1;
        const expected = normal(read.expected(world));
        if (canonical(got[read.name]) !== canonical(expected)) {
          wrong.push(`${caller} ${read.name}: got ${JSON.stringify(got[read.name])}, policy says ${JSON.stringify(expected)}`);
        }
      }
      if (target === "Task" || target === "Note") {
        for (const write of WRITES[target]) {
          cases += 1;
          const result = await app.write(user, target, write.name);
          const expected = write.expected(world);
          if (canonical(result) !== canonical(expected)) wrong.push(`${caller} ${target}.${write.name}: got ${JSON.stringify(result)}, policy says ${JSON.stringify(expected)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    // The writes were rolled back: the rows are as seeded.
    expect(normal(await store.db.task.findMany())).toEqual(rows.Task);
  });

  // Through a real server: the note's document ($crdt.pull over HTTP, $crdt.stream and $live over WebSocket).
  it.each(SHAPES.map((shape) => [shape.name, shape] as const))("$crdt.pull, $crdt.stream, $live, $presence.join/set — Note: %s", async (_name, shape) => {
    current = { target: "Note", shape };
    const target = { model: "Note", id: "n1", field: "body" };
    const wrong: string[] = [];
    for (const [caller, user] of CALLERS) {
      const world = new World(rows, user);
      const { trpc } = connectAs<Router>(server, user ?? "", cleanups);
      const readable = world.byId("Note", "n1") !== null;
      const first = (subscribe: (h: { onData(data: unknown): void; onError(error: unknown): void }) => { unsubscribe(): void }) =>
        new Promise<unknown>((resolve) => {
          const subscription = subscribe({ onData: (data) => resolve({ data }), onError: (error) => resolve({ error: (error as { data?: { code?: string } }).data?.code }) });
          cleanups.push(() => subscription.unsubscribe());
        });
      const answers = {
        pull: await trpcCode(trpc.$crdt.pull.query(target)),
        stream: "error" in ((await first((h) => trpc.$crdt.stream.subscribe(target, h))) as object) ? "NOT_FOUND" : "OK",
        livePull: "error" in ((await first((h) => trpc.$live.subscribe({ path: "$crdt.pull", input: target }, h))) as object) ? "NOT_FOUND" : "OK",
        liveNotes: ((await first((h) => trpc.$live.subscribe({ path: "notes", input: undefined }, h))) as { data: { data: { data: unknown } } }).data.data.data,
        join: "error" in ((await first((h) => trpc.$presence.join.subscribe({ room: "note:n1", clientId: caller }, h))) as object) ? "FORBIDDEN" : "OK",
        set: await trpcCode(trpc.$presence.set.mutate({ room: "note:n1", clientId: caller, state: { caller } })),
      };
      const expected = {
        pull: readable ? "OK" : "NOT_FOUND",
        stream: readable ? "OK" : "NOT_FOUND",
        livePull: readable ? "OK" : "NOT_FOUND",
        liveNotes: world.all("Note"),
        join: readable ? "OK" : "FORBIDDEN",
        // A set needs the caller's open join; an anonymous one only counts on its own connection (sets go over HTTP here).
        set: readable && user !== null ? "OK" : "FORBIDDEN",
      };
      cases += 6;
      if (canonical(normal(answers)) !== canonical(normal(expected))) wrong.push(`${caller}: got ${JSON.stringify(answers)}, policy says ${JSON.stringify(expected)}`);
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    }
    expect(wrong).toEqual([]);
  });
});

/** JSON with object keys sorted: equal values compare equal whatever order their keys came in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Row).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}
