import { LoroDoc, VersionVector } from "loro-crdt";
import pg from "pg";
import type { ModelMeta } from "../schema/index.ts";
import { hasNews } from "./codec.ts";
import { reconcile, type DocTarget } from "./target.ts";
import type { CrdtOptions } from "./types.ts";

/**
 * Raw SQL on whichever connection the caller is in: the mutation's Prisma transaction for a
 * push, a `store.sql` transaction for reads and reconciliation.
 */
export interface CrdtSql {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

interface StoredDoc {
  version: Uint8Array;
  pending_updates: number;
  pending_bytes: number | bigint | string;
}

const DOC_WHERE = `"model" = $1 AND "row_id" = $2 AND "field" = $3`;
const docParams = (t: DocTarget) => [t.model.name, t.rowId, t.field.name];

/** The CRDT column of the row (`FOR UPDATE` when `lock`): `null` when the row does not exist. */
export async function readColumn(sql: CrdtSql, t: DocTarget, lock: boolean): Promise<{ value: unknown } | null> {
  const rows = await sql.query<{ value: unknown }>(
    `SELECT ${t.sql.column} AS value FROM ${t.sql.table} WHERE ${t.sql.pk} = $1${lock ? " FOR UPDATE" : ""}`,
    [t.pkValue],
  );
  return rows[0] ?? null;
}

/** The document's bookkeeping. Read after the row lock is held, in a statement of its own (see editDoc). */
async function readStored(sql: CrdtSql, t: DocTarget): Promise<StoredDoc | null> {
  const rows = await sql.query<StoredDoc>(
    `SELECT "version", "pending_updates", "pending_bytes" FROM "_tether_crdt_docs" WHERE ${DOC_WHERE}`,
    docParams(t),
  );
  return rows[0] ?? null;
}

/**
 * The committed document: snapshot plus the logged updates, read in one statement (one
 * snapshot of the database, so a compaction committing in between cannot hide updates).
 * An empty document when none is stored yet.
 */
export async function loadDoc(sql: CrdtSql, t: DocTarget): Promise<LoroDoc> {
  const rows = await sql.query<{ data: Uint8Array }>(
    `SELECT 0::bigint AS ord, "snapshot" AS data FROM "_tether_crdt_docs" WHERE ${DOC_WHERE}
     UNION ALL
     SELECT "id", "data" FROM "_tether_crdt_updates" WHERE ${DOC_WHERE}
     ORDER BY ord`,
    docParams(t),
  );
  const doc = new LoroDoc();
  if (rows.length > 0) doc.importBatch(rows.map((r) => r.data));
  return doc;
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

/**
 * Decoded documents kept by a node for pushes. An entry is only used when its version equals
 * the stored one (read under the row lock): a push that rolled back, or a write from another
 * node, leaves them different, and the document is loaded again.
 */
export class DocCache {
  private readonly entries = new Map<string, { doc: LoroDoc; version: VersionVector }>();
  constructor(private readonly capacity: number) {}

  /** Takes the entry out (a push works on it until it puts it back). */
  take(key: string, stored: Uint8Array | null): LoroDoc | null {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    if (!entry || !stored) return null;
    try {
      return entry.version.compare(VersionVector.decode(stored)) === 0 ? entry.doc : null;
    } catch {
      return null;
    }
  }

  put(key: string, doc: LoroDoc): void {
    this.entries.delete(key);
    this.entries.set(key, { doc, version: doc.oplogVersion() });
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  evict(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface EditResult {
  doc: LoroDoc;
  /** Whether the stored document changed (an update was logged). */
  changed: boolean;
  compacted: boolean;
  /** The column's value before the edit (what the row held). */
  column: unknown;
}

/**
 * The one write path of a document, in the caller's transaction: lock the model row (every
 * writer of the row and of its documents serializes on it), load the document (or take it from the cache), reconcile it with the column if something else wrote
 * the column, apply `edit`, and log what changed — compacting when the log is long.
 * Returns null when the row does not exist (nothing is written: no orphan document).
 */
export async function editDoc(
  sql: CrdtSql,
  t: DocTarget,
  cache: DocCache,
  options: Required<CrdtOptions>,
  edit: (doc: LoroDoc) => void,
): Promise<EditResult | null> {
  // The model row's lock is the one every writer of its documents takes first (pushes,
  // reconciliation, and a DELETE whose trigger removes the documents), so the sidecar rows need
  // none of their own. What is read under it must come from statements that start after the lock
  // is granted: a joined sidecar row in the locking statement would come from that statement's
  // snapshot, taken before the previous holder committed (READ COMMITTED re-reads only the locked
  // row), and a stale version would let a stale cached document through.
  const row = await readColumn(sql, t, true);
  if (!row) return null;
  const stored = await readStored(sql, t);
  let doc = cache.take(t.key, stored?.version ?? null);
  try {
    doc ??= stored ? await loadDoc(sql, t) : new LoroDoc();
    const before = doc.oplogVersion();
    reconcile(t, doc, row.value);
    edit(doc);
    if (!hasNews(doc.oplogVersion(), before)) {
      cache.put(t.key, doc);
      return { doc, changed: false, compacted: false, column: row.value };
    }
    const update = doc.export({ mode: "update", from: before });
    const version = doc.oplogVersion().encode();
    const updates = (stored?.pending_updates ?? 0) + 1;
    const bytes = Number(stored?.pending_bytes ?? 0) + update.byteLength;
    const compact = !stored || updates >= options.compactEveryUpdates || bytes >= options.compactEveryBytes;
    if (!compact) {
      // The common push: log the update and bump the bookkeeping in one round trip.
      await sql.query(
        `WITH logged AS (
           INSERT INTO "_tether_crdt_updates" ("model", "row_id", "field", "data") VALUES ($1, $2, $3, $4) RETURNING "id")
         UPDATE "_tether_crdt_docs" SET "version" = $5, "pending_updates" = $6::int, "pending_bytes" = $7::bigint, "updated_at" = now()
          WHERE ${DOC_WHERE} AND EXISTS (SELECT 1 FROM logged)`,
        [...docParams(t), update, version, updates, bytes],
      );
      cache.put(t.key, doc);
      return { doc, changed: true, compacted: false, column: row.value };
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
      `INSERT INTO "_tether_crdt_docs" ("model", "row_id", "field", "snapshot", "version", "pending_updates", "pending_bytes")
       VALUES ($1, $2, $3, $4, $5, 1, $6::bigint)
       ON CONFLICT ("model", "row_id", "field") DO UPDATE SET "snapshot" = EXCLUDED."snapshot",
         "version" = EXCLUDED."version", "pending_updates" = 1, "pending_bytes" = EXCLUDED."pending_bytes", "updated_at" = now()`,
      [...docParams(t), snapshot, version, update.byteLength],
    );
    if (stored) {
      await sql.query(`DELETE FROM "_tether_crdt_updates" WHERE ${DOC_WHERE} AND "id" < $4::bigint`, [...docParams(t), updateId]);
    }
    cache.put(t.key, doc);
    return { doc, changed: true, compacted: !!stored, column: row.value };
  } catch (error) {
    cache.evict(t.key);
    throw error;
  }
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
