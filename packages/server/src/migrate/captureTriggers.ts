import pg from "pg";
import type { SqlConnection } from "../store/index.ts";

/** Tables that are never captured: Tether's own and Prisma's bookkeeping. */
function isInternal(table: string): boolean {
  return table.startsWith("_tether_") || table === "_prisma_migrations";
}

interface TableInfo {
  table: string;
  pk: string[] | null;
  binary: string[] | null;
}

/**
 * (Re)installs the change-capture triggers on every ordinary table of the current schema.
 * Reads the catalog rather than the Prisma schema so tables created by hand-written migration
 * SQL are captured too. Returns the captured table names.
 */
export async function installCaptureTriggers(conn: SqlConnection): Promise<string[]> {
  const tables = await conn.query<TableInfo>(/* sql */ `
    SELECT c.relname::text AS "table",
      (SELECT array_agg(a.attname::text ORDER BY k.ord)
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
      (SELECT array_agg(a.attname::text ORDER BY a.attnum)
         FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND a.atttypid = 'bytea'::regtype) AS "binary"
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    ORDER BY c.relname`);
  const captured: string[] = [];
  for (const { table, pk, binary } of tables) {
    if (isInternal(table)) continue;
    const name = pg.escapeIdentifier(table);
    const args = [pk ?? [], binary ?? []].map((cols) => pg.escapeLiteral(cols.join(","))).join(", ");
    await conn.exec(/* sql */ `
      CREATE OR REPLACE TRIGGER "_tether_capture" AFTER INSERT OR UPDATE OR DELETE ON ${name}
        FOR EACH ROW EXECUTE FUNCTION "_tether_capture"(${args});
      CREATE OR REPLACE TRIGGER "_tether_notify" AFTER INSERT OR UPDATE OR DELETE ON ${name}
        FOR EACH STATEMENT EXECUTE FUNCTION "_tether_notify"();
      CREATE OR REPLACE TRIGGER "_tether_capture_truncate" AFTER TRUNCATE ON ${name}
        FOR EACH STATEMENT EXECUTE FUNCTION "_tether_capture_truncate"();`);
    captured.push(table);
  }
  return captured;
}
