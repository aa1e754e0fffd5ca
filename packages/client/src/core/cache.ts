import { hashKey, replaceEqualDeep, type Query, type QueryClient, type QueryKey, type QueryOptions } from "@tanstack/query-core";
import type { LiveCache, LiveQueryRegistry } from "./live/index.ts";

/**
 * Live values that already share structure with the server value before them: a patched list
 * keeps every unchanged row's object (applyListPatch), and a live query shares a full value with
 * its previous one itself (replaceEqualDeep). TanStack's structural sharing would compare them
 * deeply again on every write — with many subscriptions of a long list, that compare was a
 * client's largest cost (30% of a bench client process).
 */
const sharedLiveValues = new WeakSet<object>();

/** Marks a value the live path already shared structurally (see sharedLiveValues). */
export function markSharedLiveValue<T>(value: T): T {
  if (typeof value === "object" && value !== null) sharedLiveValues.add(value);
  return value;
}

type StructuralSharing = QueryOptions["structuralSharing"];

/** The functions liveStructuralSharing made (so it never wraps one of its own). */
const LIVE_SHARING = new WeakSet<object>();

/**
 * A query's `structuralSharing` that takes live values as they are (already shared) and treats
 * every other value as `fallback` would (TanStack's default: replaceEqualDeep).
 */
export function liveStructuralSharing(fallback: StructuralSharing): (previous: unknown, next: unknown) => unknown {
  if (typeof fallback === "function" && LIVE_SHARING.has(fallback)) return fallback as (previous: unknown, next: unknown) => unknown;
  const sharing = (previous: unknown, next: unknown): unknown => {
    if (typeof next === "object" && next !== null && sharedLiveValues.has(next)) return next;
    if (typeof fallback === "function") return fallback(previous, next);
    return fallback === false ? next : replaceEqualDeep(previous, next);
  };
  LIVE_SHARING.add(sharing);
  return sharing;
}


/** Live values go into the same TanStack Query cache entry `useQuery(sameOptions)` reads. */
export function queryClientCache(queryClient: QueryClient): LiveCache {
  /** Each live query's cache entry, by the live query's key object: no key hashing per write. */
  const entries = new WeakMap<QueryKey, Query>();
  const entryOf = (queryKey: QueryKey): Query => {
    const queries = queryClient.getQueryCache();
    const known = entries.get(queryKey);
    if (known && queries.get(known.queryHash) === known) return known;
    const defaults = queryClient.defaultQueryOptions({ queryKey });
    // An entry the live query creates takes live values as they are; one an observer created
    // has its options from the observer (useLiveQuery passes liveStructuralSharing too).
    const query =
      queries.get(defaults.queryHash) ??
      queries.build(queryClient, { ...defaults, structuralSharing: liveStructuralSharing(defaults.structuralSharing) });
    entries.set(queryKey, query as Query);
    return query as Query;
  };
  return {
    read: (queryKey) => queryClient.getQueryData(queryKey),
    write: (queryKey, data) => {
      if (data === undefined) return; // as setQueryData: undefined is not a value
      // What setQueryData does, minus finding the entry again.
      entryOf(queryKey).setData(markSharedLiveValue(data), { manual: true });
    },
  };
}

/** The registry's key for a query key: the cache's own hash (tRPC's options use the default). */
export function liveHash(queryKey: QueryKey): string {
  return hashKey(queryKey);
}

/**
 * A fetch that started before the subscription's value arrived can land after it with older
 * data (the HTTP response and the stream race). While a query is live, the stream is the
 * authority: a fetched (non-manual) value is replaced by the stream's. Manual writes
 * (`setQueryData`, optimistic updates) are left alone; the stream's next value replaces them.
 */
export function keepLiveValuesAuthoritative(queryClient: QueryClient, registry: LiveQueryRegistry): () => void {
  return queryClient.getQueryCache().subscribe((event) => {
    if (event.type !== "updated" || event.action.type !== "success" || event.action.manual) return;
    const live = registry.get(event.query.queryHash);
    if (!live || live.state.status !== "live") return;
    // Not inside the cache's own notification: write once it is done.
    queueMicrotask(() => live.restoreServerValue());
  });
}
