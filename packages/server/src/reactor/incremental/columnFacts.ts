import type { SqlConnection } from "../../store/index.ts";

/** What the catalog says about the app's columns, keyed `${table}.${column}` (see loadColumnFacts). */
export interface ColumnFacts {
  /** Columns whose change-log JSON converts to exactly the value Prisma returns. */
  readonly exact: ReadonlySet<string>;
  /** Exact columns whose Postgres ORDER BY JavaScript reproduces. */
  readonly orderable: ReadonlySet<string>;
}

export const NO_COLUMN_FACTS: ColumnFacts = { exact: new Set(), orderable: new Set() };

/**
 * The Prisma schema says `String` or `DateTime`, not `uuid`, `citext`, `char(n)`, `date` or
 * `timestamp(6)`: the catalog does. Exact: integers, floats, booleans, text/varchar, enums, and
 * timestamps at millisecond precision or coarser (a finer one holds values Prisma's Dates cannot
 * tell apart). Orderable: those but enums (declaration order), and text/varchar only under a
 * byte-order collation ("C"/"POSIX", the column's own or the database's libc default — every
 * other, libc "C.UTF-8" included, is the platform's business).
 */
const COLUMN_FACTS_SQL = `
  SELECT c.relname AS "table", a.attname AS "column",
    (t.typtype = 'e' OR a.atttypid IN ('text'::regtype, 'varchar'::regtype) AND NOT (
      a.attcollation IN ('"C"'::regcollation, '"POSIX"'::regcollation)
      OR (a.attcollation = '"default"'::regcollation AND d.provider = 'c' AND d.datcollate IN ('C', 'POSIX')))) AS "unordered"
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_type t ON t.oid = a.atttypid
  CROSS JOIN (SELECT datcollate, datlocprovider::text AS provider FROM pg_database WHERE datname = current_database()) d
  WHERE n.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped
    AND (
      a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'float4'::regtype, 'float8'::regtype, 'bool'::regtype, 'text'::regtype, 'varchar'::regtype)
      OR t.typtype = 'e'
      OR (a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype) AND a.atttypmod BETWEEN 0 AND 3)
    )`;

export async function loadColumnFacts(sql: Pick<SqlConnection, "query">): Promise<ColumnFacts> {
  const rows = await sql.query<{ table: string; column: string; unordered: boolean }>(COLUMN_FACTS_SQL);
  const exact = new Set<string>();
  const orderable = new Set<string>();
  for (const row of rows) {
    const key = `${row.table}.${row.column}`;
    exact.add(key);
    if (!row.unordered) orderable.add(key);
  }
  return { exact, orderable };
}
