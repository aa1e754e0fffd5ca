/**
 * The live-query wire format, as `$live` (packages/server/src/procedures/initTether.ts) streams it.
 *
 * Duplicated from the server on purpose: `@tether/server`'s runtime pulls in Node-only modules
 * (Prisma, pg, ws), and these few pure lines are all the client needs. `test/client/protocol.test.ts`
 * checks that both sides agree (types and behaviour), so a change on one side fails there.
 */

/** A list result changed: `order` is the new list of row ids; `upsert` the new or changed rows. */
export interface ListPatch {
  readonly order: readonly (string | number)[];
  readonly upsert: readonly Record<string, unknown>[];
}

/** What one `$live` event carries (inside tRPC's tracked envelope `{ id, data }`). */
export type LiveMessage<TData = unknown> =
  | { readonly kind: "full"; readonly version: number; readonly position: string; readonly data: TData }
  | { readonly kind: "patch"; readonly version: number; readonly position: string; readonly patch: ListPatch }
  | { readonly kind: "resumed"; readonly version: number; readonly position: string };

/** The input of the generic `$live` subscription. */
export interface LiveInput {
  path: string;
  input?: unknown;
  lastEventId?: string | null;
}

/** Name of the generic live subscription procedure that `tether.appRouter()` adds. */
export const LIVE_PROCEDURE = "$live";

/** Response header carrying the transaction ids a request's mutations committed: `<xid>,<xid>`. */
export const COMMIT_HEADER = "x-tether-commit";

/**
 * A call whose tRPC `context` has this key set to true goes over the WebSocket when the client
 * uses one (its subscriptions' socket), else over HTTP like other calls. For calls that need no
 * commit tracking and must not wait for a request of their own: CRDT pushes.
 */
export const VIA_SOCKET = "tetherViaSocket";

/**
 * Applies a patch to the rows the client holds (same as the server's `applyListPatch`).
 * Throws when the patch refers to a row that is neither kept nor carried: the caller resyncs.
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

/** Hash part of a tracked event id (`<version>.<hash>`): equal hashes mean equal results. */
export function eventHash(id: string | null | undefined): string | null {
  if (!id) return null;
  const dot = id.indexOf(".");
  return dot > 0 ? id.slice(dot + 1) || null : null;
}
