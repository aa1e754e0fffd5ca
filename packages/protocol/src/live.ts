/**
 * The live-query wire format, as `$live` streams it (inside tRPC's tracked envelope `{ id, data }`).
 */

/**
 * A list result changed: `order` is the new list of row ids; `upsert` holds the rows that are new
 * or changed. Rows of the old list whose id is not in `order` are gone.
 */
export interface ListPatch {
  readonly order: readonly (string | number)[];
  readonly upsert: readonly Record<string, unknown>[];
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
 * Applies a patch to the rows the client holds. Throws when the patch refers to a row that is
 * neither kept nor carried: the caller resyncs.
 */
export function applyListPatch(
  before: readonly Record<string, unknown>[],
  patch: ListPatch,
): Record<string, unknown>[] {
  const rows = new Map<unknown, Record<string, unknown>>(before.map((row) => [row.id, row]));
  for (const row of patch.upsert) rows.set(row.id, row);
  return patch.order.map((id) => {
    const row = rows.get(id);
    if (!row) throw new Error(`patch refers to row ${String(id)} it does not carry`);
    return row;
  });
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
