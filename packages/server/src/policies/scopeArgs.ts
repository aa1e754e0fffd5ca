import { TRPCError } from "@trpc/server";
import type { FieldMeta, SchemaMeta } from "../schema/index.ts";
import { conjoin, foldWhere, isObject, type Condition, type Where } from "./condition.ts";
import { emptyFill, isEmptyFill, type Fill } from "./fill.ts";

/**
 * Rewriting a Prisma operation's arguments so it reads only the rows policies admit: the model's
 * own rule merged into `where`, every nested relation read (`include`/`select`, `_count`) scoped
 * by its model's rule, and relation filters inside `where` (`some`/`every`/`none`/`is`/`isNot`)
 * judged only against admitted rows, so a filter cannot probe rows the caller may not read.
 *
 * A rule that admits nothing (`false`) is never written into a where for Prisma (see
 * `condition.ts` for why): the where is folded, and what folds to `false` is decided here — the
 * whole read admits nothing (`scopeRead` returns null, `scopeFilter` false), or a nested list
 * relation / `_count` entry is left out of the query and filled in as `[]` / `0` (`fill.ts`).
 */

/** Resolves the read condition of a model for the current caller (memoized per operation, folded). */
export type RuleOf = (model: string) => Promise<Condition>;

type Args = Record<string, unknown>;

/** A read scoped for one caller: the arguments for Prisma, and what to fill into its result. */
export interface ScopedRead {
  args: Args;
  fill: Fill | null;
}

const hasTruthyKey = (projection: Args) => Object.values(projection).some(Boolean);

export class ArgScoper {
  constructor(
    private readonly schema: SchemaMeta,
    private readonly ruleOf: RuleOf,
  ) {}

  /**
   * findMany/findFirst/findUnique(+OrThrow), and the projection of writes that return rows.
   * Null when no row can be admitted: the caller answers without asking Prisma.
   */
  async scopeRead(model: string, args: Args, options: { ownRule?: boolean } = {}): Promise<ScopedRead | null> {
    const conditions: Condition[] = options.ownRule === false ? [] : [await this.ruleOf(model)];
    const fill = emptyFill();
    const scoped = await this.scopeProjections(model, args, fill);
    conditions.push(...scoped.conditions);
    conditions.push(...(await this.scopeOrderBy(model, scoped.args)));
    const where = foldWhere(this.schema, model, conjoin(await this.scopeWhere(model, args.where), conditions));
    if (where === false) return null;
    const out = scoped.args;
    if (where === true) delete out.where;
    else out.where = where;
    return { args: out, fill: isEmptyFill(fill) ? null : fill };
  }

  /** count/aggregate/groupBy, update/delete targets: `where` only (`false`: no row; `true`: every row). */
  async scopeFilter(model: string, where: unknown): Promise<Condition> {
    return foldWhere(this.schema, model, conjoin(await this.scopeWhere(model, where), [await this.ruleOf(model)]));
  }

  /** Relation filters inside a `where` see only admitted related rows (constants left in, unfolded). */
  async scopeWhere(model: string, where: unknown): Promise<unknown> {
    if (Array.isArray(where)) return Promise.all(where.map((w) => this.scopeWhere(model, w)));
    if (!isObject(where)) return where;
    const meta = this.schema.models[model];
    const out: Args = {};
    const also: Where[] = [];
    for (const [key, value] of Object.entries(where)) {
      if (key === "AND" || key === "OR" || key === "NOT") {
        out[key] = await this.scopeWhere(model, value);
        continue;
      }
      const field = meta?.fields[key];
      if (!field?.relation || value === undefined) out[key] = value;
      else if (field.isList) out[key] = await this.scopeListFilter(field, value);
      else {
        const [first, ...rest] = await this.scopeToOneFilter(field, value);
        out[key] = first;
        also.push(...rest.map((part) => ({ [key]: part })));
      }
    }
    if (also.length > 0) out.AND = [...(out.AND === undefined ? [] : Array.isArray(out.AND) ? out.AND : [out.AND]), ...also];
    return out;
  }

  /** `some`/`every`/`none` over the admitted related rows only. */
  private async scopeListFilter(field: FieldMeta, value: unknown): Promise<unknown> {
    if (!isObject(value)) return value;
    const related = field.relation!.model;
    const rule = await this.ruleOf(related);
    const out: Args = {};
    for (const [op, filter] of Object.entries(value)) {
      if (filter === undefined) continue;
      const inner = await this.scopeWhere(related, filter);
      if (op === "some" || op === "none") out[op] = conjoin(inner ?? {}, [rule]);
      // Every admitted related row matches: rows the caller cannot see do not count.
      else if (op === "every") out[op] = rule === true ? inner : { OR: [inner ?? {}, { NOT: rule }] };
      else out[op] = filter;
    }
    return out;
  }

  /**
   * `is`/`isNot` (or the bare where) over the admitted related row only: `is: null` asks whether
   * there is no related row the caller may read, `isNot: null` whether there is one. One part per
   * operator (several are ANDed by the caller).
   */
  private async scopeToOneFilter(field: FieldMeta, value: unknown): Promise<unknown[]> {
    const related = field.relation!.model;
    const rule = await this.ruleOf(related);
    const none = () => (rule === true ? { is: null } : { isNot: rule });
    const one = () => (rule === true ? { isNot: null } : { is: rule });
    if (value === null) return [none()];
    if (!isObject(value)) return [value];
    const explicit = "is" in value || "isNot" in value;
    if (!explicit) return [conjoin(await this.scopeWhere(related, value), [rule])];
    const parts: unknown[] = [];
    for (const [op, filter] of Object.entries(value)) {
      if (filter === undefined) continue;
      if (op === "is") parts.push(filter === null ? none() : { is: conjoin(await this.scopeWhere(related, filter), [rule]) });
      else if (op === "isNot") parts.push(filter === null ? one() : { isNot: conjoin(await this.scopeWhere(related, filter), [rule]) });
      else parts.push({ [op]: filter });
    }
    return parts.length > 0 ? parts : [value];
  }

  /**
   * Scopes `args.orderBy` of a read of `model` in place; returns conditions on `model`'s rows.
   * An order is a read: sorting by what the caller may not read would reveal it through the
   * order of the rows it may. So:
   * - `{ tasks: { _count } }` (a relation aggregate, which Prisma cannot filter) is kept when the
   *   related rule admits every row, dropped when it admits none (every count is 0 for this
   *   caller, and ordering by a constant is no ordering), and refused (FORBIDDEN) otherwise;
   * - `{ project: { name } }` (a to-one relation's field) orders only rows whose related row the
   *   caller may read: the same inner-join condition an `include` of that relation adds.
   */
  async scopeOrderBy(model: string, args: Args): Promise<Condition[]> {
    if (args.orderBy === undefined) return [];
    const list = Array.isArray(args.orderBy) ? args.orderBy : [args.orderBy];
    const conditions: Condition[] = [];
    const kept: unknown[] = [];
    for (const entry of list) {
      const scoped = await this.scopeOrderEntry(model, entry, conditions);
      if (scoped !== undefined) kept.push(scoped);
    }
    if (kept.length === 0) delete args.orderBy;
    else args.orderBy = Array.isArray(args.orderBy) ? kept : kept[0];
    return conditions;
  }

  /** One `orderBy` object of `model`; `undefined` when nothing of it is left. */
  private async scopeOrderEntry(model: string, entry: unknown, conditions: Condition[]): Promise<unknown> {
    if (!isObject(entry)) return entry;
    const meta = this.schema.models[model];
    const out: Args = {};
    for (const [name, value] of Object.entries(entry)) {
      const field = meta?.fields[name];
      if (!field?.relation || value === undefined) {
        out[name] = value;
        continue;
      }
      const related = field.relation.model;
      const rule = await this.ruleOf(related);
      if (field.isList) {
        if (rule === true) out[name] = value;
        else if (rule !== false) {
          throw new TRPCError({
            code: "FORBIDDEN",
            message: `orderBy ${name}._count: ${related} has a read policy, and Prisma cannot count only the rows it admits in an orderBy`,
          });
        }
        continue;
      }
      const inner: Condition[] = [];
      const nested = await this.scopeOrderEntry(related, value, inner);
      if (nested === undefined) continue;
      out[name] = nested;
      const onRelated = conjoin(undefined, [rule, ...inner]);
      if (onRelated !== undefined) {
        const condition: Args = { [name]: { is: onRelated } };
        conditions.push(field.isRequired ? condition : { OR: [{ [name]: { is: null } }, condition] });
      }
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }

  /** Scopes the `include` and `select` of a read of `model` (nested ones too). */
  private async scopeProjections(model: string, args: Args, fill: Fill): Promise<{ args: Args; conditions: Condition[] }> {
    const out: Args = { ...args };
    const conditions: Condition[] = [];
    for (const key of ["include", "select"] as const) {
      const projection = args[key];
      if (!isObject(projection)) continue;
      const scoped = await this.scopeProjection(model, projection, key === "select", fill);
      if (key === "include" && Object.keys(scoped.projection).length === 0) delete out[key];
      else out[key] = scoped.projection;
      conditions.push(...scoped.conditions);
    }
    return { args: out, conditions };
  }

  /**
   * Scopes an `include`/`select` of `model`. List relations get their rule in their own `where`
   * (a list the caller may read nothing of is left out and filled as `[]`). A to-one relation
   * cannot be filtered where it is included, so its rule becomes a condition on the including
   * row (returned in `conditions`): a row whose related row the caller may not read is left out,
   * as an inner join under row-level security would — also when the rule admits nothing.
   */
  async scopeProjection(model: string, projection: Args, isSelect: boolean, fill: Fill): Promise<{ projection: Args; conditions: Condition[] }> {
    const meta = this.schema.models[model];
    const out: Args = {};
    const conditions: Condition[] = [];
    for (const [name, value] of Object.entries(projection)) {
      out[name] = value;
      if (!value) continue;
      if (name === "_count") {
        const counted = await this.scopeCount(model, value, fill);
        if (counted === undefined) delete out[name];
        else out[name] = counted;
        continue;
      }
      const field = meta?.fields[name];
      if (!field?.relation) continue;
      const related = field.relation.model;
      const rule = await this.ruleOf(related);
      const nested: Args = isObject(value) ? value : {};
      const nestedFill = emptyFill();
      const inner = await this.scopeProjections(related, nested, nestedFill);
      delete inner.args.where; // list relations put it back, scoped; to-one relations have none
      if (field.isList) {
        const ordered = await this.scopeOrderBy(related, inner.args);
        const where = foldWhere(this.schema, related, conjoin(await this.scopeWhere(related, nested.where), [rule, ...inner.conditions, ...ordered]));
        if (where === false) {
          delete out[name];
          fill.emptyLists.push(name);
          continue;
        }
        if (where !== true) inner.args.where = where;
      } else {
        const onRelated = conjoin(undefined, [rule, ...inner.conditions]);
        if (onRelated !== undefined) {
          const condition: Args = { [name]: { is: onRelated } };
          conditions.push(field.isRequired ? condition : { OR: [{ [name]: { is: null } }, condition] });
        }
      }
      out[name] = value === true && Object.keys(inner.args).length === 0 ? true : inner.args;
      if (!isEmptyFill(nestedFill)) fill.nested[name] = nestedFill;
    }
    if (isSelect && !hasTruthyKey(out) && meta) {
      // Everything selected was left out: Prisma refuses an empty select, so select the key and drop it.
      for (const key of meta.primaryKey) {
        out[key] = true;
        fill.placeholders.push(key);
      }
    }
    return { projection: out, conditions };
  }

  /**
   * `_count: true` counts every list relation; `_count: { select: { tasks: { where } } }` some.
   * Relations the caller may read nothing of are left out and filled as 0; `undefined` when none
   * is left.
   */
  private async scopeCount(model: string, value: unknown, fill: Fill): Promise<unknown> {
    const meta = this.schema.models[model];
    if (!meta) return value;
    const selected = isObject(value) && isObject(value.select) ? value.select : null;
    const select: Args = {};
    const denied: string[] = [];
    for (const field of Object.values(meta.fields)) {
      if (!field.relation || !field.isList) continue;
      const choice = selected ? selected[field.name] : true;
      if (!choice) continue;
      const rule = await this.ruleOf(field.relation.model);
      const own = isObject(choice) ? await this.scopeWhere(field.relation.model, choice.where) : undefined;
      const where = foldWhere(this.schema, field.relation.model, conjoin(own, [rule]));
      if (where === false) {
        denied.push(field.name);
        continue;
      }
      const rest: Args = isObject(choice) ? { ...choice } : {};
      delete rest.where;
      if (where !== true) rest.where = where;
      select[field.name] = Object.keys(rest).length > 0 ? rest : true;
    }
    fill.zeroCounts.push(...denied);
    if (!selected) {
      if (denied.length === 0 && Object.values(select).every((choice) => choice === true)) return value;
      return Object.keys(select).length > 0 ? { select } : undefined;
    }
    const merged: Args = { ...(selected ?? {}), ...select };
    for (const name of denied) delete merged[name];
    if (!hasTruthyKey(merged)) return undefined;
    return { ...(isObject(value) ? value : {}), select: merged };
  }
}
