import type { FieldMeta, SchemaMeta } from "../schema/index.ts";

/**
 * Rewriting a Prisma operation's arguments so it reads only the rows policies admit: the model's
 * own rule merged into `where`, every nested relation read (`include`/`select`, `_count`) scoped
 * by its model's rule, and relation filters inside `where` (`some`/`every`/`none`/`is`/`isNot`)
 * judged only against admitted rows, so a filter cannot probe rows the caller may not read.
 */

/** A read rule resolved for one model: a `where`, everything (`true`) or nothing (`false`). */
export type Condition = Record<string, unknown> | boolean;

/** Resolves the read condition of a model for the current caller (memoized per operation). */
export type RuleOf = (model: string) => Promise<Condition>;

type Args = Record<string, unknown>;

export const isObject = (value: unknown): value is Args =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);

/** A `where` no row satisfies (`OR` of nothing). Fresh each time: Prisma may keep or mutate args. */
export const nothing = (): Args => ({ OR: [] });

/** The shape of {@link nothing}, for comparisons. */
export const NOTHING: Readonly<Args> = Object.freeze({ OR: Object.freeze([]) });

const asArray = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/**
 * `base AND each condition`, keeping `base`'s own keys at the top level (a `findUnique` needs its
 * unique field there; Prisma accepts extra filters beside it under `AND`). `true` conditions
 * vanish, `false` becomes {@link NOTHING}.
 */
export function andWhere(base: unknown, conditions: readonly Condition[]): Args | undefined {
  const extra: Args[] = [];
  for (const condition of conditions) {
    if (condition === true) continue;
    extra.push(condition === false ? nothing() : condition);
  }
  const start = isObject(base) ? base : undefined;
  if (extra.length === 0) return start;
  if (!start) return extra.length === 1 ? extra[0] : { AND: extra };
  return { ...start, AND: [...asArray(start.AND), ...extra] };
}

/** A condition as a `where` (for nesting under `is`, `some`, …). */
function asWhere(condition: Condition): Args {
  return condition === true ? {} : condition === false ? nothing() : condition;
}

export class ArgScoper {
  constructor(
    private readonly schema: SchemaMeta,
    private readonly ruleOf: RuleOf,
  ) {}

  /** findMany/findFirst/findUnique(+OrThrow), and the projection of writes that return rows. */
  async scopeRead(model: string, args: Args, options: { ownRule?: boolean } = {}): Promise<Args> {
    const out: Args = { ...args };
    const conditions: Condition[] = options.ownRule === false ? [] : [await this.ruleOf(model)];
    for (const key of ["include", "select"] as const) {
      const projection = args[key];
      if (!isObject(projection)) continue;
      const scoped = await this.scopeProjection(model, projection);
      out[key] = scoped.projection;
      conditions.push(...scoped.conditions);
    }
    const where = andWhere(await this.scopeWhere(model, args.where), conditions);
    if (where === undefined) delete out.where;
    else out.where = where;
    return out;
  }

  /** count/aggregate/groupBy, update/delete targets: `where` only. */
  async scopeFilter(model: string, where: unknown): Promise<Args | undefined> {
    return andWhere(await this.scopeWhere(model, where), [await this.ruleOf(model)]);
  }

  /** Relation filters inside a `where` see only admitted related rows. */
  async scopeWhere(model: string, where: unknown): Promise<unknown> {
    if (Array.isArray(where)) return Promise.all(where.map((w) => this.scopeWhere(model, w)));
    if (!isObject(where)) return where;
    const meta = this.schema.models[model];
    const out: Args = {};
    for (const [key, value] of Object.entries(where)) {
      if (key === "AND" || key === "OR" || key === "NOT") {
        out[key] = await this.scopeWhere(model, value);
        continue;
      }
      const field = meta?.fields[key];
      out[key] = field?.relation && value !== undefined ? await this.scopeRelationFilter(field, value) : value;
    }
    return out;
  }

  private async scopeRelationFilter(field: FieldMeta, value: unknown): Promise<unknown> {
    const related = field.relation!.model;
    if (!isObject(value)) return value; // `relation: null` (to-one "has none"): nothing to scope
    const rule = await this.ruleOf(related);
    const inner = async (w: unknown) => this.scopeWhere(related, w);
    const out: Args = {};
    if (field.isList) {
      for (const [op, filter] of Object.entries(value)) {
        if (filter === undefined) continue;
        if (op === "some" || op === "none") out[op] = andWhere(await inner(filter), [rule]) ?? {};
        else if (op === "every") {
          // Every admitted related row matches: rows the caller cannot see do not count.
          out[op] = rule === true ? await inner(filter) : rule === false ? {} : { OR: [await inner(filter) ?? {}, { NOT: rule }] };
        } else out[op] = filter;
      }
      return out;
    }
    const explicit = "is" in value || "isNot" in value;
    if (!explicit) return andWhere(await inner(value), [rule]) ?? asWhere(rule);
    for (const [op, filter] of Object.entries(value)) {
      if (filter === undefined) continue;
      // `is: null` / `isNot: null` ask whether a related row exists; the foreign key says as much.
      out[op] = (op === "is" || op === "isNot") && filter !== null ? andWhere(await inner(filter), [rule]) ?? asWhere(rule) : filter;
    }
    return out;
  }

  /**
   * Scopes an `include`/`select` of `model`. List relations get their rule in their own `where`.
   * A to-one relation cannot be filtered where it is included, so its rule becomes a condition on
   * the including row (returned in `conditions`): a row whose related row the caller may not read
   * is left out, as an inner join under row-level security would.
   */
  async scopeProjection(model: string, projection: Args): Promise<{ projection: Args; conditions: Condition[] }> {
    const meta = this.schema.models[model];
    const out: Args = {};
    const conditions: Condition[] = [];
    for (const [name, value] of Object.entries(projection)) {
      out[name] = value;
      if (!value) continue;
      if (name === "_count") {
        out[name] = await this.scopeCount(model, value);
        continue;
      }
      const field = meta?.fields[name];
      if (!field?.relation) continue;
      const related = field.relation.model;
      const rule = await this.ruleOf(related);
      const nested: Args = isObject(value) ? value : {};
      const inner = await this.scopeNestedProjection(related, nested);
      if (field.isList) {
        const where = andWhere(await this.scopeWhere(related, nested.where), [rule, ...inner.conditions]);
        const scoped: Args = { ...inner.args };
        if (where !== undefined) scoped.where = where;
        out[name] = value === true && Object.keys(scoped).length === 0 ? true : scoped;
        continue;
      }
      out[name] = value === true && Object.keys(inner.args).length === 0 ? true : inner.args;
      const onRelated = andWhere(undefined, [rule, ...inner.conditions]);
      if (onRelated === undefined) continue;
      const condition: Args = { [name]: { is: onRelated } };
      conditions.push(field.isRequired ? condition : { OR: [{ [name]: { is: null } }, condition] });
    }
    return { projection: out, conditions };
  }

  private async scopeNestedProjection(model: string, nested: Args): Promise<{ args: Args; conditions: Condition[] }> {
    const args: Args = { ...nested };
    const conditions: Condition[] = [];
    for (const key of ["include", "select"] as const) {
      const projection = nested[key];
      if (!isObject(projection)) continue;
      const scoped = await this.scopeProjection(model, projection);
      args[key] = scoped.projection;
      conditions.push(...scoped.conditions);
    }
    delete args.where; // list relations put it back, scoped; to-one relations have none
    return { args, conditions };
  }

  /** `_count: true` counts every list relation; `_count: { select: { tasks: { where } } }` some. */
  private async scopeCount(model: string, value: unknown): Promise<unknown> {
    const meta = this.schema.models[model];
    if (!meta) return value;
    const selected = isObject(value) && isObject(value.select) ? value.select : null;
    const select: Args = {};
    let changed = false;
    for (const field of Object.values(meta.fields)) {
      if (!field.relation || !field.isList) continue;
      const choice = selected ? selected[field.name] : true;
      if (!choice) continue;
      const rule = await this.ruleOf(field.relation.model);
      const own = isObject(choice) ? await this.scopeWhere(field.relation.model, choice.where) : undefined;
      const where = andWhere(own, [rule]);
      if (where !== own) changed = true;
      select[field.name] = where === undefined ? choice : { ...(isObject(choice) ? choice : {}), where };
    }
    if (selected) return { ...(value as Args), select: { ...selected, ...select } };
    return changed ? { select } : value;
  }
}
