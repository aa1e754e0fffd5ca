import { TRPCError } from "@trpc/server";
import type { FieldMeta, ModelMeta, SchemaMeta } from "../schema/index.ts";
import { policyScope, withoutPolicies, type PolicyScope } from "./scope.ts";
import { conjoin, foldWhere, isObject, type Condition } from "./condition.ts";
import { applyFill } from "./fill.ts";
import { ArgScoper } from "./scopeArgs.ts";
import type { AnyModelPolicy, PolicyOptions } from "./types.ts";

type Args = Record<string, unknown>;
type Row = Record<string, unknown>;
type Query = (args: unknown) => Promise<unknown>;
type Delegate = Record<string, (args?: unknown) => Promise<unknown>>;

const READS = new Set(["findMany", "findFirst", "findFirstOrThrow", "findUnique", "findUniqueOrThrow"]);
const FILTERS = new Set(["count", "aggregate", "groupBy"]);
const RAW = new Set(["$queryRaw", "$queryRawUnsafe", "$executeRaw", "$executeRawUnsafe", "$queryRawTyped", "$runCommandRaw", "findRaw", "aggregateRaw"]);
/** Nested-write operators of a relation field in `data`. */
const NESTED_WRITES = ["create", "createMany", "connectOrCreate", "upsert", "update", "updateMany", "delete", "deleteMany", "set", "connect", "disconnect"];

export interface PolicyEngineOptions extends PolicyOptions {
  schema: SchemaMeta;
  /** Keyed by model name (`Project`) or client property (`project`). */
  policies: Readonly<Record<string, AnyModelPolicy | undefined>>;
}

const forbidden = (message: string) => new TRPCError({ code: "FORBIDDEN", message });
const notFound = (model: string) => new TRPCError({ code: "NOT_FOUND", message: `no such ${model}` });

/** The client property of a model: `Project` → `project`. */
export const clientProperty = (model: string) => model.charAt(0).toLowerCase() + model.slice(1);

/**
 * Enforces row-level policies on every operation of a Prisma client (see {@link applyPolicies}):
 * reads are rewritten to admit only permitted rows; writes are checked row by row inside the
 * caller's transaction, against the rows as they were and as they became.
 */
export class PolicyEngine {
  private readonly schema: SchemaMeta;
  private readonly policies = new Map<string, AnyModelPolicy>();
  private readonly unlisted: "allow" | "deny";
  private readonly rawSql: "allow" | "deny";

  constructor(options: PolicyEngineOptions) {
    this.schema = options.schema;
    this.unlisted = options.unlistedModels ?? "allow";
    this.rawSql = options.rawSql ?? "deny";
    const byProperty = new Map(Object.values(options.schema.models).map((m) => [clientProperty(m.name), m.name]));
    for (const [key, policy] of Object.entries(options.policies)) {
      if (!policy) continue;
      const model = options.schema.models[key] ? key : byProperty.get(key);
      if (!model) throw new Error(`policies: no model "${key}" in the schema`);
      this.policies.set(model, policy);
    }
  }

  /** The policy of a model; `undefined` when it is unrestricted. */
  policyOf(model: string): AnyModelPolicy | undefined {
    const policy = this.policies.get(model);
    if (policy) return policy;
    return this.unlisted === "deny" ? DENY : undefined;
  }

  /** True when any model is restricted (no policies at all: the extension is not needed). */
  get active(): boolean {
    return this.policies.size > 0 || this.unlisted === "deny";
  }

  async run(model: string | undefined, operation: string, args: unknown, query: Query): Promise<unknown> {
    const scope = policyScope.getStore();
    if (scope?.bypass) return query(args);
    if (!scope) {
      // A policy-scoped client used outside a Tether procedure: there is no caller to scope by.
      throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "policy-scoped client used outside a Tether procedure (use store.db for system work)" });
    }
    if (!model) {
      if (RAW.has(operation) && this.rawSql === "deny") throw forbidden(`raw SQL (${operation}) bypasses row policies and is refused through ctx.db`);
      return query(args);
    }
    const call = new Call(this, this.schema, scope, model);
    const input: Args = isObject(args) ? args : {};
    if (READS.has(operation)) {
      const scoped = await call.scoper.scopeRead(model, input);
      // Nothing admitted: answered here, never by a where Prisma would have to get right.
      if (!scoped) return nothingRead(operation, model);
      return applyFill(await query(scoped.args).catch((error: unknown) => rethrowNotFound(error, model)), scoped.fill);
    }
    if (FILTERS.has(operation)) {
      // count/aggregate take an orderBy too (with take/skip): it is scoped as a read's is.
      const ordered: Args = { ...input };
      const orderConditions = await call.scoper.scopeOrderBy(model, ordered);
      const where = foldWhere(this.schema, model, conjoin(await call.scoper.scopeFilter(model, input.where), orderConditions));
      if (where === false) return nothingCounted(operation, input);
      return query(withWhere(ordered, where));
    }
    if (RAW.has(operation)) {
      if (this.rawSql === "deny") throw forbidden(`raw ${operation} bypasses row policies and is refused through ctx.db`);
      return query(args);
    }
    return call.write(operation, input, query);
  }
}

const DENY: AnyModelPolicy = Object.freeze({});

/**
 * `update`/`upsert`/`delete` select by a compound unique (`projectId_userId: { projectId, userId }`),
 * which `findFirst`/`findMany` do not accept: the same selection as plain equalities.
 */
export function compoundUniqueAsFilter(meta: ModelMeta, where: Args | undefined): Args | undefined {
  if (!where) return where;
  let out: Args | undefined;
  for (const [key, value] of Object.entries(where)) {
    if (meta.fields[key] || key === "AND" || key === "OR" || key === "NOT" || !isObject(value)) continue;
    const parts = Object.keys(value);
    if (parts.length === 0 || !parts.every((part) => meta.fields[part] && !meta.fields[part]!.relation)) continue;
    out ??= { ...where };
    delete out[key];
    const and = out.AND === undefined ? [] : Array.isArray(out.AND) ? out.AND : [out.AND];
    out.AND = [...and, value];
  }
  return out ?? where;
}

function withWhere(args: Args, where: Condition): Args {
  const out = { ...args };
  if (where === true) delete out.where;
  else out.where = where;
  return out;
}

/** A read of no admitted row: what Prisma answers when nothing matches. */
function nothingRead(operation: string, model: string): unknown {
  if (operation === "findMany") return [];
  if (operation.endsWith("OrThrow")) throw notFound(model);
  return null;
}

/** Prisma's not-found (`findUniqueOrThrow`/`findFirstOrThrow`) is the same NOT_FOUND as a denied row. */
function rethrowNotFound(error: unknown, model: string): never {
  if ((error as { code?: unknown } | null)?.code === "P2025") throw notFound(model);
  throw error;
}

/**
 * An upsert whose `where` selects a row the caller may not read can only create, and the create
 * collides with that row's unique value (Prisma's P2002). CONFLICT, not a 500: it says a unique
 * value is taken, which a plain `create` with the same value says as well (unique constraints
 * are global, as under Postgres row-level security) — and nothing of the row is returned.
 */
function rethrowTaken(error: unknown, model: string): never {
  if (isUniqueViolation(error)) {
    throw new TRPCError({ code: "CONFLICT", message: `a unique value of this ${model} is already taken`, cause: error });
  }
  throw error;
}

/**
 * Prisma's P2002, or (through the PGlite adapter, which does not map it) the driver adapter's
 * error carrying Postgres' own unique_violation, SQLSTATE 23505.
 */
function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; cause?: { kind?: unknown; code?: unknown } } | null;
  return e?.code === "P2002" || e?.cause?.kind === "UniqueConstraintViolation" || (e?.cause?.kind === "postgres" && e.cause.code === "23505");
}

/** count/aggregate/groupBy over no admitted row, shaped as Prisma shapes them over none. */
function nothingCounted(operation: string, args: Args): unknown {
  if (operation === "groupBy") return [];
  const each = (spec: unknown, value: unknown) =>
    isObject(spec) ? Object.fromEntries(Object.entries(spec).filter(([, on]) => on).map(([key]) => [key, value])) : value;
  if (operation === "count") return isObject(args.select) ? each(args.select, 0) : 0;
  const out: Args = {};
  for (const [key, spec] of Object.entries(args)) {
    if (!spec) continue;
    if (key === "_count") out[key] = each(spec, 0);
    else if (key === "_sum" || key === "_avg" || key === "_min" || key === "_max") out[key] = each(spec, null);
  }
  return out;
}

/** One operation of one caller: memoized read rules, and the write path. */
class Call {
  readonly scoper: ArgScoper;
  private readonly rules = new Map<string, Promise<Condition>>();
  private readonly meta: ModelMeta;

  constructor(
    private readonly engine: PolicyEngine,
    private readonly schema: SchemaMeta,
    private readonly scope: PolicyScope,
    private readonly model: string,
  ) {
    const meta = schema.models[model];
    if (!meta) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: `policies: unknown model ${model}` });
    this.meta = meta;
    this.scoper = new ArgScoper(schema, (m) => this.rule(m));
  }

  private get ruleCtx(): { db: unknown } {
    return { ...this.scope.ctx, db: this.scope.db };
  }

  private rule(model: string): Promise<Condition> {
    let rule = this.rules.get(model);
    if (!rule) {
      rule = this.resolveRule(model);
      this.rules.set(model, rule);
    }
    return rule;
  }

  private async resolveRule(model: string): Promise<Condition> {
    const policy = this.engine.policyOf(model);
    if (!policy) return true;
    if (!policy.read) return false;
    const result = await withoutPolicies(() => policy.read!(this.ruleCtx));
    if (typeof result === "boolean") return result;
    if (!isObject(result)) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: `policy read(${model}) must return a where, true or false` });
    const hole = findUndefined(result, "");
    if (hole !== null) {
      throw new TRPCError({
        code: "INTERNAL_SERVER_ERROR",
        message: `policy read(${model}) returned a where with undefined at "${hole}": Prisma drops undefined filters, so it would admit every row`,
      });
    }
    // `{}`, `{ AND: [] }` → every row; `{ OR: [] }`, `{ id: { in: [] } }` → none: decided here.
    return foldWhere(this.schema, model, result);
  }

  private delegate(model = this.model): Delegate {
    const delegate = (this.scope.db as Record<string, Delegate | undefined>)[clientProperty(model)];
    if (!delegate) throw new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: `policies: no client property for ${model}` });
    return delegate;
  }

  /** Tether's own reads for checks: same client (same transaction), policies suspended. */
  private system<T>(fn: (delegate: Delegate) => Promise<T>): Promise<T> {
    return withoutPolicies(() => fn(this.delegate()));
  }

  /** The rows a write's `where` selects, read for the checks (policies suspended). */
  private rowsOf(where: Condition, many: true): Promise<Row[]>;
  private rowsOf(where: Condition, many: false): Promise<Row | null>;
  private rowsOf(where: Condition, many: boolean): Promise<Row[] | Row | null> {
    if (where === false) return Promise.resolve(many ? [] : null); // nothing admitted: nothing to read
    const filter = compoundUniqueAsFilter(this.meta, where === true ? undefined : where);
    return this.system((d) => (many ? d.findMany!({ where: filter }) : d.findFirst!({ where: filter }))) as Promise<Row[] | Row | null>;
  }

  async write(operation: string, args: Args, query: Query): Promise<unknown> {
    this.checkNestedWrites(this.model, args.data);
    const policy = this.engine.policyOf(this.model);
    if (!policy) return query(args);
    if (!this.scope.transactional) {
      // A refused check must be able to undo the write: only a mutation's transaction can.
      throw new TRPCError({
        code: "INTERNAL_SERVER_ERROR",
        message: `${operation} on ${this.model} under a policy runs only inside tether.mutation (one transaction)`,
      });
    }
    const { projection, rest } = splitProjection(args);
    switch (operation) {
      case "create": {
        const row = (await query(rest)) as Row;
        await this.check(policy, "create", row);
        return projection ? (await this.reproject([row], projection))[0] : row;
      }
      case "createManyAndReturn": {
        const rows = (await query(rest)) as Row[];
        for (const row of rows) await this.check(policy, "create", row);
        return projection ? this.reproject(rows, projection) : rows;
      }
      case "createMany": {
        // The rows are needed for the checks: written through createManyAndReturn instead.
        const rows = (await this.system((d) => d.createManyAndReturn!(args))) as Row[];
        for (const row of rows) await this.check(policy, "create", row);
        return { count: rows.length };
      }
      case "update": {
        const where = await this.scoper.scopeFilter(this.model, args.where);
        const before = await this.rowsOf(where, false);
        // Missing and not admitted look the same: nothing says the row exists.
        if (!before) throw notFound(this.model);
        const after = (await query({ ...rest, where: this.narrowed(where, [before]) })) as Row;
        await this.check(policy, "update", before, after);
        return projection ? (await this.reproject([after], projection))[0] : after;
      }
      case "updateMany":
      case "updateManyAndReturn": {
        const where = await this.scoper.scopeFilter(this.model, args.where);
        const before = await this.rowsOf(where, true);
        if (before.length === 0) return operation === "updateMany" ? { count: 0 } : [];
        // Only the rows just read (and checked) are written, whatever commits meanwhile.
        const result = await query({ ...rest, where: this.narrowed(where, before) });
        const after = new Map(((await this.system((d) => d.findMany!({ where: this.keysIn(before) }))) as Row[]).map((r) => [this.key(r), r]));
        for (const row of before) {
          const next = after.get(this.key(row));
          if (!next) throw forbidden(`update of ${this.model} changed its primary key; refused under its policy`);
          await this.check(policy, "update", row, next);
        }
        if (operation === "updateMany") return result;
        return projection ? this.reproject(result as Row[], projection) : result;
      }
      case "upsert": {
        const where = await this.scoper.scopeFilter(this.model, args.where);
        const before = await this.rowsOf(where, false);
        // No row admitted: the upsert can only create (Prisma never sees a where admitting none).
        const after = (await (
          where === false ? this.system((d) => d.create!({ data: rest.create })) : query({ ...rest, where: where === true ? args.where : where })
        ).catch((error: unknown) => rethrowTaken(error, this.model))) as Row;
        if (before) await this.check(policy, "update", before, after);
        else await this.check(policy, "create", after);
        return projection ? (await this.reproject([after], projection))[0] : after;
      }
      case "delete": {
        const where = await this.scoper.scopeFilter(this.model, args.where);
        const before = await this.rowsOf(where, false);
        if (!before) throw notFound(this.model);
        await this.check(policy, "delete", before);
        // The deleted row comes back with what was asked of it, nested reads scoped.
        const target = this.narrowed(where, [before]);
        const scoped = projection ? await this.scoper.scopeRead(this.model, { ...projection, where: target }, { ownRule: false }) : { args: { where: target }, fill: null };
        if (!scoped) throw forbidden(`the deleted ${this.model} includes relations this caller may not read`);
        return applyFill(await query({ ...rest, ...scoped.args }), scoped.fill);
      }
      case "deleteMany": {
        const where = await this.scoper.scopeFilter(this.model, args.where);
        const before = await this.rowsOf(where, true);
        for (const row of before) await this.check(policy, "delete", row);
        if (before.length === 0) return { count: 0 };
        return query({ ...rest, where: this.narrowed(where, before) });
      }
      default:
        throw forbidden(`${operation} on ${this.model} is not supported under a policy`);
    }
  }

  private async check(policy: AnyModelPolicy, kind: "create" | "update" | "delete", row: Row, next?: Row): Promise<void> {
    const rule = policy[kind];
    if (!rule) throw forbidden(`${kind} of ${this.model} is not allowed`);
    const ok = await withoutPolicies(() =>
      kind === "update" ? policy.update!(this.ruleCtx, row, next!) : (rule as (ctx: { db: unknown }, row: Row) => unknown)(this.ruleCtx, row),
    );
    if (ok !== true) throw forbidden(`${kind} of ${this.model} refused by its policy`);
  }

  /**
   * Nested writes into a restricted model would skip its checks: refused, except connecting or
   * disconnecting a to-one relation whose foreign key is on this row (the row's own check sees
   * the key it gets).
   */
  private checkNestedWrites(model: string, data: unknown): void {
    if (Array.isArray(data)) {
      for (const item of data) this.checkNestedWrites(model, item);
      return;
    }
    if (!isObject(data)) return;
    const meta = this.schema.models[model];
    if (!meta) return;
    for (const [key, value] of Object.entries(data)) {
      const field = meta.fields[key];
      if (!field?.relation || !isObject(value)) continue;
      const related = field.relation.model;
      const restricted = this.engine.policyOf(related) !== undefined;
      for (const [op, payload] of Object.entries(value)) {
        if (!NESTED_WRITES.includes(op) || payload === undefined) continue;
        if (restricted) {
          if ((op === "connect" || op === "disconnect") && ownsForeignKey(meta, field)) continue;
          throw forbidden(`nested ${op} into ${related} (policy-checked) is not supported; write it with its own call`);
        }
        for (const nested of nestedData(op, payload)) this.checkNestedWrites(related, nested);
      }
    }
  }

  private key(row: Row): string {
    return JSON.stringify(this.meta.primaryKey.map((k) => row[k]));
  }

  /** The write's where, narrowed to the rows read and checked (never empty: they were read). */
  private narrowed(where: Condition, rows: readonly Row[]): unknown {
    return conjoin(where === true ? undefined : where, [this.keysIn(rows)]);
  }

  private keysIn(rows: readonly Row[]): Args {
    const keys = this.meta.primaryKey;
    if (keys.length === 1) return { [keys[0]!]: { in: rows.map((r) => r[keys[0]!]) } };
    return { OR: rows.map((r) => Object.fromEntries(keys.map((k) => [k, r[k]]))) };
  }

  /**
   * Written rows, returned with the `select`/`include`/`omit` the caller asked for; nested reads
   * are scoped by their models' rules. A written row whose included to-one relation the caller
   * may not read is refused (FORBIDDEN) rather than returned without it.
   */
  private async reproject(rows: readonly Row[], projection: Args): Promise<Row[]> {
    if (rows.length === 0) return [];
    const keys = this.meta.primaryKey;
    const select = isObject(projection.select) ? { ...projection.select } : undefined;
    const added = select ? keys.filter((k) => !select[k]) : [];
    for (const k of added) select![k] = true;
    const scoped = await this.scoper.scopeRead(this.model, { ...projection, ...(select ? { select } : {}), where: this.keysIn(rows) }, { ownRule: false });
    const read = scoped ? applyFill((await this.system((d) => d.findMany!(scoped.args))) as Row[], scoped.fill) : [];
    const found = new Map(read.map((r) => [this.key(r), r]));
    return rows.map((row) => {
      const full = found.get(this.key(row));
      if (!full) throw forbidden(`the written ${this.model} includes relations this caller may not read`);
      for (const k of added) delete full[k];
      return full;
    });
  }
}

function splitProjection(args: Args): { projection: Args | null; rest: Args } {
  const { select, include, omit, ...rest } = args;
  const projection: Args = {};
  if (select !== undefined) projection.select = select;
  if (include !== undefined) projection.include = include;
  if (omit !== undefined) projection.omit = omit;
  return { projection: Object.keys(projection).length ? projection : null, rest };
}

/** The foreign key of a to-one relation is a column of this model (not the related one's). */
function ownsForeignKey(meta: ModelMeta, field: FieldMeta): boolean {
  if (field.isList || !field.relation) return false;
  const fields = field.relation.fields;
  return !(fields.length === meta.primaryKey.length && fields.every((f) => meta.primaryKey.includes(f)));
}

/** The `data` objects inside one nested-write operator. */
function nestedData(op: string, payload: unknown): unknown[] {
  const items = Array.isArray(payload) ? payload : [payload];
  const out: unknown[] = [];
  for (const item of items) {
    if (!isObject(item)) continue;
    if (op === "create") out.push(item);
    else if (op === "createMany") out.push(item.data);
    else if (op === "connectOrCreate") out.push(item.create);
    else if (op === "upsert") out.push(item.create, item.update);
    else if (op === "update" || op === "updateMany") out.push("data" in item ? item.data : item);
  }
  return out;
}

/** The path of the first `undefined` inside a where, or null. */
function findUndefined(value: unknown, path: string): string | null {
  if (value === undefined) return path || "(root)";
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hole = findUndefined(value[i], `${path}[${i}]`);
      if (hole !== null) return hole;
    }
    return null;
  }
  if (!isObject(value) || Object.getPrototypeOf(value) !== Object.prototype) return null;
  for (const [key, inner] of Object.entries(value)) {
    const hole = findUndefined(inner, path ? `${path}.${key}` : key);
    if (hole !== null) return hole;
  }
  return null;
}

/**
 * `client` with row-level policies on every operation, for the caller of the current Tether
 * procedure (see `runWithPolicyScope`). Apply it before read tracking
 * (`trackReads(applyPolicies(db))`): Prisma runs the first-applied extension first, so the
 * tracker records the merged `where` and live invalidation stays narrow per caller.
 */
export function applyPolicies<Client>(client: Client, engine: PolicyEngine): Client {
  const extendable = client as unknown as { $extends(extension: unknown): unknown };
  return extendable.$extends({
    name: "tether-policies",
    query: {
      async $allOperations({ model, operation, args, query }: { model?: string; operation: string; args: unknown; query: Query }) {
        return engine.run(model, operation, args, query);
      },
    },
  }) as Client;
}
