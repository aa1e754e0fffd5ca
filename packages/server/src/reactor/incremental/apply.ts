import type { Change } from "../../feed/index.ts";
import { matchesWhere } from "../predicate.ts";
import type { MaintainedList } from "./maintainable.ts";
import { toPrismaRow, type PrismaRow } from "./rowImage.ts";
import { compareRows } from "./sortOrder.ts";

/**
 * The list's result after `changes` (in commit order), computed from `rows` (its result before
 * them) without a query — or null when that is not provably what a re-run would return; the
 * caller then re-runs. `rows` is not modified.
 *
 * `complete` says whether `rows` is every matching row (no `take`, or fewer rows than `take`).
 * A full window knows nothing of the rows after it except that they sort after its last row, so
 * a row entering it is exact (insert, drop the last), a row sorting past it changes nothing, and
 * a row leaving it needs the next row from the database: null.
 */
export function applyChanges(list: MaintainedList, rows: readonly PrismaRow[], changes: readonly Change[]): PrismaRow[] | null {
  const { model, where, order, take } = list;
  const pk = model.primaryKey[0]!;
  const pkColumn = model.fields[pk]?.column ?? pk;
  const out = [...rows];
  let complete = take === undefined || out.length < take;
  for (const change of changes) {
    // Another table's change (a relation filter of the where reads it), TRUNCATE, left-out columns.
    if (change.table !== model.table || change.op === "TRUNCATE" || change.omitted.length > 0) return null;
    const wasIn = matchesWhere(where, change.old, model);
    const isIn = matchesWhere(where, change.new, model);
    if (wasIn === "unknown" || isIn === "unknown") return null;
    const id = (change.new ?? change.old)?.[pkColumn];
    if (change.old && change.new && change.old[pkColumn] !== id) return null; // a primary key moved
    const at = out.findIndex((row) => row[pk] === id);
    // The cache must agree with the old row image, value for value. It may not: a run's position
    // is where the feed stood when it started, and its snapshot can hold changes committed just
    // after, which the feed delivers later. Such a change finds its row already in a later state
    // (caught here), or absent; applied to an absent row, it can only add the row, and the row's
    // later change — delivered too — takes it out again, exactly or by leaving a full window (null).
    if (at >= 0 ? wasIn !== "match" || !sameRow(out[at]!, change.old, list) : wasIn === "match" && complete) return null;
    if (at >= 0) out.splice(at, 1);
    if (isIn === "no-match") {
      if (at >= 0 && !complete) return null; // left a full window: the next row is the database's
      continue;
    }
    const row = toPrismaRow(change.new!, model);
    if (!row || row[pk] !== id) return null;
    const position = insertionIndex(out, row, order);
    if (position === undefined) return null;
    if (position === out.length && !complete) {
      // Sorts after every known row of a window with unknown rows after it.
      if (at >= 0) return null; // it was in the window: an unseen row may now come before it
      continue; // it was not: it stays outside
    }
    out.splice(position, 0, row);
    if (take !== undefined && out.length > take) {
      out.length = take;
      complete = false;
    }
  }
  return out;
}

/** The cached row holds exactly the values of the captured row image. */
function sameRow(cached: PrismaRow, image: Change["old"], list: MaintainedList): boolean {
  const old = image && toPrismaRow(image, list.model);
  if (!old) return false;
  return Object.keys(old).every((name) => {
    const a = cached[name];
    const b = old[name];
    return a instanceof Date && b instanceof Date ? a.getTime() === b.getTime() : Object.is(a, b);
  });
}

/** Where `row` goes in sorted `rows` (binary search); undefined when any comparison is undecidable. */
function insertionIndex(rows: readonly PrismaRow[], row: PrismaRow, order: MaintainedList["order"]): number | undefined {
  let low = 0;
  let high = rows.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const c = compareRows(rows[mid]!, row, order);
    if (c === undefined || c === 0) return undefined; // 0: two rows with one primary key
    if (c < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}
