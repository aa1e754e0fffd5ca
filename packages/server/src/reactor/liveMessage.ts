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
 * The replaced range is what lies between the lists' common head and tail, so an insert, a
 * removal or a move within one stretch carries only that stretch's ids.
 * `serialize` must be the same function that produced the hashes (stable JSON).
 */
export function diffLists(before: unknown, after: unknown, serialize: (v: unknown) => string): ListPatch | null {
  if (!isRowList(before) || !isRowList(after)) return null;
  const old = new Map(before.map((row) => [row.id, serialize(row)]));
  const upsert: Row[] = [];
  const at: number[] = [];
  after.forEach((row, index) => {
    if (old.get(row.id) === serialize(row)) return;
    upsert.push(row);
    at.push(index);
  });
  if (upsert.length > after.length / 2 && after.length > 4) return null;
  let head = 0;
  while (head < before.length && head < after.length && before[head]!.id === after[head]!.id) head += 1;
  let tail = 0;
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    before[before.length - 1 - tail]!.id === after[after.length - 1 - tail]!.id
  ) {
    tail += 1;
  }
  const insert = after.slice(head, after.length - tail).map((row) => row.id);
  return { start: head, remove: before.length - head - tail, insert, upsert, at };
}
