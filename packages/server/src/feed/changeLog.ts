import type { SqlConnection } from "../store/index.ts";
import type { Change } from "./types.ts";

/** One read of the change log, everything from one snapshot. */
export interface LogRead {
  /** Oldest transaction still running when the snapshot was taken (xid8 string). */
  xmin: string;
  /** Transactions below this may have been trimmed (null: never trimmed). */
  trimHorizon: string | null;
  /** Committed, undelivered transactions found, in delivery order, with their changes. */
  transactions: { xid: string; changes: Change[] }[];
  /** True when the read stopped at its limit and more transactions wait. */
  limited: boolean;
}

interface ReadRow {
  xmin: string;
  trim_horizon: string | null;
  tx_count: string | number;
  changes: Change[] | string;
}

/**
 * Committed transactions with xid ≥ horizon that are not in `seen`, up to `limit`, with all their
 * rows. Transactions are ordered by their last row's seq: when two transactions touch the same row
 * the second waits for the first's commit, so its write (and its last seq) come after all of the
 * first's — per-row commit order is kept, which is what readers of row state depend on.
 * Everything is read in one statement, hence from one snapshot (the xmin matches the rows).
 */
export async function readChanges(
  conn: SqlConnection,
  horizon: string,
  seen: readonly string[],
  limit: number,
): Promise<LogRead> {
  const [row] = await conn.query<ReadRow>(
    /* sql */ `
    WITH txs AS (
      SELECT xid, max(seq) AS last FROM "_tether_changes"
      WHERE xid >= $1::xid8 AND xid <> ALL (string_to_array($2, ',')::xid8[])
      GROUP BY xid ORDER BY last LIMIT $3
    )
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,
      (SELECT value FROM "_tether_meta" WHERE key = 'trim_horizon') AS trim_horizon,
      (SELECT count(*) FROM txs) AS tx_count,
      coalesce((
        SELECT json_agg(json_build_object(
          'seq', c.seq::text, 'xid', c.xid::text, 'table', c.tbl, 'op', c.op, 'pk', c.pk,
          'old', c.old, 'new', c.new, 'omitted', coalesce(c.omitted, '{}'), 'at', c.at
        ) ORDER BY t.last, c.seq)
        FROM txs t JOIN "_tether_changes" c ON c.xid = t.xid
        -- Repeating the range lets the planner reach the rows through the xid index; without it,
        -- it hash-joins against a scan of the whole log (milliseconds per read at 40k rows).
        WHERE c.xid >= $1::xid8
      ), '[]') AS changes`,
    [horizon, seen.join(","), limit],
  );
  if (!row) throw new Error("change-log read returned no row");
  const changes = typeof row.changes === "string" ? (JSON.parse(row.changes) as Change[]) : row.changes;
  const transactions: LogRead["transactions"] = [];
  for (const change of changes) {
    const last = transactions[transactions.length - 1];
    if (last && last.xid === change.xid) last.changes.push(change);
    else transactions.push({ xid: change.xid, changes: [change] });
  }
  return {
    xmin: row.xmin,
    trimHorizon: row.trim_horizon,
    transactions,
    limited: Number(row.tx_count) >= limit,
  };
}

/** The position "now": horizon = current xmin, seen = committed transactions ≥ it. */
export async function currentHorizon(conn: SqlConnection): Promise<{ horizon: string; seen: string[] }> {
  const [row] = await conn.query<{ xmin: string; seen: string | null }>(/* sql */ `
    WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
    SELECT snap.xmin::text AS xmin,
      (SELECT string_agg(DISTINCT c.xid::text, ',') FROM "_tether_changes" c WHERE c.xid >= snap.xmin) AS seen
    FROM snap`);
  if (!row) throw new Error("snapshot query returned no row");
  return { horizon: row.xmin, seen: row.seen ? row.seen.split(",") : [] };
}

export interface RetentionOptions {
  /** Keep changes younger than this (ms). */
  maxAgeMs: number;
  /** Keep at most about this many of the newest changes. */
  maxRows: number;
}

/**
 * Deletes whole transactions older than the retention window and raises the trim horizon, so a
 * reader whose cursor is below it learns it must resync instead of silently missing changes.
 * Never deletes a transaction that is still running (the bound is capped at the snapshot xmin).
 */
export async function trimChanges(
  conn: SqlConnection,
  retention: RetentionOptions,
  /** Never trim at or above this transaction id (the oldest horizon of this node's own readers). */
  keepFrom: string | null = null,
): Promise<{ deleted: number; horizon: string | null }> {
  const [row] = await conn.query<{ deleted: string | number; horizon: string | null }>(
    /* sql */ `
    WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
    bound AS (
      SELECT least(snap.xmin, coalesce($3::xid8, snap.xmin), greatest(
        coalesce((SELECT min(xid) FROM "_tether_changes" WHERE at >= now() - make_interval(secs => $1::float8 / 1000)), snap.xmin),
        coalesce((SELECT xid FROM "_tether_changes" ORDER BY seq DESC OFFSET $2 LIMIT 1), '0'::xid8)
      )) AS b FROM snap
    ),
    gone AS (DELETE FROM "_tether_changes" WHERE xid < (SELECT b FROM bound) RETURNING 1),
    mark AS (
      INSERT INTO "_tether_meta" (key, value)
      SELECT 'trim_horizon', (SELECT b FROM bound)::text WHERE EXISTS (SELECT 1 FROM gone)
      ON CONFLICT (key) DO UPDATE
        SET value = greatest("_tether_meta".value::xid8, excluded.value::xid8)::text
      RETURNING value
    )
    SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT value FROM mark) AS horizon`,
    [retention.maxAgeMs, retention.maxRows, keepFrom],
  );
  return { deleted: Number(row?.deleted ?? 0), horizon: row?.horizon ?? null };
}
