import type { ModelMeta, SchemaMeta } from "../../schema/index.ts";
import type { SoleCall } from "../readSet.ts";
import { convertibleModel, returnedFields, type PrismaRow } from "./rowImage.ts";
import type { ColumnFacts } from "./columnFacts.ts";
import { sortKeysOf, type SortKey } from "./sortOrder.ts";

/** A live result the reactor can keep up to date from the change feed alone (see apply.ts). */
export interface MaintainedList {
  readonly model: ModelMeta;
  readonly where: unknown;
  readonly order: readonly SortKey[];
  /** The window's size (findMany `take`), or undefined: every matching row. */
  readonly take: number | undefined;
}

/** findMany arguments the maintenance understands; anything else (select, include, omit, skip, cursor, distinct…) re-runs. */
const MAINTAINED_ARGS = new Set(["where", "orderBy", "take"]);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * How to maintain an execution's result, or null when it must re-run on every relevant change.
 * Maintained only when the execution ran exactly one model operation, a single-model findMany
 * (where / orderBy / take) whose order is fully determined, and the procedure returned that very
 * result unchanged: the same object (anything computed from it is a new one) serializing as it
 * did when it arrived (`published` is the group's stable JSON of `data`; an in-place sort or edit
 * shows there), each row holding exactly the model's scalar fields (a client-level `omit`).
 */
export function maintainedList(
  call: SoleCall | null | undefined,
  data: unknown,
  published: string | null,
  schema: SchemaMeta,
  columns: ColumnFacts,
): MaintainedList | null {
  if (!call || call.result !== data || call.snapshot !== published) return null;
  const list = maintainableCall(call, schema, columns);
  if (!list || !Array.isArray(data)) return null;
  const names = returnedFields(list.model).map((f) => f.name).sort().join("\u0000");
  if (!data.every((row: unknown) => isObject(row) && Object.keys(row as PrismaRow).sort().join("\u0000") === names)) return null;
  return list;
}

/**
 * The part of maintainedList that needs only the call, not its result: a single-model findMany
 * (where / orderBy / take) on convertible columns whose order is fully determined. The read
 * tracker asks it before snapshotting a result (a call that fails it would re-run anyway).
 */
export function maintainableCall(
  call: { model: string; operation: string; args: unknown },
  schema: SchemaMeta,
  columns: ColumnFacts,
): MaintainedList | null {
  if (call.operation !== "findMany") return null;
  const model = schema.models[call.model];
  if (!model || !convertibleModel(model, columns.exact)) return null;
  const args = isObject(call.args) ? call.args : call.args === undefined ? {} : null;
  if (!args || Object.entries(args).some(([k, v]) => v !== undefined && !MAINTAINED_ARGS.has(k))) return null;
  const take = args.take;
  if (take !== undefined && !(typeof take === "number" && Number.isSafeInteger(take) && take > 0)) return null;
  const order = sortKeysOf(args.orderBy, model, columns.orderable);
  if (!order) return null;
  return { model, where: args.where, order, take };
}
