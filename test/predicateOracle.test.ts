// The database is the oracle: for every (where, row) pair, what Prisma's own SQL says about the
// row must agree with matchesWhere on the row as the change log captured it. "no-match" must mean
// the database does not return the row, "match" that it does (unless SQL says NULL, see below);
// "unknown" is always allowed (it only costs a re-run). A "no-match" for a returned row is a
// missed update waiting to happen; a "match" for a row SQL says false of becomes one under NOT.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CapturedRow, Match, ModelMeta } from "@tether/server";
import { createChangeFeed, matchesWhere } from "@tether/server/internal";
import { schema } from "../generated/tether/index.ts";
import { createTestStore, engines, type AppStore } from "./support/databases.ts";
import { recordFeed } from "./support/feedRecorder.ts";

const Task = schema.models.Task as ModelMeta;

const TITLES = [
  "alpha", "Alpha", "ALPHA beta", "a_c", "abc", "aXc", "a%c", "100% sure", "back\\slash", "Éclair", "éclair",
  "café", "", "line\nbreak", "x_y_z", "😀 smile", "K", "k",
];
const ASSIGNEES = ["alice", "bob", null];
const POSITIONS = [-1, 0, 1, 5, 10];
const BASE = Date.parse("2024-05-01T10:00:00.000Z");
const at = (i: number) => new Date(BASE + i * 1001); // distinct ms, some whole seconds

interface Case {
  where: Record<string, unknown>;
  /** false: "unknown" is expected for some rows (collation, locale, NULL under a nested not). */
  exact?: boolean;
}

const CASES: Case[] = [
  // strings
  { where: { title: "alpha" } },
  { where: { title: { equals: "Alpha" } } },
  { where: { title: { equals: "ALPHA", mode: "insensitive" } }, exact: false },
  { where: { title: { equals: "A_C", mode: "insensitive" } }, exact: false },
  { where: { title: { equals: "%", mode: "insensitive" } } },
  { where: { title: { equals: "ÉCLAIR", mode: "insensitive" } }, exact: false },
  { where: { NOT: { title: { equals: "ÉCLAIR", mode: "insensitive" } } }, exact: false },
  { where: { title: { equals: "k", mode: "insensitive" } }, exact: false },
  { where: { title: { in: ["alpha", "abc", "zzz"] } } },
  { where: { title: { in: ["ALPHA", "A_C"], mode: "insensitive" } }, exact: false },
  { where: { title: { notIn: ["alpha", "abc"] } } },
  { where: { title: { notIn: ["ALPHA"], mode: "insensitive" } }, exact: false },
  { where: { title: { not: "alpha" } } },
  { where: { title: { not: "ALPHA", mode: "insensitive" } }, exact: false },
  { where: { title: { not: { in: ["ALPHA"] }, mode: "insensitive" } }, exact: false },
  { where: { NOT: { title: { not: { in: ["ALPHA"] }, mode: "insensitive" } } }, exact: false },
  { where: { title: { not: { contains: "a" } } } },
  { where: { title: { contains: "a_c" } } },
  { where: { title: { contains: "a\\_c" } } },
  { where: { title: { contains: "%" } } },
  { where: { title: { contains: "\\%" } } },
  { where: { title: { contains: "_" } } },
  { where: { title: { contains: "\\_" } } },
  { where: { title: { contains: "\\\\" } } },
  { where: { title: { contains: "lph" } } },
  { where: { title: { contains: "LPH", mode: "insensitive" } }, exact: false },
  { where: { title: { contains: "É", mode: "insensitive" } }, exact: false },
  { where: { title: { contains: "" } } },
  { where: { title: { contains: "\n" } } },
  { where: { title: { startsWith: "a" } } },
  { where: { title: { startsWith: "A", mode: "insensitive" } }, exact: false },
  { where: { title: { startsWith: "100\\%" } } },
  { where: { title: { startsWith: "_" } } },
  { where: { title: { endsWith: "c" } } },
  { where: { title: { endsWith: "C", mode: "insensitive" } }, exact: false },
  { where: { title: { endsWith: "smile" } } },
  { where: { title: { lt: "b" } }, exact: false },
  { where: { title: { gte: "a", lt: "b" } }, exact: false },
  // integers
  { where: { position: 0 } },
  { where: { position: { lt: 1 } } },
  { where: { position: { lte: 1 } } },
  { where: { position: { gt: 1 } } },
  { where: { position: { gte: 5, lt: 10 } } },
  { where: { position: { in: [-1, 10] } } },
  { where: { position: { notIn: [0, 1] } } },
  { where: { position: { not: 5 } } },
  { where: { position: { not: { gte: 5 } } } },
  { where: { NOT: { position: { not: { gte: 5 } } } } },
  // booleans
  { where: { done: true } },
  { where: { done: { not: true } } },
  { where: { done: { equals: false } } },
  // NULL
  { where: { assigneeId: null } },
  { where: { assigneeId: { not: null } } },
  { where: { assigneeId: "alice" } },
  { where: { assigneeId: { not: "alice" } } },
  { where: { assigneeId: { in: ["alice"] } } },
  { where: { assigneeId: { in: [] } } },
  { where: { assigneeId: { notIn: ["alice"] } } },
  { where: { assigneeId: { notIn: [] } } },
  { where: { NOT: { assigneeId: { notIn: [] } } } },
  { where: { assigneeId: { contains: "li" } } },
  { where: { assigneeId: { not: { in: ["alice"] } } }, exact: false },
  { where: { NOT: { assigneeId: "alice" } } },
  { where: { NOT: { NOT: { assigneeId: "alice" } } } },
  { where: { NOT: { assigneeId: { not: "alice" } } } },
  // DateTime
  { where: { createdAt: at(3) } },
  { where: { createdAt: { gt: at(3) } } },
  { where: { createdAt: { gte: at(3) } } },
  { where: { createdAt: { lt: at(3) } } },
  { where: { createdAt: { lte: at(3), gt: at(0) } } },
  { where: { createdAt: { in: [at(1), at(5)] } } },
  { where: { createdAt: { not: at(2) } } },
  { where: { createdAt: { gt: new Date(at(3).getTime() - 1) } } },
  { where: { createdAt: { gte: "2024-05-01T10:00:03.003Z" } } },
  // logic
  { where: { AND: [{ done: false }, { position: { gt: 0 } }] } },
  { where: { AND: [] } },
  { where: { OR: [] } },
  { where: { NOT: [] } },
  { where: { OR: [{ assigneeId: null }, { done: true }] } },
  { where: { NOT: [{ title: "alpha" }, { done: true }] } },
  { where: { NOT: { OR: [{ assigneeId: "bob" }, { position: { lt: 1 } }] } } },
  { where: { OR: [{ AND: [{ done: true }, { title: { startsWith: "a" } }] }, { NOT: { assigneeId: { in: ["alice", "bob"] } } }] } },
  { where: { projectId: "p1", title: { not: { endsWith: "a" } }, position: { gte: 0 } } },
];

describe.each(engines)("matchesWhere agrees with %s", (engine) => {
  let store: AppStore;
  let close: () => Promise<void>;
  let rows: CapturedRow[] = [];

  beforeAll(async () => {
    const made = await createTestStore(engine);
    store = made.store;
    close = made.close;
    const feed = await createChangeFeed({ sql: store.sql, pollIntervalMs: 0, trimIntervalMs: 0 });
    await store.db.user.createMany({ data: [
      { id: "alice", email: "alice@x", name: "Alice" },
      { id: "bob", email: "bob@x", name: "Bob" },
    ] });
    await store.db.project.create({ data: { id: "p1", name: "One", ownerId: "alice" } });
    const rec = await recordFeed(feed);
    await store.db.task.createMany({
      data: TITLES.map((title, i) => ({
        id: `t${String(i).padStart(2, "0")}`,
        projectId: "p1",
        title,
        done: i % 3 === 0,
        position: POSITIONS[i % POSITIONS.length]!,
        assigneeId: ASSIGNEES[i % ASSIGNEES.length]!,
        createdAt: at(i),
      })),
    });
    await rec.subscription.caughtUp();
    rows = rec.changes().filter((c) => c.table === "Task" && c.op === "INSERT").map((c) => c.new!);
    rec.subscription.close();
    await feed.close();
  });
  afterAll(async () => {
    await close?.();
  });

  it("captured every row through the change feed", () => {
    expect(rows).toHaveLength(TITLES.length);
  });

  it.each(CASES.map((c) => [JSON.stringify(c.where), c] as const))("%s", async (_name, { where, exact = true }) => {
    const ids = async (w: unknown) => new Set((await store.db.task.findMany({ where: w as never, select: { id: true } })).map((t) => t.id));
    // SQL is three-valued too: rows in neither `where` nor `NOT where` evaluate to NULL there —
    // excluded, and still excluded under any NOT around it, so any verdict is sound for them.
    const returned = await ids(where);
    const negated = await ids({ NOT: where });
    const wrong: string[] = [];
    const undecided: string[] = [];
    for (const row of rows) {
      const verdict: Match = matchesWhere(where, row, Task);
      const sql = returned.has(row.id as string) ? "true" : negated.has(row.id as string) ? "false" : "null";
      if ((sql === "true" && verdict === "no-match") || (sql === "false" && verdict === "match")) {
        wrong.push(`${JSON.stringify(row.title)}: SQL says ${sql}, the predicate ${verdict}`);
      }
      if (verdict === "unknown") undecided.push(JSON.stringify(row.title));
    }
    expect(wrong).toEqual([]);
    if (exact) expect(undecided).toEqual([]);
  });
});
