/**
 * What a scoped read leaves out of the query and puts back into its result. A nested list
 * relation (or a `_count` entry) whose model admits no row for this caller is not sent to Prisma
 * at all (that would need a `where` no row satisfies, which Prisma cannot be trusted with):
 * it is removed from the `include`/`select` and filled in here as `[]` (or `0`).
 */
export interface Fill {
  /** List relations the caller may read nothing of: `[]` in every row. */
  readonly emptyLists: string[];
  /** `_count` entries of relations the caller may read nothing of: `0` in every row. */
  readonly zeroCounts: string[];
  /** Keys selected only so that a `select` is not left empty: removed from every row. */
  readonly placeholders: string[];
  /** Fills inside the rows of included relations. */
  readonly nested: Record<string, Fill>;
}

export const emptyFill = (): Fill => ({ emptyLists: [], zeroCounts: [], placeholders: [], nested: {} });

/** True when the fill changes nothing. */
export function isEmptyFill(fill: Fill): boolean {
  return fill.emptyLists.length === 0 && fill.zeroCounts.length === 0 && fill.placeholders.length === 0 && Object.keys(fill.nested).length === 0;
}

/** Applies `fill` to a query's result: a row, a list of rows, or null. */
export function applyFill<T>(result: T, fill: Fill | null): T {
  if (!fill) return result;
  if (Array.isArray(result)) {
    for (const row of result) fillRow(row, fill);
  } else fillRow(result, fill);
  return result;
}

function fillRow(row: unknown, fill: Fill): void {
  if (typeof row !== "object" || row === null) return;
  const out = row as Record<string, unknown>;
  for (const [name, inner] of Object.entries(fill.nested)) applyFill(out[name], inner);
  for (const name of fill.emptyLists) out[name] = [];
  if (fill.zeroCounts.length > 0) {
    const counts = typeof out._count === "object" && out._count !== null ? (out._count as Record<string, unknown>) : {};
    for (const name of fill.zeroCounts) counts[name] = 0;
    out._count = counts;
  }
  for (const name of fill.placeholders) delete out[name];
}
