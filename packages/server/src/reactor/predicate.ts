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
        results.push(or(operand.map((o) => member(value, o, field, insensitive))));
        break;
      case "notIn":
        if (!Array.isArray(operand)) return "unknown";
        // Prisma renders an empty `notIn` as `1=1`: it holds for NULL too.
        if (operand.length === 0) results.push("match");
        else results.push(value === null ? "no-match" : not(or(operand.map((o) => member(value, o, field, insensitive)))));
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
        // The outer `mode` applies inside the nested filter too (`NOT ILIKE`, `LOWER(…) NOT IN`).
        if (isPlainObject(operand)) {
          const inner = insensitive && operand.mode === undefined ? { ...operand, mode: "insensitive" } : operand;
          results.push(value === null ? "unknown" : not(matchesField(inner, value, field)));
        } else if (operand === null) results.push(value === null ? "no-match" : "match");
        else results.push(value === null ? "no-match" : not(equals(value, operand, field, insensitive)));
        break;
    }
  }
  return and(results);
}

type Order = -1 | 0 | 1;
const cmp = (x: number | bigint, y: number | bigint): Order => (x < y ? -1 : x > y ? 1 : 0);

/** A finite or infinite number; undefined for NaN or anything that is not a number. */
function toNumber(value: unknown): number | undefined {
  const n = isDecimal(value) ? Number(value.toFixed()) :
    typeof value === "string" ? (value.trim() === "" ? NaN : Number(value)) :
    typeof value === "number" ? value :
    typeof value === "bigint" ? Number(value) : NaN;
  return Number.isNaN(n) ? undefined : n;
}

/** Exact bigint, or a number when a JSON number was past 2^53 (its low digits may be gone). */
function toBigInt(value: unknown): bigint | number | undefined {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : Number.isInteger(value) ? value : undefined;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  return undefined;
}

/** A timestamp(tz) as `to_jsonb` writes it: wall time, up to 6 fraction digits, optional zone. */
export const TIMESTAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d(?::?\d\d)?)?$/;

/**
 * Microseconds since the epoch, exactly: Postgres timestamps have microsecond precision, which
 * `Date` would truncate. A `timestamp` (no zone) holds UTC wall time in Prisma's convention. Other
 * shapes (`date`, `time`, BC or infinite values) are undefined: not comparable with confidence.
 */
function toMicros(value: unknown): bigint | undefined {
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isNaN(ms) ? undefined : BigInt(ms) * 1000n;
  }
  if (typeof value !== "string") return undefined;
  const m = TIMESTAMP.exec(value);
  if (!m) return undefined;
  const zone = m[3] === undefined ? "Z" : /^[+-]\d\d$/.test(m[3]) ? `${m[3]}:00` : m[3];
  const ms = Date.parse(`${m[1]}${zone}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1000n + BigInt((m[2] ?? "").padEnd(6, "0"));
}

/**
 * Orders a non-null row value against a non-null operand; undefined when that cannot be decided:
 * unparseable, collation-dependent (strings), or hidden by rounding. Row values arrive through
 * JSON, so a `Decimal` (numeric) or a `BigInt` past 2^53 may have lost digits: such a pair is only
 * ordered when the rounded values differ (rounding is monotonic). A `Float` may be a `real` column
 * whose JSON text is its shortest float4 spelling: ordered only when every reading agrees.
 */
function order(value: unknown, operand: unknown, field: FieldMeta): Order | undefined {
  switch (field.type) {
    case "DateTime": {
      const a = toMicros(value);
      const b = toMicros(operand);
      return a === undefined || b === undefined ? undefined : cmp(a, b);
    }
    case "Int": {
      const a = toNumber(value);
      const b = toNumber(operand);
      return a === undefined || b === undefined ? undefined : cmp(a, b);
    }
    case "Float": {
      const a = toNumber(value);
      const b = toNumber(operand);
      if (a === undefined || b === undefined) return undefined;
      const r = cmp(a, b);
      return r === cmp(Math.fround(a), b) && r === cmp(Math.fround(a), Math.fround(b)) ? r : undefined;
    }
    case "Decimal": {
      const a = toNumber(value);
      const b = toNumber(operand);
      if (a === undefined || b === undefined) return undefined;
      const r = cmp(a, b);
      return r === 0 ? undefined : r;
    }
    case "BigInt": {
      const a = toBigInt(value);
      const b = toBigInt(operand);
      if (a === undefined || b === undefined) return undefined;
      if (typeof a === "bigint" && typeof b === "bigint") return cmp(a, b);
      const r = cmp(Number(a), Number(b));
      return r === 0 ? undefined : r;
    }
    default:
      return undefined;
  }
}

const ORDERED_TYPES = new Set(["DateTime", "Int", "Float", "Decimal", "BigInt"]);

/** SQL `=` of a non-null row value and a non-null operand. */
function same(value: unknown, operand: unknown, field: FieldMeta): Match {
  if (ORDERED_TYPES.has(field.type)) {
    const o = order(value, operand, field);
    return o === undefined ? "unknown" : o === 0 ? "match" : "no-match";
  }
  if (field.type === "Boolean") {
    if (typeof value !== "boolean" || typeof operand !== "boolean") return "unknown";
    return value === operand ? "match" : "no-match";
  }
  // String and enums (their JSON is the label).
  if (typeof value !== "string" || typeof operand !== "string") return "unknown";
  return value === operand ? "match" : "no-match";
}

/** `equals`; Prisma renders the insensitive mode as `ILIKE operand`, so its `%`/`_` are wildcards. */
function equals(value: unknown, operand: unknown, field: FieldMeta, insensitive = false): Match {
  if (operand === null) return value === null ? "match" : "no-match";
  if (value === null) return "no-match";
  if (insensitive && field.type === "String") {
    if (typeof value !== "string" || typeof operand !== "string") return "unknown";
    return like(value, operand, true);
  }
  return same(value, operand, field);
}

/** One member of `in`/`notIn`; the insensitive mode is `LOWER(column) IN (LOWER(…), …)`. */
function member(value: unknown, operand: unknown, field: FieldMeta, insensitive: boolean): Match {
  if (operand === null) return value === null ? "match" : "no-match";
  if (value === null) return "no-match";
  if (insensitive && field.type === "String") {
    if (typeof value !== "string" || typeof operand !== "string") return "unknown";
    if (value === operand) return "match";
    // Case mapping beyond ASCII depends on the database's locale (and JS's differs).
    if (!isAscii(value) || !isAscii(operand)) return "unknown";
    return value.toLowerCase() === operand.toLowerCase() ? "match" : "no-match";
  }
  return same(value, operand, field);
}

function compareOp(op: "lt" | "lte" | "gt" | "gte", value: unknown, operand: unknown, field: FieldMeta): Match {
  if (operand === null || operand === undefined) return "unknown";
  if (value === null) return "no-match"; // NULL compares to nothing
  const o = order(value, operand, field);
  if (o === undefined) return "unknown"; // strings: collation-dependent order
  const ok = op === "lt" ? o < 0 : op === "lte" ? o <= 0 : op === "gt" ? o > 0 : o >= 0;
  return ok ? "match" : "no-match";
}

/** Prisma renders these as `LIKE`/`ILIKE` around the operand, without escaping it. */
function stringOp(op: "contains" | "startsWith" | "endsWith", value: unknown, operand: unknown, insensitive: boolean): Match {
  if (typeof operand !== "string") return "unknown";
  if (value === null) return "no-match";
  if (typeof value !== "string") return "unknown";
  const pattern = op === "contains" ? `%${operand}%` : op === "startsWith" ? `${operand}%` : `%${operand}`;
  return like(value, pattern, insensitive);
}

const isAscii = (text: string): boolean => /^[\x00-\x7f]*$/.test(text);

/**
 * Postgres `value LIKE pattern` (`ILIKE` when insensitive): `%` is any run, `_` any one character,
 * a backslash escapes the next character. Case folding beyond ASCII follows the database's
 * locale, so an insensitive comparison involving other characters is only decided when it
 * matches exactly.
 */
function like(value: string, pattern: string, insensitive: boolean): Match {
  const tokens = likeTokens(pattern);
  if (!tokens) return "unknown"; // ends with the escape character: Postgres rejects the pattern
  if (likeMatches(tokens, [...value])) return "match";
  if (!insensitive) return "no-match";
  if (!isAscii(value) || !isAscii(pattern)) return "unknown";
  return likeMatches(likeTokens(pattern.toLowerCase())!, [...value.toLowerCase()]) ? "match" : "no-match";
}

const ANY = Symbol("%");
const ONE = Symbol("_");
type LikeToken = typeof ANY | typeof ONE | string;

function likeTokens(pattern: string): LikeToken[] | null {
  const tokens: LikeToken[] = [];
  const chars = [...pattern]; // code points: `_` is one character, not one UTF-16 unit
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "\\") {
      const next = chars[++i];
      if (next === undefined) return null;
      tokens.push(next);
    } else tokens.push(c === "%" ? ANY : c === "_" ? ONE : c);
  }
  return tokens;
}

/** Wildcard matching without backtracking blow-up (O(pattern × value)): patterns come from users. */
function likeMatches(tokens: readonly LikeToken[], chars: readonly string[]): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let starV = 0;
  while (v < chars.length) {
    const t = tokens[p];
    if (t !== undefined && t !== ANY && (t === ONE || t === chars[v])) {
      p++;
      v++;
    } else if (t === ANY) {
      star = p++;
      starV = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++starV;
    } else return false;
  }
  while (tokens[p] === ANY) p++;
  return p === tokens.length;
}

/**
 * Could this change alter the result of a query with this ReadSet? True unless every read of the
 * changed table has a `where` that neither the old nor the new row can satisfy.
 */
export function affects(readSet: ReadSet, change: Pick<Change, "table" | "op" | "old" | "new" | "omitted">, schema: SchemaMeta): boolean {
  if (readSet.allTables) return true;
  // By table first: a table may share its name with another model's Prisma name.
  const model = Object.values(schema.models).find((m) => m.table === change.table) ?? findModel(schema, change.table);
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
