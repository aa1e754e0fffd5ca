import type { QueryKey } from "@tanstack/query-core";
import type { LiveInput, LiveMessage } from "@tether/protocol";
import type { StreamHandlers, Unsubscribable } from "../resumableStream.ts";

/**
 * A live query's state, as hooks show it:
 * - `idle`: not subscribed (disabled, or nobody asked);
 * - `connecting`: subscribed, no value from the subscription yet;
 * - `live`: the cache entry holds the subscription's latest value;
 * - `reconnecting`: it was live and lost its stream (connection dropped, server ended it); the
 *   cache keeps the last value until the stream resumes or resends;
 * - `error`: the subscription failed (bad input, forbidden, the query threw); retried with
 *   backoff unless the error is the caller's (4xx).
 */
export type LiveStatus = "idle" | "connecting" | "live" | "reconnecting" | "error";

export interface LiveState {
  readonly status: LiveStatus;
  /** Change-feed position the cached value reflects (null before the first value). */
  readonly position: string | null;
  /** Version of the last value applied (the server's per-query counter). */
  readonly version: number;
  readonly error: unknown;
}

export const IDLE_LIVE_STATE: LiveState = Object.freeze({ status: "idle", position: null, version: 0, error: null });

/** Which query to keep live, and where its value lives in the cache. */
export interface LiveTarget {
  /** Dotted procedure path, e.g. "tasks.byProject". */
  readonly path: string;
  readonly input: unknown;
  readonly queryKey: QueryKey;
  /** The cache's hash of `queryKey`: the registry's key, so one cache entry has one subscription. */
  readonly hash: string;
}

/** One `$live` event: the message and its tracked id (`<version>.<hash>`, to resume from). */
export interface LiveEvent {
  id?: string;
  data: LiveMessage;
}

export type LiveHandlers = StreamHandlers<LiveEvent>;

/** Opens one `$live` subscription. The tRPC client is one; tests can pass their own. */
export interface LiveTransport {
  subscribe(input: LiveInput, handlers: LiveHandlers): Unsubscribable;
}

/** Where live values go: the TanStack Query cache (see cache.ts), or a stand-in in tests. */
export interface LiveCache {
  read(queryKey: QueryKey): unknown;
  write(queryKey: QueryKey, data: unknown): void;
}
