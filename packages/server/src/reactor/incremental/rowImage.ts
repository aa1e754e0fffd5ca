import type { CapturedRow } from "../../feed/index.ts";
import type { FieldMeta, ModelMeta } from "../../schema/index.ts";
import { TIMESTAMP } from "../predicate.ts";

/** A row as Prisma returns it from a findMany without select/include: every scalar field. */
export type PrismaRow = Record<string, unknown>;

/**
 * Scalar types whose change-log JSON converts to exactly the value Prisma returns. Decimal, BigInt
 * (digits lost past 2^53), Json, Bytes (left out of the log) and lists are not among them.
 */
const CONVERTIBLE = new Set(["String", "Int", "Float", "Boolean", "DateTime"]);

/** The fields Prisma returns for a row of `model` (relations and Unsupported columns are not returned). */
export function returnedFields(model: ModelMeta): FieldMeta[] {
  return Object.values(model.fields).filter((f) => f.kind === "scalar" || f.kind === "enum");
}

/**
 * True when every returned field of `model` converts exactly: its Prisma type (see CONVERTIBLE;
 * enums are labels) and its column's database type (`exact`, see columnFacts.ts).
 */
export function convertibleModel(model: ModelMeta, exact: ReadonlySet<string>): boolean {
  return returnedFields(model).every((f) =>
    !f.isList && (f.kind === "enum" || CONVERTIBLE.has(f.type)) && exact.has(`${model.table}.${f.column ?? f.name}`));
}

/**
 * `to_jsonb` of a timestamp(tz) as the Date Prisma returns. A timestamp without zone is UTC wall
 * time in Prisma's convention. Digits below the millisecond, dates, times, BC or infinite values:
 * undefined (Prisma's rounding of those is not something to imitate).
 */
function toDate(value: unknown): Date | undefined {
  if (typeof value !== "string") return undefined;
  const m = TIMESTAMP.exec(value);
  if (!m) return undefined;
  const fraction = (m[2] ?? "").padEnd(6, "0");
  if (fraction.slice(3) !== "000") return undefined;
  const zone = m[3] === undefined ? "Z" : /^[+-]\d\d$/.test(m[3]) ? `${m[3]}:00` : m[3];
  const ms = Date.parse(`${m[1]}.${fraction.slice(0, 3)}${zone}`);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** One column's JSON as Prisma's value; undefined when that cannot be done exactly. */
function toPrismaValue(value: unknown, field: FieldMeta): unknown {
  if (value === null) return field.isRequired ? undefined : null;
  if (field.kind === "enum") return typeof value === "string" ? value : undefined;
  switch (field.type) {
    case "String":
      return typeof value === "string" ? value : undefined;
    case "Int":
      return typeof value === "number" && Number.isSafeInteger(value) ? value : undefined;
    case "Float":
      // NaN and ±Infinity arrive as strings: not converted.
      return typeof value === "number" && Number.isFinite(value) ? value : undefined;
    case "Boolean":
      return typeof value === "boolean" ? value : undefined;
    case "DateTime":
      return toDate(value);
    default:
      return undefined;
  }
}

/** The captured row as Prisma would return it, or null when any field cannot be converted exactly. */
export function toPrismaRow(image: CapturedRow, model: ModelMeta): PrismaRow | null {
  const row: PrismaRow = {};
  for (const field of returnedFields(model)) {
    const column = field.column ?? field.name;
    if (!(column in image)) return null;
    const value = toPrismaValue(image[column], field);
    if (value === undefined) return null;
    row[field.name] = value;
  }
  return row;
}
