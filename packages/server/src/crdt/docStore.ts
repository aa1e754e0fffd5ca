import { LoroDoc, VersionVector } from "loro-crdt";
import pg from "pg";
import type { ModelMeta } from "../schema/index.ts";
import type { DocTarget } from "./target.ts";
import type { CrdtOptions } from "./types.ts";

/**
 * Raw SQL on whichever connection the caller is in: the mutation's Prisma transaction for a
 * push, a `store.sql` transaction for reads and reconciliation.
 */
export interface CrdtSql {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

export interface StoredDoc {
  version: Uint8Array;
  pending_updates: number;
  pending_bytes: number | bigint | string;
  /** md5 of the column as last projected (or seeded from); null: from before projections were tracked. */
  projected: string | null;
  projected_version: Uint8Array | null;
}

const DOC_WHERE = `"model" = $1 AND "row_id" = $2 AND "field" = $3`;
const docParams = (t: DocTarget) => [t.model.name, t.rowId, t.field.name];

/**
 * Locks the model row (`FOR UPDATE`) and returns the md5 of its CRDT column — not the column
 * itself, which can be large and is only needed when someone else wrote it. `null`: no row.
 * Every writer of a row's documents takes this lock first (pushes, projections, and a DELETE
 * whose trigger removes the documents), so the sidecar rows need none of their own.
 */
export async function lockRow(sql: CrdtSql, t: DocTarget): Promise<{ md5: string | null } | null> {
  const rows = await sql.query<{ md5: string | null }>(
    `SELECT md5(${t.sql.column}::text) AS md5 FROM ${t.sql.table} WHERE ${t.sql.pk} = $1 FOR UPDATE`,
    [t.pkValue],
  );
  return rows[0] ?? null;
}

/** The CRDT column of the row: `null` when the row does not exist. */
export async function readColumn(sql: CrdtSql, t: DocTarget): Promise<{ value: unknown } | null> {
  const rows = await sql.query<{ value: unknown }>(`SELECT ${t.sql.column} AS value FROM ${t.sql.table} WHERE ${t.sql.pk} = $1`, [t.pkValue]);
  return rows[0] ?? null;
}

/**
 * The document's bookkeeping. Read after the row lock is held, in a statement of its own: a
 * joined sidecar row in the locking statement would come from that statement's snapshot, taken
 * before the previous holder committed (READ COMMITTED re-reads only the locked row).
 */
export async function readStored(sql: CrdtSql, t: DocTarget): Promise<StoredDoc | null> {
  const rows = await sql.query<StoredDoc>(
    `SELECT "version", "pending_updates", "pending_bytes", "projected", "projected_version" FROM "_tether_crdt_docs" WHERE ${DOC_WHERE}`,
    docParams(t),
  );
  return rows[0] ?? null;
}

/**
 * The committed document, DETACHED: snapshot plus the logged updates, read in one statement (one
 * snapshot of the database, so a compaction committing in between cannot hide updates). Imports
 * into a detached Loro document only extend its oplog (0.02–0.06 ms for a concurrent text edit,
 * against 9–36 ms growing with history when the state is kept current): the server reads the
 * state only to project it (see `latest`). An empty document when none is stored yet.
 */
export async function loadDoc(sql: CrdtSql, t: DocTarget): Promise<{ doc: LoroDoc; through: number }> {
  const rows = await sql.query<{ ord: string | number | bigint; data: Uint8Array }>(
    `SELECT 0::bigint AS ord, "snapshot" AS data FROM "_tether_crdt_docs" WHERE ${DOC_WHERE}
     UNION ALL
     SELECT "id", "data" FROM "_tether_crdt_updates" WHERE ${DOC_WHERE}
     ORDER BY ord`,
    docParams(t),
  );
  const doc = new LoroDoc();
  doc.detach();
  if (rows.length > 0) doc.importBatch(rows.map((r) => r.data));
  // Ids of one document's log grow in commit order (taken under the row lock): every update up to
  // the last one loaded is in this copy, whatever the feed says about it later.
  return { doc, through: rows.length > 0 ? Number(rows[rows.length - 1]!.ord) : 0 };
}

/** Runs `fn` on the document's current state (checked out to the latest version), then detaches it again. */
export function atLatest<T>(doc: LoroDoc, fn: (doc: LoroDoc) => T): T {
  doc.checkoutToLatest();
  try {
    return fn(doc);
  } finally {
    doc.detach();
  }
}

/** Fetches logged updates by id (those still there: compaction may have folded the rest). */
export async function fetchUpdates(sql: CrdtSql, ids: readonly number[]): Promise<Map<number, Uint8Array>> {
  const safe = ids.filter((id) => Number.isSafeInteger(id));
  if (safe.length === 0) return new Map();
  const rows = await sql.query<{ id: string | number | bigint; data: Uint8Array }>(
    `SELECT "id", "data" FROM "_tether_crdt_updates" WHERE "id" IN (${safe.join(",")})`,
  );
  return new Map(rows.map((r) => [Number(r.id), r.data]));
}

/** Whether `doc` holds exactly the stored version (else another node or a rolled-back commit moved on). */
export function isAt(doc: LoroDoc, stored: Uint8Array): boolean {
  try {
    return doc.oplogVersion().compare(VersionVector.decode(stored)) === 0;
  } catch {
    return false;
  }
}

export interface Appended {
  /** The logged update's id (other nodes fetch it when the change feed tells them). */
  id: number;
  compacted: boolean;
}

/**
 * Logs what `doc` gained since `before`, in the caller's transaction (under the row lock): one
 * update row and the bookkeeping in one round trip, or — every `compactEvery…`, and for a new
 * document — a snapshot replacing the log. `projected`: the column's md5 now known to be in the
 * document (seeded or reconciled from it); null leaves the stored one.
 */
export async function appendUpdate(
  sql: CrdtSql,
  t: DocTarget,
  stored: StoredDoc | null,
  doc: LoroDoc,
  before: VersionVector,
  projected: string | null,
  options: Required<CrdtOptions>,
): Promise<Appended> {
  const update = doc.export({ mode: "update", from: before });
  const version = doc.oplogVersion().encode();
  const updates = (stored?.pending_updates ?? 0) + 1;
  const bytes = Number(stored?.pending_bytes ?? 0) + update.byteLength;
  const compact = !stored || updates >= options.compactEveryUpdates || bytes >= options.compactEveryBytes;
  if (!compact) {
    const rows = await sql.query<{ id: string | number | bigint }>(
      `WITH logged AS (
         INSERT INTO "_tether_crdt_updates" ("model", "row_id", "field", "data") VALUES ($1, $2, $3, $4) RETURNING "id"),
       bookkept AS (
         UPDATE "_tether_crdt_docs" SET "version" = $5, "pending_updates" = $6::int, "pending_bytes" = $7::bigint,
           "projected" = coalesce($8, "projected"), "updated_at" = now()
          WHERE ${DOC_WHERE} AND EXISTS (SELECT 1 FROM logged))
       SELECT "id" FROM logged`,
      [...docParams(t), update, version, updates, bytes, projected],
    );
    return { id: Number(rows[0]!.id), compacted: false };
  }
  const inserted = await sql.query<{ id: string | number | bigint }>(
    `INSERT INTO "_tether_crdt_updates" ("model", "row_id", "field", "data") VALUES ($1, $2, $3, $4) RETURNING "id"`,
    [...docParams(t), update],
  );
  const updateId = String(inserted[0]!.id);
  // Compaction (or the first write): the snapshot now holds everything; the update just logged
  // stays (other nodes fetch it by id when the change feed tells them), everything before it goes.
  const snapshot = doc.export({ mode: "snapshot" });
  await sql.query(
    `INSERT INTO "_tether_crdt_docs" ("model", "row_id", "field", "snapshot", "version", "pending_updates", "pending_bytes", "projected")
     VALUES ($1, $2, $3, $4, $5, 1, $6::bigint, $7)
     ON CONFLICT ("model", "row_id", "field") DO UPDATE SET "snapshot" = EXCLUDED."snapshot",
       "version" = EXCLUDED."version", "pending_updates" = 1, "pending_bytes" = EXCLUDED."pending_bytes",
       "projected" = coalesce(EXCLUDED."projected", "_tether_crdt_docs"."projected"), "updated_at" = now()`,
    [...docParams(t), snapshot, version, update.byteLength, projected],
  );
  if (stored) {
    await sql.query(`DELETE FROM "_tether_crdt_updates" WHERE ${DOC_WHERE} AND "id" < $4::bigint`, [...docParams(t), updateId]);
  }
  return { id: Number(updateId), compacted: !!stored };
}

/**
 * Writes the document's value into the model's column (plain SQL: the pushes were write-checked;
 * change capture still sees it) unless it already holds it, and records what was projected.
 * Returns the column's md5 afterwards.
 */
export async function writeProjection(sql: CrdtSql, t: DocTarget, value: unknown, version: Uint8Array, current: string | null): Promise<string | null> {
  const json = t.field.type === "Json";
  const param = json || typeof value !== "string" ? JSON.stringify(value) : value;
  const cast = json ? "::jsonb" : "";
  const rows = await sql.query<{ md5: string | null }>(
    `UPDATE ${t.sql.table} SET ${t.sql.column} = $1${cast} WHERE ${t.sql.pk} = $2 AND ${t.sql.column} IS DISTINCT FROM $1${cast}
     RETURNING md5(${t.sql.column}::text) AS md5`,
    [param, t.pkValue],
  );
  const md5 = rows.length > 0 ? rows[0]!.md5 : current;
  await sql.query(`UPDATE "_tether_crdt_docs" SET "projected" = $4, "projected_version" = $5 WHERE ${DOC_WHERE}`, [...docParams(t), md5, version]);
  return md5;
}

/** Documents whose column lags their version (a projection was due when a node stopped). */
export async function staleProjections(sql: CrdtSql): Promise<Array<{ model: string; row_id: string; field: string }>> {
  return sql.query(
    `SELECT "model", "row_id", "field" FROM "_tether_crdt_docs" WHERE "projected_version" IS DISTINCT FROM "version"`,
  );
}

/** SQL that makes deleting (or truncating) a model's rows delete their documents. */
export function deletionTriggerSql(model: ModelMeta): string[] {
  const table = pg.escapeIdentifier(model.table);
  const name = pg.escapeLiteral(model.name);
  const pk = pg.escapeLiteral(model.fields[model.primaryKey[0]!]?.column ?? "id");
  return [
    `CREATE OR REPLACE TRIGGER "_tether_crdt_row_deleted" AFTER DELETE ON ${table}
       FOR EACH ROW EXECUTE FUNCTION "_tether_crdt_row_deleted"(${name}, ${pk})`,
    `CREATE OR REPLACE TRIGGER "_tether_crdt_truncated" AFTER TRUNCATE ON ${table}
       FOR EACH STATEMENT EXECUTE FUNCTION "_tether_crdt_truncated"(${name})`,
  ];
}

/** Whether a model's deletion trigger is installed. */
export async function hasDeletionTrigger(sql: CrdtSql, model: ModelMeta): Promise<boolean> {
  const rows = await sql.query<{ n: number }>(
    `SELECT 1 AS n FROM pg_trigger WHERE tgname = '_tether_crdt_row_deleted' AND tgrelid = to_regclass($1)`,
    [pg.escapeIdentifier(model.table)],
  );
  return rows.length > 0;
}
