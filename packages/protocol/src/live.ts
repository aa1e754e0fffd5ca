/**
 * The live-query wire format, as `$live` streams it (inside tRPC's tracked envelope `{ id, data }`).
 */

/**
 * A list result changed. The new list is the old one with rows `[start, start + remove)` replaced
 * by the rows whose ids are `insert` (the common head and tail of both lists stay as they are, so
 * a row added to or removed from a long list costs its own bytes, not the list's); then every row
 * of `upsert` (new or changed) goes to its index in the new list, given by `at` (same order).
 * A row of `insert` is either in `upsert` or one of the replaced rows, moved.
 */
export interface ListPatch {
  readonly start: number;
  readonly remove: number;
  readonly insert: readonly (string | number)[];
  readonly upsert: readonly Record<string, unknown>[];
  readonly at: readonly number[];
}

/**
 * What one `$live` event carries. `version` counts results of one query group; a client that
 * receives a patch whose version is not its own + 1 has missed one and must resubscribe.
 */
export type LiveMessage<TData = unknown> =
  | {
      readonly kind: "full";
      readonly version: number;
      /** Change-feed position the data reflects (at least): see `FeedPosition`. */
      readonly position: string;
      readonly data: TData;
    }
  | { readonly kind: "patch"; readonly version: number; readonly position: string; readonly patch: ListPatch }
  | {
      /** Resumed with the data the client already has (its lastEventId matched). */
      readonly kind: "resumed";
      readonly version: number;
      readonly position: string;
    };

/** The input of the generic `$live` subscription. */
export interface LiveInput {
  path: string;
  input?: unknown;
  lastEventId?: string | null;
}

/**
 * Applies a patch to the rows the client holds. Unchanged rows keep their objects. Throws when the
 * patch does not fit those rows (a range outside the list, a row it neither keeps nor carries, an
 * index holding another row): the caller resyncs.
 */
export function applyListPatch(
  before: readonly Record<string, unknown>[],
  patch: ListPatch,
): Record<string, unknown>[] {
  const { start, remove, insert, upsert, at } = patch;
  if (!(start >= 0 && remove >= 0 && start + remove <= before.length) || at.length !== upsert.length) {
    throw new Error(`patch does not fit a list of ${before.length} rows`);
  }
  const carried = new Map<unknown, Record<string, unknown>>(upsert.map((row) => [row.id, row]));
  const replaced = new Map<unknown, Record<string, unknown>>();
  for (let i = start; i < start + remove; i++) replaced.set(before[i]!.id, before[i]!);
  const middle = insert.map((id) => {
    const row = carried.get(id) ?? replaced.get(id);
    if (!row) throw new Error(`patch refers to row ${String(id)} it does not carry`);
    return row;
  });
  const after = before.slice(0, start).concat(middle, before.slice(start + remove));
  for (let i = 0; i < upsert.length; i++) {
    const row = upsert[i]!;
    if (after[at[i]!]?.id !== row.id) throw new Error(`patch puts row ${String(row.id)} where another row is`);
    after[at[i]!] = row;
  }
  return after;
}

/**
 * The tracked event id of a live message: `<version>.<hash>`, the hash of the result it brings the
 * client to. A client resuming with it as `lastEventId` gets "resumed" when the result is unchanged.
 */
export function encodeEventId(version: number, hash: string): string {
  return `${version}.${hash}`;
}

/** Hash part of a tracked event id (`<version>.<hash>`), or null when it is not one of ours. */
export function eventHash(id: string | null | undefined): string | null {
  if (!id) return null;
  const dot = id.indexOf(".");
  return dot > 0 ? id.slice(dot + 1) || null : null;
}
