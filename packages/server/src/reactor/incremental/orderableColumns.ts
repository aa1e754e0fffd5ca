import type { SqlConnection } from "../../store/index.ts";
import type { OrderableColumns } from "./sortOrder.ts";

/**
 * Columns of the current schema whose ORDER BY Tether reproduces exactly in JavaScript:
 * integers, floats and booleans; text/varchar only under a byte-order collation ("C"/"POSIX",
 * explicit or the database's libc default — every other collation, "C.UTF-8" from libc included,
 * is the platform's business); timestamps only at millisecond precision or coarser (a finer one
 * orders values that Prisma's Dates cannot tell apart).
 */
const ORDERABLE_COLUMNS_SQL = `
  SELECT c.relname AS "table", a.attname AS "column"
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN (SELECT datcollate, datlocprovider::text AS provider FROM pg_database WHERE datname = current_database()) d
  WHERE n.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped
    AND (
      a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'float4'::regtype, 'float8'::regtype, 'bool'::regtype)
      OR (a.atttypid IN ('text'::regtype, 'varchar'::regtype) AND (
        a.attcollation IN ('"C"'::regcollation, '"POSIX"'::regcollation)
        OR (a.attcollation = '"default"'::regcollation AND d.provider = 'c' AND d.datcollate IN ('C', 'POSIX'))))
      OR (a.atttypid IN ('timestamp'::regtype, 'timestamptz'::regtype) AND a.atttypmod BETWEEN 0 AND 3)
    )`;

export async function loadOrderableColumns(sql: Pick<SqlConnection, "query">): Promise<OrderableColumns> {
  const rows = await sql.query<{ table: string; column: string }>(ORDERABLE_COLUMNS_SQL);
  return new Set(rows.map((r) => `${r.table}.${r.column}`));
}
