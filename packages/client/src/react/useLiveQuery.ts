import { useEffect, useMemo, useSyncExternalStore } from "react";
import {
  hashKey,
  skipToken,
  useQuery,
  type DefaultError,
  type QueryKey,
  type UseQueryOptions,
  type UseQueryResult,
} from "@tanstack/react-query";
import { liveStructuralSharing } from "../core/cache.ts";
import type { TetherClient } from "../core/client.ts";
import { IDLE_LIVE_STATE, type LiveStatus, type LiveTarget } from "../core/live/index.ts";
import type { AnyRouter } from "@trpc/server";

/** What `trpc.path.queryOptions(input)` gives: TanStack options plus tRPC's `{ trpc: { path } }`. */
export type LiveQueryOptions<TQueryFnData, TError, TData, TQueryKey extends QueryKey> = UseQueryOptions<
  TQueryFnData,
  TError,
  TData,
  TQueryKey
> & { trpc: { path: string } };

export interface UseLiveQueryOptions {
  /** Keep the query live (default true). False: a plain `useQuery`, no subscription. */
  live?: boolean;
}

export interface LiveQueryFields {
  /** "idle" when not subscribed (disabled); see LiveStatus. */
  liveStatus: LiveStatus;
  /** Change-feed position the data reflects, once the subscription delivered a value. */
  position: string | null;
  /** The subscription's error when `liveStatus` is "error". */
  liveError: unknown;
}

export type UseLiveQueryResult<TData, TError> = UseQueryResult<TData, TError> & LiveQueryFields;

/** The live target of tRPC query options: path from `trpc.path`, input from the query key. */
export function liveTargetOf(options: { queryKey: QueryKey; queryHash?: string; trpc?: { path?: string } }): LiveTarget {
  const path = options.trpc?.path;
  if (!path) {
    throw new Error("useLiveQuery needs tRPC query options: pass trpc.<path>.queryOptions(input)");
  }
  // [[...path], { input, type }] (a keyPrefix adds [prefix] in front): the input is in the last part.
  const last = options.queryKey[options.queryKey.length - 1];
  const input = typeof last === "object" && last !== null && !Array.isArray(last) ? (last as { input?: unknown }).input : undefined;
  return { path, input, queryKey: options.queryKey, hash: options.queryHash ?? hashKey(options.queryKey) };
}

/** `useLiveQuery` against a given Tether client (the React binding passes the provider's). */
export function useLiveQueryWith<TQueryFnData, TError = DefaultError, TData = TQueryFnData, TQueryKey extends QueryKey = QueryKey>(
  tether: TetherClient<AnyRouter>,
  options: LiveQueryOptions<TQueryFnData, TError, TData, TQueryKey>,
  liveOptions: UseLiveQueryOptions = {},
): UseLiveQueryResult<TData, TError> {
  const target = liveTargetOf(options);
  const enabled = liveOptions.live !== false && options.enabled !== false && options.queryFn !== skipToken;
  const registry = tether.live;
  const hash = target.hash;

  // Live values arrive already shared with the previous value (cache.ts): not compared again.
  const sharingFallback = options.structuralSharing ?? tether.queryClient.getDefaultOptions().queries?.structuralSharing;
  const structuralSharing = useMemo(() => liveStructuralSharing(sharingFallback), [sharingFallback]);
  const result = useQuery(
    // A live value is never stale: no refetch on mount, focus or reconnect while it streams.
    { ...options, structuralSharing, ...(enabled && options.staleTime === undefined ? { staleTime: Infinity } : {}) },
    tether.queryClient,
  );

  const state = useSyncExternalStore(
    (onChange) => (enabled ? registry.subscribeKey(hash, onChange) : () => undefined),
    () => (enabled ? registry.state(hash) : IDLE_LIVE_STATE),
    () => IDLE_LIVE_STATE,
  );

  useEffect(() => {
    if (!enabled) return;
    const handle = registry.acquire(target);
    return handle.release;
    // The hash identifies path + input; `target` is rebuilt every render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [registry, hash, enabled]);

  const liveStatus: LiveStatus = enabled && state.status === "idle" ? "connecting" : state.status;
  return Object.assign({}, result, { liveStatus, position: state.position, liveError: state.error });
}
