import type { ListPatch } from "@tether/protocol";

// What a live subscription streams is wire protocol (@tether/protocol); computing patches is the reactor's.
export { applyListPatch, type ListPatch, type LiveMessage } from "@tether/protocol";

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
