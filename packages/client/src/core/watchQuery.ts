import type { QueryKey } from "@tanstack/query-core";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "./client.ts";
import { liveHash } from "./cache.ts";
import type { LiveStatus, LiveTarget } from "./liveQuery.ts";

/**
 * Follows one query live without React (the core of `watchJob` and `watchWorkflow`): `listener`
 * gets the cache entry's value and the subscription's status on every change. Returns the
 * function that stops watching.
 */
export function watchQuery<T>(
  client: TetherClient<AnyRouter>,
  target: { path: string; input: unknown; queryKey: QueryKey },
  listener: (data: T | undefined, status: LiveStatus, error: unknown) => void,
): () => void {
  const hash = liveHash(target.queryKey);
  const live: LiveTarget = { ...target, hash };
  const emit = () => {
    const state = client.live.state(hash);
    listener(client.queryClient.getQueryData<T>(target.queryKey), state.status, state.error);
  };
  const stopCache = client.queryClient.getQueryCache().subscribe((event) => {
    if (event.query.queryHash === hash && event.type === "updated") emit();
  });
  const stopState = client.live.subscribeKey(hash, emit);
  const handle = client.live.acquire(live);
  return () => {
    handle.release();
    stopState();
    stopCache();
  };
}
