import type { FieldMeta, ModelMeta } from "../../schema/index.ts";
import type { PrismaRow } from "./rowImage.ts";

/** One `orderBy` term, with Postgres's NULLS placement made explicit. */
export interface SortKey {
  readonly field: FieldMeta;
  readonly descending: boolean;
  readonly nullsFirst: boolean;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * A findMany `orderBy` as sort keys, or null unless it is a list of single-column terms on
 * orderable columns (ColumnFacts.orderable) that ends with the model's (single-column) primary key: only then is the order
 * of every pair of rows determined — without that unique last key, Postgres's order of ties is not.
 */
export function sortKeysOf(orderBy: unknown, model: ModelMeta, orderable: ReadonlySet<string>): SortKey[] | null {
  const terms = Array.isArray(orderBy) ? orderBy : orderBy === undefined ? [] : [orderBy];
  const keys: SortKey[] = [];
  for (const term of terms) {
    if (!isObject(term)) return null;
    const entries = Object.entries(term).filter(([, v]) => v !== undefined);
    if (entries.length !== 1) return null;
    const [name, spec] = entries[0]!;
    const field = model.fields[name];
    if (!field || field.kind !== "scalar" || field.isList) return null;
    if (!orderable.has(`${model.table}.${field.column ?? field.name}`)) return null;
    const sort = isObject(spec) ? spec.sort : spec;
    const nulls = isObject(spec) ? spec.nulls : undefined;
    if (sort !== "asc" && sort !== "desc") return null;
    if (nulls !== undefined && nulls !== "first" && nulls !== "last") return null;
    if (isObject(spec) && Object.keys(spec).some((k) => k !== "sort" && k !== "nulls")) return null;
    const descending = sort === "desc";
    // Postgres: ASC puts NULLs last, DESC first, unless told.
    keys.push({ field, descending, nullsFirst: nulls === undefined ? descending : nulls === "first" });
  }
  const last = keys[keys.length - 1];
  if (!last || model.primaryKey.length !== 1 || last.field.name !== model.primaryKey[0]) return null;
  return keys;
}

type Order = -1 | 0 | 1;

/** UTF-8 byte order (what a "C" collation compares), which is code point order, not UTF-16 order. */
function compareCodePoints(a: string, b: string): Order {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a.charCodeAt(i) === b.charCodeAt(i)) continue;
    return a.codePointAt(i)! < b.codePointAt(i)! ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function compareValues(a: unknown, b: unknown): Order | undefined {
  if (typeof a === "number" && typeof b === "number") {
    if (Number.isNaN(a) || Number.isNaN(b)) return undefined;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === "boolean" && typeof b === "boolean") return a === b ? 0 : a ? 1 : -1;
  if (typeof a === "string" && typeof b === "string") return compareCodePoints(a, b);
  if (a instanceof Date && b instanceof Date) {
    const x = a.getTime();
    const y = b.getTime();
    if (Number.isNaN(x) || Number.isNaN(y)) return undefined;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return undefined;
}

/** Where Postgres puts row `a` relative to row `b` under `keys`; undefined when not decidable. */
export function compareRows(a: PrismaRow, b: PrismaRow, keys: readonly SortKey[]): Order | undefined {
  for (const key of keys) {
    const x = a[key.field.name];
    const y = b[key.field.name];
    if (x === null || y === null) {
      if (x === y) continue;
      return (x === null) === key.nullsFirst ? -1 : 1;
    }
    const order = compareValues(x, y);
    if (order === undefined) return undefined;
    if (order !== 0) return key.descending ? (-order as Order) : order;
  }
  return 0;
}
