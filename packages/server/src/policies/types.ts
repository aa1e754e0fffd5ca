/**
 * Row-level policies, per model: which rows a context may read (a Prisma `where` merged into
 * every read of the model through `ctx.db`) and which rows it may create, update or delete
 * (checks run inside the mutation's transaction; a refused check throws FORBIDDEN and the
 * transaction rolls back, so nothing is written).
 */

export type MaybePromise<T> = T | Promise<T>;

/**
 * A read policy's answer: a Prisma `where` (the rows admitted), `true` (every row) or `false`
 * (none). A `where` holding `undefined` anywhere is refused: Prisma drops undefined filters, so
 * `{ ownerId: ctx.user?.id }` for an anonymous caller would otherwise admit every row.
 */
export type ReadRule<Where> = Where | boolean;

/**
 * What a check receives besides the row: the caller's context with `db`, the same client the
 * procedure has (inside a mutation: its transaction). Checks and read rules run with policies
 * suspended, so a rule may look rows up (memberships, a parent's owner) without recursion.
 */
export type PolicyContext<Ctx, Db> = Ctx & { db: Db };

export interface ModelPolicy<Ctx, Where, Row, Db = unknown> {
  /**
   * Rows this context may read. Once a model has a policy, every operation without a rule is
   * refused (as with Postgres row-level security): write `read: () => true` for an open model.
   */
  read?: (ctx: PolicyContext<Ctx, Db>) => MaybePromise<ReadRule<Where>>;
  /** May this context create `row` (the row as written, defaults filled)? Absent: refused. */
  create?: (ctx: PolicyContext<Ctx, Db>, row: Row) => MaybePromise<boolean>;
  /** May this context change `row` into `next`? Only rows `read` admits are updated at all. Absent: refused. */
  update?: (ctx: PolicyContext<Ctx, Db>, row: Row, next: Row) => MaybePromise<boolean>;
  /** May this context delete `row`? Only rows `read` admits are deleted at all. Absent: refused. */
  delete?: (ctx: PolicyContext<Ctx, Db>, row: Row) => MaybePromise<boolean>;
}

/** The Prisma `where` type of a model delegate (`client.project`). */
export type WhereOf<Delegate> = Delegate extends { findMany: (args?: infer A) => unknown }
  ? NonNullable<A> extends { where?: infer W }
    ? NonNullable<W>
    : never
  : never;

/** The row type (scalars) of a model delegate. */
export type RowOf<Delegate> = Delegate extends { findFirstOrThrow: (...args: never[]) => infer R } ? Awaited<R> : never;

/** The model delegates of a generated PrismaClient: `project`, `task`, … */
export type ModelKey<Client> = {
  [K in keyof Client]: K extends `$${string}`
    ? never
    : Client[K] extends { findMany: (...args: never[]) => unknown; findFirstOrThrow: (...args: never[]) => unknown }
      ? K
      : never;
}[keyof Client] &
  string;

/** What rules get as `ctx.db`: the client without its lifecycle methods (as in a transaction). */
export type PolicyDb<Client> = Omit<Client, "$connect" | "$disconnect" | "$on" | "$transaction" | "$extends" | "$use">;

/**
 * Policies keyed by the model's client property (`project` for `model Project`), typed from the
 * app's generated client: `read` returns that model's `where`, checks receive its rows.
 */
export type Policies<Client, Ctx> = {
  [K in ModelKey<Client>]?: ModelPolicy<Ctx, WhereOf<Client[K]>, RowOf<Client[K]>, PolicyDb<Client>>;
};

/** Untyped form used inside Tether. */
export type AnyModelPolicy = ModelPolicy<unknown, unknown, Record<string, unknown>, unknown>;

export interface PolicyOptions {
  /**
   * Models with no entry in `policies`: "allow" (default) leaves them unrestricted, "deny" makes
   * them unreadable and unwritable through `ctx.db`.
   */
  unlistedModels?: "allow" | "deny";
  /**
   * Raw SQL through `ctx.db` (`$queryRaw`, `$executeRaw`, …) cannot be scoped by policies. Default
   * "deny" (FORBIDDEN); "allow" lets it run unscoped (use `store.db` for system work instead).
   */
  rawSql?: "allow" | "deny";
}

/** A policy that admits nothing: no reads, no writes (better-auth's tables get it by default). */
export const denyAll: AnyModelPolicy = Object.freeze({
  read: () => false,
  create: () => false,
  update: () => false,
  delete: () => false,
});
