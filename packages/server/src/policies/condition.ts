import type { FieldMeta, SchemaMeta } from "../schema/index.ts";

/**
 * Read conditions as Tether handles them: a Prisma `where`, or the constants `true` (every row)
 * and `false` (no row). Constants never reach Prisma: {@link foldWhere} folds them out of a where
 * (and folds Prisma's empty lists into them), so "no row" is decided here, not by how Prisma
 * treats an empty list. Prisma 6.19 drops an empty `OR` nested in an `AND`:
 * `{ id, AND: [{ OR: [] }] }` matches the row with that id, while a top-level `{ OR: [] }` matches
 * nothing. A deny written as `{ OR: [] }` and ANDed into a caller's where therefore admitted
 * every row.
 */
export type Condition = Where | boolean;
export type Where = Record<string, unknown>;

export const isObject = (value: unknown): value is Where =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);

const asArray = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/**
 * `base AND each condition`, keeping `base`'s own keys at the top level (a `findUnique` needs its
 * unique field there; Prisma accepts extra filters beside it under `AND`). `true` conditions
 * vanish; `false` stays in the `AND` as a constant for {@link foldWhere}.
 */
export function conjoin(base: unknown, conditions: readonly Condition[]): unknown {
  const extra = conditions.filter((c) => c !== true);
  if (extra.length === 0) return base;
  if (!isObject(base)) return base === undefined || base === true ? (extra.length === 1 ? extra[0] : { AND: extra }) : { AND: [base, ...extra] };
  return { ...base, AND: [...asArray(base.AND), ...extra] };
}

/** Operators of a scalar field filter that only modify the others. */
const MODIFIERS = new Set(["mode"]);

/**
 * Folds the constants out of a where of `model`, recursively (relation filters too):
 * - `AND` (and the implicit AND of an object's keys): a `false` part makes it `false`, `true` parts
 *   vanish, nothing left is `true`; `OR`: a `true` part makes it `true`, `false` parts vanish,
 *   nothing left is `false` (so `OR: []` is `false` wherever it stands); `NOT [a, b]` is
 *   `NOT a AND NOT b` (`NOT: []` is `true`);
 * - `{}` and `undefined` filters are `true`; a scalar filter with `in: []` is `false`, `notIn: []`
 *   is dropped, `not` is folded and negated;
 * - relation filters over a related set the fold reduced to a constant: `some(false)` and
 *   `is(false)` are `false`; `none(false)`, `every(true)` and `isNot(false)` are `true`;
 *   `every(false)` is `none: {}` (no related row at all). `is: null` / `isNot: null` stay.
 * The result is `true`, `false`, or a where holding no constant and no empty list.
 */
export function foldWhere(schema: SchemaMeta, model: string, where: unknown): Condition {
  if (where === undefined || where === true) return true;
  if (where === false) return false;
  if (!isObject(where)) return where as Where; // not a where at all: passed on for Prisma to refuse
  const meta = schema.models[model];
  const out: Where = {};
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) continue; // Prisma drops undefined filters too
    let folded: Folded;
    if (key === "AND") folded = foldAll(schema, model, asArray(value));
    else if (key === "OR") folded = foldAny(schema, model, value);
    else if (key === "NOT") folded = foldNone(schema, model, value);
    else {
      const field = meta?.fields[key];
      if (field?.relation) folded = foldRelation(schema, field, value);
      else if (field && isScalarFilter(field, value)) folded = foldScalar(value);
      else folded = { keep: value };
    }
    if (folded === false) return false;
    if (folded === true) continue;
    out[key] = folded.keep;
  }
  return Object.keys(out).length === 0 ? true : out;
}

/** A part of a where folded: a constant, or what to keep in its place. */
type Folded = boolean | { keep: unknown };

/** `AND: [...]`: every part. */
function foldAll(schema: SchemaMeta, model: string, parts: unknown[]): Folded {
  const kept: Where[] = [];
  for (const part of parts) {
    const folded = foldWhere(schema, model, part);
    if (folded === false) return false;
    if (folded !== true) kept.push(folded);
  }
  return kept.length === 0 ? true : { keep: kept };
}

/** `OR: [...]`: any part; none at all is `false`. */
function foldAny(schema: SchemaMeta, model: string, value: unknown): Folded {
  const kept: Where[] = [];
  for (const part of asArray(value)) {
    const folded = foldWhere(schema, model, part);
    if (folded === true) return true;
    if (folded !== false) kept.push(folded);
  }
  return kept.length === 0 ? false : { keep: kept };
}

/** `NOT: a` / `NOT: [a, b]`: none of the parts. */
function foldNone(schema: SchemaMeta, model: string, value: unknown): Folded {
  const kept: Where[] = [];
  for (const part of asArray(value)) {
    const folded = foldWhere(schema, model, part);
    if (folded === true) return false;
    if (folded !== false) kept.push(folded);
  }
  if (kept.length === 0) return true;
  return { keep: Array.isArray(value) || kept.length > 1 ? kept : kept[0] };
}

/** A relation filter: `some`/`every`/`none` on lists, `is`/`isNot` (or the bare where) on to-one. */
function foldRelation(schema: SchemaMeta, field: FieldMeta, value: unknown): Folded {
  if (value === null || value === true || value === false) return value === null ? { keep: null } : value;
  if (!isObject(value)) return { keep: value };
  const related = field.relation!.model;
  const fold = (w: unknown) => foldWhere(schema, related, w);
  const explicit = field.isList || "is" in value || "isNot" in value;
  if (!explicit) {
    // `{ project: { ownerId } }` is `is` by another name.
    const folded = fold(value);
    return folded === true ? { keep: {} } : folded === false ? false : { keep: folded };
  }
  const out: Where = {};
  for (const [op, filter] of Object.entries(value)) {
    if (filter === undefined) continue;
    if (filter === null || !(op === "some" || op === "every" || op === "none" || op === "is" || op === "isNot")) {
      out[op] = filter;
      continue;
    }
    const folded = fold(filter);
    if (op === "some" || op === "is") {
      if (folded === false) return false; // no related row can satisfy it
      out[op] = folded === true ? {} : folded;
    } else if (op === "none" || op === "isNot") {
      if (folded === false) continue; // no related row can contradict it
      out[op] = folded === true ? {} : folded;
    } else {
      // every: true of any set; with a `false` filter, true only of the empty set.
      if (folded === true) continue;
      if (folded === false) out.none = {};
      else out.every = folded;
    }
  }
  return Object.keys(out).length === 0 ? true : { keep: out };
}

/** A filter object on a plain scalar column (not a value: dates, bytes, JSON and lists are left alone). */
function isScalarFilter(field: FieldMeta, value: unknown): value is Where {
  return !field.isList && field.kind !== "object" && field.type !== "Json" && field.type !== "Bytes" && isObject(value) && Object.getPrototypeOf(value) === Object.prototype;
}

/** `{ in: [] }` is `false`; `{ notIn: [] }` and `{}` are `true`; `not` is folded and negated. */
function foldScalar(filter: Where): Folded {
  const out: Where = {};
  for (const [op, operand] of Object.entries(filter)) {
    if (operand === undefined) continue;
    if (op === "in" && Array.isArray(operand) && operand.length === 0) return false;
    if (op === "notIn" && Array.isArray(operand) && operand.length === 0) continue;
    if (op === "not" && isObject(operand) && Object.getPrototypeOf(operand) === Object.prototype) {
      const inner = foldScalar(operand);
      if (inner === true) return false;
      if (inner === false) continue;
      out.not = inner.keep;
      continue;
    }
    out[op] = operand;
  }
  if (Object.keys(out).every((op) => MODIFIERS.has(op))) return true;
  return { keep: out };
}
