import { withoutPolicies } from "./scope.ts";

interface RawClient {
  $queryRawUnsafe<T>(sql: string, ...params: unknown[]): Promise<T>;
}

/** A `{ query }` over raw SQL. */
export interface RawSql {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

/**
 * Raw SQL through a Prisma client (a mutation's transaction client: same transaction), outside
 * policies: for Tether's own tables (CRDT sidecars, job state, pg-boss's queue), which policies
 * do not cover and which `ctx.db` refuses raw SQL for.
 */
export function unscopedRawSql(db: unknown): RawSql {
  const raw = db as RawClient;
  return { query: <Row>(sql: string, params: readonly unknown[] = []) => withoutPolicies(() => raw.$queryRawUnsafe<Row[]>(sql, ...params)) };
}
