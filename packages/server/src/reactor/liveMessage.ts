/**
 * What a live subscription streams. `version` counts results of one query group; a client that
 * receives a patch whose version is not its own + 1 has missed one and must resubscribe.
 */
export type LiveMessage<TData = unknown> =
  | {
      readonly kind: "full";
      readonly version: number;
      /** Change-feed position the data reflects (at least). */
      readonly position: string;
      readonly data: TData;
    }
  | {
      readonly kind: "patch";
      readonly version: number;
      readonly position: string;
      readonly patch: ListPatch;
    }
  | {
      /** Resumed with the data the client already has (its lastEventId matched). */
      readonly kind: "resumed";
      readonly version: number;
      readonly position: string;
    };

/**
 * A list result changed: `order` is the new list of row ids; `upsert` holds the rows that are
 * new or changed. Rows of the old list whose id is not in `order` are gone.
 */
export interface ListPatch {
  readonly order: readonly (string | number)[];
  readonly upsert: readonly Record<string, unknown>[];
}

type Row = Record<string, unknown> & { id: string | number };

function isRowList(value: unknown): value is Row[] {
  if (!Array.isArray(value)) return false;
  const ids = new Set<unknown>();
  for (const row of value) {
    if (typeof row !== "object" || row === null) return false;
    const id = (row as { id?: unknown }).id;
    if ((typeof id !== "string" && typeof id !== "number") || ids.has(id)) return false;
    ids.add(id);
  }
  return true;
}

/**
 * The patch from `before` to `after` when both are lists of rows with unique ids and the patch
 * is worth sending (fewer than half the rows changed); otherwise null (send the full value).
 * `serialize` must be the same function that produced the hashes (stable JSON).
 */
export function diffLists(before: unknown, after: unknown, serialize: (v: unknown) => string): ListPatch | null {
  if (!isRowList(before) || !isRowList(after)) return null;
  const old = new Map(before.map((row) => [row.id, serialize(row)]));
  const upsert = after.filter((row) => old.get(row.id) !== serialize(row));
  if (upsert.length > after.length / 2 && after.length > 4) return null;
  return { order: after.map((row) => row.id), upsert };
}

/** Applies a patch (the client does the same); exported for tests and the client core. */
export function applyListPatch(before: readonly Record<string, unknown>[], patch: ListPatch): Record<string, unknown>[] {
  const rows = new Map<unknown, Record<string, unknown>>(before.map((row) => [row.id, row]));
  for (const row of patch.upsert) rows.set(row.id, row);
  return patch.order.map((id) => {
    const row = rows.get(id);
    if (!row) throw new Error(`patch refers to row ${String(id)} it does not carry`);
    return row;
  });
}
