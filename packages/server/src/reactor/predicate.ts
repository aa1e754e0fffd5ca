import type { Change, CapturedRow } from "../feed/index.ts";
import { findModel, type FieldMeta, type ModelMeta, type SchemaMeta } from "../schema/index.ts";
import type { ReadSet } from "./readSet.ts";

/** Three-valued: "unknown" means the matcher cannot decide, and callers must invalidate. */
export type Match = "match" | "no-match" | "unknown";

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date) && !isDecimal(value);

function isDecimal(value: unknown): value is { toFixed(): string } {
  return typeof value === "object" && value !== null && typeof (value as { toFixed?: unknown }).toFixed === "function" &&
    typeof (value as { isNaN?: unknown }).isNaN === "function";
}

function and(results: Iterable<Match>): Match {
  let unknown = false;
  for (const r of results) {
    if (r === "no-match") return "no-match";
    if (r === "unknown") unknown = true;
  }
  return unknown ? "unknown" : "match";
}

function or(results: Iterable<Match>): Match {
  let unknown = false;
  for (const r of results) {
    if (r === "match") return "match";
    if (r === "unknown") unknown = true;
  }
  return unknown ? "unknown" : "no-match";
}

function not(result: Match): Match {
  return result === "match" ? "no-match" : result === "no-match" ? "match" : "unknown";
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

/**
 * Could a changed row (captured by the trigger, keyed by column name) satisfy a Prisma `where`?
 * Relation filters, JSON/list/full-text filters, unknown operators and columns the change log
 * left out are "unknown".
 */
export function matchesWhere(where: unknown, row: CapturedRow | null, model: ModelMeta, omitted: readonly string[] = []): Match {
  if (row === null) return "no-match";
  if (where === undefined || where === null) return "match";
  if (!isPlainObject(where)) return "unknown";
  const results: Match[] = [];
  for (const [key, condition] of Object.entries(where)) {
    if (condition === undefined) continue; // Prisma ignores undefined filters
    if (key === "AND") {
      results.push(and(list(condition).map((w) => matchesWhere(w, row, model, omitted))));
    } else if (key === "OR") {
      if (!Array.isArray(condition)) return "unknown";
      results.push(or(condition.map((w) => matchesWhere(w, row, model, omitted))));
    } else if (key === "NOT") {
      results.push(and(list(condition).map((w) => not(matchesWhere(w, row, model, omitted)))));
    } else {
      const field = model.fields[key];
      if (!field || field.kind === "object" || field.kind === "unsupported") {
        results.push("unknown"); // relation filter, compound unique key, …
        continue;
      }
      const column = field.column ?? key;
      if (omitted.includes(column) || !(column in row)) {
        results.push("unknown");
        continue;
      }
      results.push(matchesField(condition, row[column], field));
    }
    if (results[results.length - 1] === "no-match") return "no-match";
  }
  return and(results);
}

const SUPPORTED_OPERATORS = new Set(["equals", "in", "notIn", "lt", "lte", "gt", "gte", "contains", "startsWith", "endsWith", "not", "mode"]);

function matchesField(condition: unknown, value: unknown, field: FieldMeta): Match {
  if (field.isList || field.type === "Json" || field.type === "Bytes") return "unknown";
  if (!isPlainObject(condition)) return equals(value, condition, field);
  const insensitive = condition.mode === "insensitive";
  const results: Match[] = [];
  for (const [op, operand] of Object.entries(condition)) {
    if (operand === undefined || op === "mode") continue;
    if (!SUPPORTED_OPERATORS.has(op)) return "unknown";
    switch (op) {
      case "equals":
        results.push(equals(value, operand, field, insensitive));
        break;
      case "in":
        if (!Array.isArray(operand)) return "unknown";
        results.push(or(operand.map((o) => equals(value, o, field, insensitive))));
        break;
      case "notIn":
        if (!Array.isArray(operand)) return "unknown";
        results.push(value === null ? "no-match" : not(or(operand.map((o) => equals(value, o, field, insensitive)))));
        break;
      case "lt":
      case "lte":
      case "gt":
      case "gte":
        results.push(compareOp(op, value, operand, field));
        break;
      case "contains":
      case "startsWith":
      case "endsWith":
        results.push(stringOp(op, value, operand, insensitive));
        break;
      case "not":
        // `not: value` or `not: { filter }`; SQL semantics: NULL never satisfies a negation of a value.
        if (isPlainObject(operand)) results.push(value === null ? "unknown" : not(matchesField(operand, value, field)));
        else if (operand === null) results.push(value === null ? "no-match" : "match");
        else results.push(value === null ? "no-match" : not(equals(value, operand, field, insensitive)));
        break;
    }
  }
  return and(results);
}

/** Normalizes a value for comparison; undefined when it cannot be compared with confidence. */
function normalize(value: unknown, field: FieldMeta): string | number | boolean | bigint | null | undefined {
  if (value === null) return null;
  switch (field.type) {
    case "DateTime": {
      const ms = value instanceof Date ? value.getTime() : typeof value === "string" ? parseTimestamp(value) : NaN;
      return Number.isNaN(ms) ? undefined : ms;
    }
    case "BigInt":
      try {
        return BigInt(typeof value === "number" || typeof value === "bigint" || typeof value === "string" ? value : NaN);
      } catch {
        return undefined;
      }
    case "Decimal":
    case "Float":
    case "Int": {
      const n = isDecimal(value) ? Number(value.toFixed()) : typeof value === "string" ? Number(value) : value;
      return typeof n === "number" && !Number.isNaN(n) ? n : undefined;
    }
    case "Boolean":
      return typeof value === "boolean" ? value : undefined;
    default:
      return typeof value === "string" ? value : undefined;
  }
}

/** Postgres `timestamp` (no zone) columns hold UTC wall time in Prisma's convention. */
function parseTimestamp(text: string): number {
  const hasZone = /(Z|[+-]\d\d(:?\d\d)?)$/.test(text);
  return Date.parse(hasZone ? text : `${text}Z`);
}

function equals(value: unknown, operand: unknown, field: FieldMeta, insensitive = false): Match {
  if (operand === null) return value === null ? "match" : "no-match";
  const a = normalize(value, field);
  const b = normalize(operand, field);
  if (a === undefined || b === undefined) return "unknown";
  if (a === null) return "no-match";
  if (insensitive && typeof a === "string" && typeof b === "string") {
    return a.toLowerCase() === b.toLowerCase() ? "match" : "no-match";
  }
  return a === b ? "match" : "no-match";
}

function compareOp(op: "lt" | "lte" | "gt" | "gte", value: unknown, operand: unknown, field: FieldMeta): Match {
  const a = normalize(value, field);
  const b = normalize(operand, field);
  if (a === undefined || b === undefined || b === null) return "unknown";
  if (a === null) return "no-match"; // NULL compares to nothing
  if (typeof a === "string" || typeof b === "string") return "unknown"; // collation-dependent order
  const x = a as number | bigint | boolean;
  const y = b as number | bigint | boolean;
  const ok = op === "lt" ? x < y : op === "lte" ? x <= y : op === "gt" ? x > y : x >= y;
  return ok ? "match" : "no-match";
}

function stringOp(op: "contains" | "startsWith" | "endsWith", value: unknown, operand: unknown, insensitive: boolean): Match {
  if (typeof operand !== "string") return "unknown";
  if (value === null) return "no-match";
  if (typeof value !== "string") return "unknown";
  const haystack = insensitive ? value.toLowerCase() : value;
  const needle = insensitive ? operand.toLowerCase() : operand;
  const ok = op === "contains" ? haystack.includes(needle) : op === "startsWith" ? haystack.startsWith(needle) : haystack.endsWith(needle);
  return ok ? "match" : "no-match";
}

/**
 * Could this change alter the result of a query with this ReadSet? True unless every read of the
 * changed table has a `where` that neither the old nor the new row can satisfy.
 */
export function affects(readSet: ReadSet, change: Pick<Change, "table" | "op" | "old" | "new" | "omitted">, schema: SchemaMeta): boolean {
  if (readSet.allTables) return true;
  const model = findModel(schema, change.table);
  if (!model) return readSet.reads.some((r) => r.model === change.table);
  const reads = readSet.reads.filter((r) => r.model === model.name);
  if (reads.length === 0) return false;
  if (change.op === "TRUNCATE") return true;
  const omitted = change.omitted ?? [];
  return reads.some((read) => {
    if (read.where === undefined) return true;
    if (change.old && matchesWhere(read.where, change.old, model, omitted) !== "no-match") return true;
    if (change.new && matchesWhere(read.where, change.new, model, omitted) !== "no-match") return true;
    return false;
  });
}
