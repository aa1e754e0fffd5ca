import { hashKey, type QueryClient, type QueryKey } from "@tanstack/query-core";
import type { LiveCache, LiveQueryRegistry } from "./live/index.ts";

/** Live values go into the same TanStack Query cache entry `useQuery(sameOptions)` reads. */
export function queryClientCache(queryClient: QueryClient): LiveCache {
  return {
    read: (queryKey) => queryClient.getQueryData(queryKey),
    write: (queryKey, data) => {
      queryClient.setQueryData(queryKey, data);
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
