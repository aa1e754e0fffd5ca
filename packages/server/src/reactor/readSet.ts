import type { SchemaMeta } from "../schema/index.ts";
import { stableStringify } from "./stableJson.ts";

/** One read a query performed: which model, how, and with which Prisma `where` (none = all rows). */
export interface Read {
  readonly model: string;
  readonly operation: string;
  readonly where?: unknown;
}

/** Everything one execution of a query read: what the reactor invalidates it by. */
export interface ReadSet {
  readonly reads: readonly Read[];
  /** Raw SQL was run: the query may depend on any table. */
  readonly allTables: boolean;
}

/**
 * The one model operation an execution ran, with what it returned (see ReadSetRecorder.soleCall):
 * what the reactor needs to maintain a result without running it again (reactor/incremental).
 */
export interface SoleCall {
  readonly model: string;
  readonly operation: string;
  readonly args: unknown;
  /** The very object the operation returned (identity matters: see incremental/maintainable.ts). */
  readonly result: unknown;
  /** `stableStringify(result)` when it arrived: proves the procedure did not change it in place. */
  readonly snapshot: string;
}

export interface ReadSetRecorder {
  record(read: Read): void;
  /** A `$queryRaw` ran: Tether cannot see which tables it read. */
  recordRaw(): void;
  /** A model operation starts; the returned function receives its result when it has one. */
  recordCall(call: { model: string; operation: string; args: unknown }): (result: unknown) => void;
  readSet(): ReadSet;
  /** The execution's only model operation and its result, when it ran exactly one (a findMany) and nothing raw. */
  soleCall(): SoleCall | null;
}

/**
 * `snapshots`: whether a sole findMany's result is worth a snapshot (the reactor could maintain
 * it, Reactor.couldMaintain); without it none is taken — snapshots cost a full serialization.
 */
export function createReadSetRecorder(snapshots?: (call: { model: string; operation: string; args: unknown }) => boolean): ReadSetRecorder {
  const reads: Read[] = [];
  const seen = new Set<string>();
  let allTables = false;
  let calls = 0;
  let sole: SoleCall | null = null;
  return {
    record(read) {
      // Identical reads (a loop of findUnique on the same id) are kept once.
      const key = `${read.model}\u0000${JSON.stringify(read.where ?? null, jsonKey)}`;
      if (seen.has(key)) return;
      seen.add(key);
      reads.push(read);
    },
    recordRaw() {
      allTables = true;
    },
    recordCall(call) {
      const nth = ++calls;
      return (result) => {
        // Snapshotted now, before the procedure's code resumes and could edit the rows in place;
        // only a findMany's (the one operation incremental updates maintain): a re-run pays it.
        if (nth === 1 && calls === 1 && call.operation === "findMany" && snapshots?.(call)) sole = { ...call, result, snapshot: stableStringify(result) };
      };
    },
    readSet: () => ({ reads: [...reads], allTables }),
    soleCall: () => (calls === 1 && !allTables ? sole : null),
  };
}

/** JSON.stringify throws on bigint (a `BigInt` column's filter): key it by its digits. */
const jsonKey = (_key: string, value: unknown): unknown =>
  typeof value === "bigint" ? { $bigint: value.toString() } : value;

const READ_OPERATIONS = new Set([
  "findMany",
  "findFirst",
  "findFirstOrThrow",
  "findUnique",
  "findUniqueOrThrow",
  "count",
  "aggregate",
  "groupBy",
]);

const RAW_READ_OPERATIONS = new Set(["$queryRaw", "$queryRawUnsafe", "$queryRawTyped"]);

type Args = Record<string, unknown>;

const isObject = (value: unknown): value is Args =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The reads of one Prisma operation, nested relation reads included: `include`/`select` of a
 * relation reads the related model (with that relation's `where`, join condition ignored —
 * conservative), and a relation filter inside a `where` (also one of a `_count`) or an `orderBy`
 * through a relation makes the related model a dependency (recorded with no `where`: any of its
 * rows may matter). A `cursor` reads its row too: the page starts at that row's sort values, and
 * Prisma looks them up whether or not the row passes the `where`.
 */
export function readsOfOperation(schema: SchemaMeta, model: string, operation: string, args: unknown): Read[] {
  if (!READ_OPERATIONS.has(operation)) return [];
  const out: Read[] = [];
  collect(schema, model, operation, isObject(args) ? args : {}, out);
  return out;
}

function collect(schema: SchemaMeta, model: string, operation: string, args: Args, out: Read[]): void {
  const where = args.where;
  out.push(where === undefined ? { model, operation } : { model, operation, where });
  collectRelationFilters(schema, model, where, out);
  if (isObject(args.cursor)) out.push({ model, operation: "cursor", where: args.cursor });
  collectOrderBy(schema, model, args.orderBy, out);
  for (const key of ["include", "select"] as const) {
    const projection = args[key];
    if (isObject(projection)) collectProjection(schema, model, projection, out);
  }
}

function collectProjection(schema: SchemaMeta, model: string, projection: Args, out: Read[]): void {
  const meta = schema.models[model];
  for (const [name, value] of Object.entries(projection)) {
    if (!value) continue;
    if (name === "_count") {
      collectCount(schema, model, value, out);
      continue;
    }
    const relation = meta?.fields[name]?.relation;
    if (!relation) continue; // a scalar column of this model
    collect(schema, relation.model, "include", isObject(value) ? value : {}, out);
  }
}

/** `_count: true` counts every relation; `_count: { select: { tasks: { where } } }` some. */
function collectCount(schema: SchemaMeta, model: string, value: unknown, out: Read[]): void {
  const meta = schema.models[model];
  if (!meta) return;
  const selected = isObject(value) && isObject(value.select) ? value.select : null;
  for (const field of Object.values(meta.fields)) {
    if (!field.relation || !field.isList) continue;
    const choice = selected ? selected[field.name] : true;
    if (!choice) continue;
    const where = isObject(choice) ? choice.where : undefined;
    out.push(where === undefined ? { model: field.relation.model, operation: "count" } : { model: field.relation.model, operation: "count", where });
    collectRelationFilters(schema, field.relation.model, where, out);
  }
}

/** `orderBy: { project: { name: "asc" } }` or `{ tasks: { _count: "desc" } }` reads the related rows. */
function collectOrderBy(schema: SchemaMeta, model: string, orderBy: unknown, out: Read[]): void {
  if (Array.isArray(orderBy)) {
    for (const item of orderBy) collectOrderBy(schema, model, item, out);
    return;
  }
  if (!isObject(orderBy)) return;
  const meta = schema.models[model];
  for (const [key, value] of Object.entries(orderBy)) {
    const relation = meta?.fields[key]?.relation;
    if (!relation) continue; // a column, `_count`/`_avg`… of groupBy, `_relevance`
    out.push({ model: relation.model, operation: "orderBy" });
    collectOrderBy(schema, relation.model, value, out);
  }
}

function collectRelationFilters(schema: SchemaMeta, model: string, where: unknown, out: Read[]): void {
  if (Array.isArray(where)) {
    for (const item of where) collectRelationFilters(schema, model, item, out);
    return;
  }
  if (!isObject(where)) return;
  const meta = schema.models[model];
  for (const [key, value] of Object.entries(where)) {
    if (key === "AND" || key === "OR" || key === "NOT") {
      collectRelationFilters(schema, model, value, out);
      continue;
    }
    const relation = meta?.fields[key]?.relation;
    if (!relation) continue;
    out.push({ model: relation.model, operation: "relationFilter" });
    // Filters nested inside (some/every/none/is/isNot or direct) may reach further models.
    if (isObject(value)) {
      for (const inner of Object.values(value)) collectRelationFilters(schema, relation.model, inner, out);
      collectRelationFilters(schema, relation.model, value, out);
    }
  }
}

/** The recorder surface the extension needs (a forwarding recorder works too). */
export type ReadSink = Pick<ReadSetRecorder, "record" | "recordRaw" | "recordCall">;

/**
 * A Prisma client extension that reports every read to `sink`, also inside interactive
 * transactions of the extended client. Writes are not reads and are not reported as reads, but
 * every model operation is counted, with its result (recordCall).
 */
export function trackReads<Client>(client: Client, sink: ReadSink, schema: SchemaMeta): Client {
  const extendable = client as unknown as { $extends(extension: unknown): unknown };
  return extendable.$extends({
    name: "tether-read-tracking",
    query: {
      async $allOperations({ model, operation, args, query }: {
        model?: string;
        operation: string;
        args: unknown;
        query: (args: unknown) => Promise<unknown>;
      }) {
        if (!model) {
          if (RAW_READ_OPERATIONS.has(operation)) sink.recordRaw();
          return query(args);
        }
        for (const read of readsOfOperation(schema, model, operation, args)) sink.record(read);
        const resolved = sink.recordCall({ model, operation, args });
        const result = await query(args);
        resolved(result);
        return result;
      },
    },
  }) as Client;
}
