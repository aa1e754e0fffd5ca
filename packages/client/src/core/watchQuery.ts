import type { QueryKey } from "@tanstack/query-core";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "./client.ts";
import { liveHash } from "./cache.ts";
import type { LiveStatus, LiveTarget } from "./live/index.ts";

/**
 * Follows one query live without React (the core of `watchJob` and `watchWorkflow`): `listener`
 * gets the cache entry's value and the subscription's status once per distinct (value, status,
 * error). Returns the function that stops watching.
 */
export function watchQuery<T>(
  client: TetherClient<AnyRouter>,
  target: { path: string; input: unknown; queryKey: QueryKey },
  listener: (data: T | undefined, status: LiveStatus, error: unknown) => void,
): () => void {
  const hash = liveHash(target.queryKey);
  const live: LiveTarget = { ...target, hash };
  // One message from the server reaches us twice, synchronously: the cache's update (while the
  // live status still says what it said before) and then the live status's own change. Both
  // schedule one emit at the end of the tick, which sees the settled state; a repeat of the last
  // delivered (value, status, error) is dropped. The cache keeps an unchanged value's object
  // (structural sharing), so identity tells a new state from a repeat.
  let last: { data: T | undefined; status: LiveStatus; error: unknown } | null = null;
  let scheduled = false;
  let stopped = false;
  const emit = () => {
    scheduled = false;
    if (stopped) return;
    const state = client.live.state(hash);
    const next = { data: client.queryClient.getQueryData<T>(target.queryKey), status: state.status, error: state.error };
    if (last && last.data === next.data && last.status === next.status && last.error === next.error) return;
    last = next;
    listener(next.data, next.status, next.error);
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(emit);
  };
  const stopCache = client.queryClient.getQueryCache().subscribe((event) => {
    if (event.query.queryHash === hash && event.type === "updated") schedule();
  });
  const stopState = client.live.subscribeKey(hash, schedule);
  const handle = client.live.acquire(live);
  // A query already live (another holder, a quick re-watch) changes nothing on its own: tell the
  // listener where it stands now.
  schedule();
  return () => {
    stopped = true;
    handle.release();
    stopState();
    stopCache();
  };
}
