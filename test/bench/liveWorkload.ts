/**
 * The live bench's task-tracker workload: the data it seeds, the queries clients keep live (one
 * catalog, run identically by the Tether app and the hand-written baseline, see liveNode.ts) and
 * the writes (raw SQL and tRPC mutations) with their timestamps.
 *
 * Timestamps: the writer stamps the write's start time (`performance.timeOrigin + now()`, µs,
 * the machine clock every process shares) into the row — in the title (`… @<µs>`) and, as ms
 * since the run's epoch, in `position` (so `_max.position` of an aggregate carries it too).
 * Clients compute receive − stamp. For raw SQL the stamp is taken right before the one-statement
 * autocommit write (so it is commit → visible plus the INSERT's own ~1 ms); for mutations it
 * includes the HTTP call and the mutation's transaction (write → visible).
 * "status" is the schema's `done` flag (the demo schema has no status column).
 */
import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { AppStore } from "../support/databases.ts";
export { random as mulberry32 } from "../support/random.ts";

export const SEED = { users: 50, projects: 20, tasksPerProject: 10 } as const;
export const PREFIXES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"] as const;

export const userId = (i: number) => `u${i}`;
export const projectId = (i: number) => `p${i}`;
export const seededTaskId = (i: number) => `s${i}`;

/** Seed rows as one SQL script (fast on both engines, no Prisma). */
export function seedSql(): string {
  const users = Array.from({ length: SEED.users }, (_, i) => `('${userId(i)}','${userId(i)}@bench','User ${i}')`);
  const projects = Array.from({ length: SEED.projects }, (_, i) => `('${projectId(i)}','Project ${i}','${userId(i % SEED.users)}')`);
  const tasks: string[] = [];
  for (let p = 0; p < SEED.projects; p++) {
    for (let j = 0; j < SEED.tasksPerProject; j++) {
      const i = p * SEED.tasksPerProject + j;
      const word = PREFIXES[i % PREFIXES.length]!;
      tasks.push(`('${seededTaskId(i)}','${projectId(p)}','${word} seed ${i}',${i % 3 === 0},0,'${userId(i % SEED.users)}',now())`);
    }
  }
  return [
    `INSERT INTO "User"(id,email,name) VALUES ${users.join(",")};`,
    `INSERT INTO "Project"(id,name,"ownerId") VALUES ${projects.join(",")};`,
    `INSERT INTO "Task"(id,"projectId",title,done,position,"assigneeId","updatedAt") VALUES ${tasks.join(",")};`,
  ].join("\n");
}

// --- queries ------------------------------------------------------------------------------------

export const queryInput = z.object({
  projectId: z.string().optional(),
  assigneeId: z.string().optional(),
  userId: z.string().optional(),
  done: z.boolean().optional(),
  prefix: z.string().max(20).optional(),
});
export type QueryInput = z.infer<typeof queryInput>;
type Db = AppStore["db"];

const byPosition = [{ position: "desc" as const }, { id: "asc" as const }];

/** Every live query of the bench, by name (the procedure is `q.<name>` in both apps). */
export const QUERIES = {
  /** A project's whole task list (the reactor bench's query). */
  byProject: (db: Db, i: QueryInput) => db.task.findMany({ where: { projectId: i.projectId }, orderBy: [{ position: "asc" }, { id: "asc" }] }),
  byStatus: (db: Db, i: QueryInput) => db.task.findMany({ where: { projectId: i.projectId, done: i.done }, orderBy: byPosition, take: 20 }),
  byAssignee: (db: Db, i: QueryInput) => db.task.findMany({ where: { assigneeId: i.assigneeId }, orderBy: byPosition, take: 20 }),
  byPrefix: (db: Db, i: QueryInput) => db.task.findMany({ where: { title: { startsWith: i.prefix } }, orderBy: byPosition, take: 10 }),
  recent: (db: Db, i: QueryInput) => db.task.findMany({ where: { projectId: i.projectId }, orderBy: byPosition, take: 10 }),
  count: (db: Db, i: QueryInput) => db.task.count({ where: { projectId: i.projectId, done: i.done } }),
  stats: (db: Db, i: QueryInput) =>
    db.task.aggregate({ where: { projectId: i.projectId }, _count: { _all: true }, _max: { position: true }, _min: { position: true } }),
  projectTree: (db: Db, i: QueryInput) =>
    db.project.findUnique({
      where: { id: i.projectId },
      include: { owner: true, tasks: { orderBy: byPosition, take: 10, include: { assignee: true } } },
    }),
  userTasks: (db: Db, i: QueryInput) =>
    db.user.findUnique({ where: { id: i.userId }, include: { tasks: { orderBy: byPosition, take: 5, include: { project: true } } } }),
} satisfies Record<string, (db: Db, input: QueryInput) => Promise<unknown>>;

export type QueryName = keyof typeof QUERIES;
export interface LiveSpec {
  name: QueryName;
  input: QueryInput;
}

/** Every distinct query of the catalog over the seeded ids (268 of them). */
export function allQueries(): LiveSpec[] {
  const specs: LiveSpec[] = [];
  for (let p = 0; p < SEED.projects; p++) {
    const projectIdP = projectId(p);
    specs.push({ name: "byProject", input: { projectId: projectIdP } });
    specs.push({ name: "recent", input: { projectId: projectIdP } });
    specs.push({ name: "stats", input: { projectId: projectIdP } });
    specs.push({ name: "projectTree", input: { projectId: projectIdP } });
    for (const done of [false, true]) {
      specs.push({ name: "byStatus", input: { projectId: projectIdP, done } });
      specs.push({ name: "count", input: { projectId: projectIdP, done } });
    }
  }
  for (let u = 0; u < SEED.users; u++) {
    specs.push({ name: "byAssignee", input: { assigneeId: userId(u) } });
    specs.push({ name: "userTasks", input: { userId: userId(u) } });
  }
  for (const prefix of PREFIXES) specs.push({ name: "byPrefix", input: { prefix: prefix.slice(0, 2) } });
  return specs;
}

/** `distinct` queries spread over the catalog (every shape present), deterministic. */
export function pickQueries(distinct: number): LiveSpec[] {
  const all = allQueries();
  // Interleave shapes so any prefix of the list has each of them.
  const byShape = new Map<QueryName, LiveSpec[]>();
  for (const spec of all) byShape.set(spec.name, [...(byShape.get(spec.name) ?? []), spec]);
  const picked: LiveSpec[] = [];
  for (let round = 0; picked.length < Math.min(distinct, all.length); round++) {
    for (const list of byShape.values()) if (list[round] && picked.length < distinct) picked.push(list[round]!);
  }
  return picked;
}

// --- writes -------------------------------------------------------------------------------------

/** Wall-clock time in µs on the clock every process of the machine shares. */
export const nowMicros = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);
const STAMP = /@(\d+)$/;

export function stampOf(title: unknown): number | null {
  if (typeof title !== "string") return null;
  const match = STAMP.exec(title);
  return match ? Number(match[1]) : null;
}

export type WriteVia = "sql" | "mutation";
export interface TaskWrite {
  kind: "insert" | "update";
  via: WriteVia;
  id: string;
  projectId: string;
  title: string;
  done: boolean;
  position: number;
  assigneeId: string;
}

/**
 * The k-th write of a workload. `mix`: "one-project" inserts into p0 by mutation (workload a);
 * "mixed" cycles raw-SQL insert, mutation insert, raw-SQL update, mutation update over random
 * projects, users, prefixes and seeded tasks (workloads b, c). The stamp is set by `stamp()`.
 */
export function makeWrite(k: number, mix: "one-project" | "mixed", random: () => number, runTag: string): Omit<TaskWrite, "title" | "position"> & { word: string } {
  const pick = (n: number) => Math.floor(random() * n);
  if (mix === "one-project") {
    return { kind: "insert", via: "mutation", id: `${runTag}w${k}`, projectId: projectId(0), done: false, assigneeId: userId(pick(SEED.users)), word: "alpha" };
  }
  const cycle = k % 4;
  const word = PREFIXES[pick(PREFIXES.length)]!;
  const common = { projectId: projectId(pick(SEED.projects)), done: random() < 0.3, assigneeId: userId(pick(SEED.users)), word };
  if (cycle === 0 || cycle === 1) return { kind: "insert", via: cycle === 0 ? "sql" : "mutation", id: `${runTag}w${k}`, ...common };
  return { kind: "update", via: cycle === 2 ? "sql" : "mutation", id: seededTaskId(pick(SEED.projects * SEED.tasksPerProject)), ...common };
}

/** Stamps a write now: title ends in `@<µs>`, position is ms since `epochMs`. */
export function stamp(write: Omit<TaskWrite, "title" | "position"> & { word: string }, k: number, epochMs: number): TaskWrite {
  const micros = nowMicros();
  const { word, ...rest } = write;
  return { ...rest, title: `${word} ${k} @${micros}`, position: Math.round(micros / 1000 - epochMs) };
}

/** The raw-SQL form of a write; `notify` adds the baseline's hand-written invalidation. */
export function writeSql(write: TaskWrite, notify: boolean): { sql: string; params: unknown[] } {
  const statement =
    write.kind === "insert"
      ? `INSERT INTO "Task"(id,"projectId",title,done,position,"assigneeId","updatedAt") VALUES ($1,$2,$3,$4,$5,$6,now())`
      : `UPDATE "Task" SET "projectId"=$2, title=$3, done=$4, position=$5, "assigneeId"=$6, "updatedAt"=now() WHERE id=$1`;
  const params = [write.id, write.projectId, write.title, write.done, write.position, write.assigneeId];
  // One statement, autocommit: the NOTIFY is delivered at its commit.
  return notify ? { sql: `WITH w AS (${statement} RETURNING 1) SELECT pg_notify('${INVALIDATE_CHANNEL}', '') FROM w`, params } : { sql: statement, params };
}

/** The baseline's invalidation channel (mutations and raw writers NOTIFY it; every node LISTENs). */
export const INVALIDATE_CHANNEL = "bench_invalidate";

export const taskWriteInput = z.object({
  id: z.string().max(100),
  projectId: z.string(),
  title: z.string().min(1).max(200),
  done: z.boolean(),
  position: z.number().int(),
  assigneeId: z.string(),
});
