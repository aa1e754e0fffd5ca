import type { QueryKey } from "@tanstack/query-core";
import type { BackoffOptions } from "../backoff.ts";
import { DEFAULT_REF_COUNTED, RefCountedRegistry } from "../refCountedRegistry.ts";
import type { Timers } from "../timers.ts";
import { LiveQuery, type LiveQueryOwner } from "./liveQuery.ts";
import { waitForQueries, type WaitForCommitOptions } from "./readYourWrites.ts";
import { IDLE_LIVE_STATE, type LiveCache, type LiveState, type LiveTarget, type LiveTransport } from "./types.ts";

export interface LiveQueryRegistryOptions {
  transport: LiveTransport;
  cache: LiveCache;
  /**
   * How long a query with no users keeps its subscription, ms (default
   * `DEFAULT_REF_COUNTED.releaseDelayMs`, 100): a component that unmounts and mounts again (React
   * StrictMode, a route change) does not churn the server.
   */
  unsubscribeDelayMs?: number;
  /** Backoff for resubscribing after the server ended a stream or a retriable error. */
  retry?: BackoffOptions;
  /** Timers of the unsubscribe delay (tests). */
  timers?: Timers;
}

export interface LiveRegistryStats {
  /** Live queries in the registry (each one subscription). */
  queries: number;
  /** Subscriptions opened since start (first opens, resubscribes, resyncs; probes excluded). */
  subscribes: number;
  /** Full resyncs after a version gap or an unusable patch. */
  resyncs: number;
  /** One-shot position probes (read-your-writes). */
  probes: number;
}

/**
 * Every live query of one client, keyed by cache-entry hash: many components on one query share
 * one subscription (reference-counted), and a query nobody uses is unsubscribed after
 * `unsubscribeDelayMs`.
 */
export class LiveQueryRegistry {
  private readonly queries: RefCountedRegistry<LiveQuery>;
  private readonly keyListeners = new Map<string, Set<() => void>>();
  private readonly anyListeners = new Set<() => void>();
  private readonly owner: LiveQueryOwner;

  constructor(private readonly options: LiveQueryRegistryOptions) {
    this.queries = new RefCountedRegistry<LiveQuery>({
      name: "live queries",
      dispose: (query) => query.dispose(),
      releaseDelayMs: options.unsubscribeDelayMs ?? DEFAULT_REF_COUNTED.releaseDelayMs,
      timers: options.timers,
    });
    this.owner = {
      counters: { subscribes: 0, resyncs: 0, probes: 0 },
      users: (query) => (this.queries.get(query.target.hash) === query ? this.queries.users(query.target.hash) : 0),
      changed: (query) => this.changed(query),
      forget: (query) => this.queries.forget(query.target.hash, query),
    };
  }

  /** Starts (or joins) the live query for `target`; call `release` when done (idempotent). */
  acquire(target: LiveTarget): { query: LiveQuery; release(): void } {
    const lease = this.queries.acquire(
      target.hash,
      () => new LiveQuery(target, this.owner, { transport: this.options.transport, cache: this.options.cache, retry: this.options.retry }),
    );
    lease.value.start();
    return { query: lease.value, release: lease.release };
  }

  get(hash: string): LiveQuery | undefined {
    return this.queries.get(hash);
  }

  /** The state of the live query at `hash` (IDLE_LIVE_STATE when there is none). */
  state(hash: string): LiveState {
    return this.queries.get(hash)?.state ?? IDLE_LIVE_STATE;
  }

  /** Listens to state changes of the live query at `hash`, present or future. */
  subscribeKey(hash: string, listener: () => void): () => void {
    let set = this.keyListeners.get(hash);
    if (!set) this.keyListeners.set(hash, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.keyListeners.get(hash) === set) this.keyListeners.delete(hash);
    };
  }

  /** Listens to every state change (the SSE connection status is derived from them). */
  subscribeAll(listener: () => void): () => void {
    this.anyListeners.add(listener);
    return () => {
      this.anyListeners.delete(listener);
    };
  }

  all(): LiveQuery[] {
    return this.queries.values();
  }

  stats(): LiveRegistryStats {
    return { queries: this.queries.size, ...this.owner.counters };
  }

  /** Retry every waiting resubscribe now. */
  wake(): void {
    for (const query of this.queries.values()) query.wake();
  }

  /**
   * Resolves once every live query in use (or the listed ones) reflects all of `commits`
   * (transaction ids from `x-tether-commit`): read-your-writes. Queries that end meanwhile
   * (unmounted, failed) stop counting. Rejects with CommitWaitTimeoutError after `timeoutMs`.
   */
  waitForCommit(commits: string | readonly string[], options: WaitForCommitOptions & { hashOf: (key: QueryKey) => string }): Promise<void> {
    const xids = typeof commits === "string" ? [commits] : [...commits];
    const targets = options.queries
      ? options.queries.map((key) => this.queries.get(options.hashOf(key))).filter((q): q is LiveQuery => !!q)
      : this.all().filter((q) => q.users > 0);
    return waitForQueries(targets, xids, options);
  }

  /** Ends every subscription. */
  close(): void {
    void this.queries.close();
  }

  private changed(query: LiveQuery): void {
    const set = this.keyListeners.get(query.target.hash);
    if (set) for (const listener of [...set]) listener();
    for (const listener of [...this.anyListeners]) listener();
  }
}
