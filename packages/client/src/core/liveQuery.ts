import { isPermanentError } from "./errors.ts";
import { replaceEqualDeep, type QueryKey } from "@tanstack/query-core";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { positionIncludes } from "@tether/protocol";
import { applyListPatch, eventHash, type LiveInput, type LiveMessage } from "@tether/protocol";
import { Subscribable } from "./subscribable.ts";

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

/** tRPC's per-subscription connection state (wsLink and httpSubscriptionLink report it). */
export interface TransportState {
  state: "idle" | "connecting" | "pending";
  error: unknown;
}

export interface LiveHandlers {
  onData(event: { id?: string; data: LiveMessage }): void;
  onError(error: unknown): void;
  /** The stream ended (server stopped it, or the client was closed). */
  onComplete(): void;
  onConnectionStateChange?(state: TransportState): void;
}

/** Opens one `$live` subscription. The tRPC client is one; tests can pass their own. */
export interface LiveTransport {
  subscribe(input: LiveInput, handlers: LiveHandlers): { unsubscribe(): void };
}

/** Where live values go: the TanStack Query cache (see cache.ts), or a stand-in in tests. */
export interface LiveCache {
  read(queryKey: QueryKey): unknown;
  write(queryKey: QueryKey, data: unknown): void;
}

export interface LiveQueryRegistryOptions {
  transport: LiveTransport;
  cache: LiveCache;
  /**
   * How long a query with no users keeps its subscription, ms (default 100): a component that
   * unmounts and mounts again (React StrictMode, a route change) does not churn the server.
   */
  unsubscribeDelayMs?: number;
  /** Backoff for resubscribing after the server ended a stream or a retriable error. */
  retry?: BackoffOptions;
}

export interface WaitForCommitOptions {
  /** Only these queries (their query keys, e.g. `trpc.x.queryKey(input)`); default: every live query in use. */
  queries?: readonly QueryKey[];
  /** Give up after this long (rejects with CommitWaitTimeoutError). Default 10 000 ms. */
  timeoutMs?: number;
  /**
   * A query the write did not affect gets no new value, so it never reports a newer position by
   * itself: after this long (doubling up to 1 s) the client asks the server whether its value is
   * still current, and if so at which position. Default 50 ms.
   */
  probeDelayMs?: number;
}

export class CommitWaitTimeoutError extends Error {
  constructor(
    readonly commits: readonly string[],
    readonly pending: readonly string[],
  ) {
    super(`live queries did not reflect commit ${commits.join(",")} in time (still waiting: ${pending.join(", ")})`);
    this.name = "CommitWaitTimeoutError";
  }
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
 * One live query: one `$live` subscription shared by every user of the same cache entry.
 * Keeps the server's value (`base`) apart from the cache, so patches always apply to the
 * server's truth even while the cache shows an optimistic value, which they then replace.
 */
export class LiveQuery extends Subscribable {
  private current: LiveState = { status: "connecting", position: null, version: 0, error: null };
  private refs = 0;
  private stream: { unsubscribe(): void } | null = null;
  /** Bumped on every (re)subscribe: callbacks of an older stream are ignored. */
  private generation = 0;
  private base: unknown = undefined;
  private hasBase = false;
  private lastEventId: string | null = null;
  private readonly retry: Backoff;
  private retrying = false;
  private releaseTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;

  constructor(
    readonly target: LiveTarget,
    private readonly registry: LiveQueryRegistry,
    private readonly options: Required<Pick<LiveQueryRegistryOptions, "transport" | "cache" | "unsubscribeDelayMs">> & {
      retry?: BackoffOptions;
    },
  ) {
    super();
    this.retry = new Backoff(options.retry);
  }

  get state(): LiveState {
    return this.current;
  }

  /** Users of this query right now. */
  get users(): number {
    return this.refs;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The server's last value (not the cache's, which may be optimistic), if any. */
  serverValue(): { value: unknown } | null {
    return this.hasBase ? { value: this.base } : null;
  }

  /** Puts the server's value back into the cache (after a fetch or an optimistic write). */
  restoreServerValue(): void {
    if (this.hasBase && this.options.cache.read(this.target.queryKey) !== this.base) {
      this.options.cache.write(this.target.queryKey, this.base);
    }
  }

  retain(): void {
    this.refs += 1;
    if (this.releaseTimer) {
      clearTimeout(this.releaseTimer);
      this.releaseTimer = null;
    }
    if (!this.stream && !this.retrying) this.open(false);
  }

  release(): void {
    this.refs = Math.max(0, this.refs - 1);
    if (this.refs > 0 || this.releaseTimer) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = null;
      if (this.refs === 0) this.dispose();
    }, this.options.unsubscribeDelayMs);
  }

  /** Ends the subscription and leaves the registry. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.generation += 1;
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.retry.close();
    this.stream?.unsubscribe();
    this.stream = null;
    this.registry.forget(this);
    this.set(IDLE_LIVE_STATE);
  }

  /** Retry now instead of after the backoff (back online, tab visible). */
  wake(): void {
    this.retry.wake();
  }

  /** Drops the stream and asks for the full value again (version gap, unusable patch). */
  resync(): void {
    if (this.disposed) return;
    this.registry.counters.resyncs += 1;
    this.open(false);
  }

  private open(resume: boolean): void {
    if (this.disposed) return;
    this.stream?.unsubscribe();
    this.stream = null;
    const generation = ++this.generation;
    const live = () => generation === this.generation && !this.disposed;
    const input: LiveInput = { path: this.target.path, input: this.target.input };
    if (resume && this.lastEventId) input.lastEventId = this.lastEventId;
    else {
      // A fresh stream starts over at the server's version (it sends the full value first).
      this.lastEventId = null;
    }
    this.registry.counters.subscribes += 1;
    const stream = this.options.transport.subscribe(input, {
      onData: (event) => live() && this.receive(event),
      onError: (error) => live() && this.fail(error),
      onComplete: () => live() && this.ended(),
      onConnectionStateChange: (state) => live() && this.connectionChanged(state),
    });
    // Callbacks may have run synchronously and ended this stream already.
    if (live()) this.stream = stream;
    else stream.unsubscribe();
  }

  private receive(event: { id?: string; data: LiveMessage }): void {
    const message = event.data;
    const cache = this.options.cache;
    switch (message.kind) {
      case "full":
        // Unchanged parts keep their objects (renders and memos see them as unchanged); the
        // cache takes the result as it is (markSharedLiveValue in cache.ts).
        this.base = this.hasBase ? replaceEqualDeep(this.base, message.data) : message.data;
        this.hasBase = true;
        cache.write(this.target.queryKey, this.base);
        break;
      case "patch": {
        // A patch must follow the version we hold; anything else means we missed one.
        if (!this.hasBase || message.version !== this.current.version + 1 || !Array.isArray(this.base)) {
          this.resync();
          return;
        }
        try {
          this.base = applyListPatch(this.base as Record<string, unknown>[], message.patch);
        } catch {
          this.resync();
          return;
        }
        cache.write(this.target.queryKey, this.base);
        break;
      }
      case "resumed":
        // The server still has the value we hold; only the version and position are news.
        if (!this.hasBase) {
          this.resync();
          return;
        }
        this.restoreServerValue();
        break;
      default:
        return;
    }
    if (event.id) this.lastEventId = event.id;
    this.retry.reset();
    this.set({ status: "live", position: message.position, version: message.version, error: null });
  }

  private fail(error: unknown): void {
    this.stream = null;
    this.set({ ...this.current, status: "error", error });
    if (!isPermanentError(error)) this.scheduleReopen();
  }

  private ended(): void {
    // The server ended the stream (it is shutting down, or its reactor closed): come back, and
    // resume from the last event so an unchanged value is not sent again.
    this.stream = null;
    if (this.current.status === "live") this.set({ ...this.current, status: "reconnecting" });
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this.disposed || this.retrying || this.refs === 0) return;
    this.retrying = true;
    void this.retry.wait().then((go) => {
      this.retrying = false;
      if (go && !this.disposed && !this.stream && this.refs > 0) this.open(true);
    });
  }

  private connectionChanged(state: TransportState): void {
    if (state.state !== "connecting") return;
    // Lost the connection: the transport retries and resumes on its own; say so meanwhile.
    if (this.current.status === "live" || (state.error && this.hasBase)) {
      this.set({ ...this.current, status: "reconnecting" });
    }
  }

  private set(state: LiveState): void {
    this.current = state;
    for (const listener of this.listeners) listener();
    this.registry.changed(this);
  }

  /**
   * Resolves once this query's value reflects every transaction in `commits` (or it stops
   * being live: disposed, failed). Between values it probes the server (see WaitForCommitOptions).
   */
  waitFor(commits: readonly string[], options: { deadline: number; probeDelayMs: number; signal: AbortSignal }): Promise<void> {
    return new Promise<void>((resolve) => {
      let probeDelay = options.probeDelayMs;
      let probeTimer: ReturnType<typeof setTimeout> | null = null;
      let probing = false;
      const finish = () => {
        unsubscribe();
        options.signal.removeEventListener("abort", finish);
        if (probeTimer) clearTimeout(probeTimer);
        resolve();
      };
      const reflects = () => {
        if (this.disposed || this.current.status === "error") return true;
        const position = this.current.position;
        return position !== null && commits.every((xid) => positionIncludesSafe(position, xid));
      };
      const check = () => {
        if (reflects()) finish();
      };
      const scheduleProbe = () => {
        probeTimer = setTimeout(async () => {
          probeTimer = null;
          if (options.signal.aborted || reflects() || probing) return;
          probing = true;
          await this.probe().catch(() => undefined);
          probing = false;
          if (options.signal.aborted) return;
          check();
          probeDelay = Math.min(1000, probeDelay * 2);
          if (!reflects() && Date.now() < options.deadline) scheduleProbe();
        }, probeDelay);
      };
      const unsubscribe = this.subscribe(check);
      options.signal.addEventListener("abort", finish, { once: true });
      check();
      if (!reflects()) scheduleProbe();
    });
  }

  /**
   * Asks the server whether our value is still current: a one-shot `$live` with our last event
   * id gets `resumed` (same value) with the position the server's copy holds at. When it is the
   * value we hold (same hash), our position moves there. Needs a server that reports the
   * reactor's position for a clean group (it does since the client landed).
   */
  private probe(): Promise<void> {
    const asked = this.lastEventId;
    if (!asked || this.disposed) return Promise.resolve();
    this.registry.counters.probes += 1;
    return new Promise<void>((resolve) => {
      let stream: { unsubscribe(): void } | null = null;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        stream?.unsubscribe();
        resolve();
      };
      const timer = setTimeout(finish, 5000);
      stream = this.options.transport.subscribe(
        { path: this.target.path, input: this.target.input, lastEventId: asked },
        {
          onData: (event) => {
            const message = event.data;
            const ours = eventHash(this.lastEventId);
            if (
              message.kind === "resumed" &&
              ours !== null &&
              eventHash(event.id) === ours &&
              this.current.status === "live" &&
              this.current.position !== message.position
            ) {
              this.set({ ...this.current, position: message.position });
            }
            finish();
          },
          onError: finish,
          onComplete: finish,
        },
      );
      if (done) stream.unsubscribe();
    });
  }
}

/**
 * Every live query of one client, keyed by cache-entry hash: many components on one query share
 * one subscription (reference-counted), and a query nobody uses is unsubscribed.
 */
export class LiveQueryRegistry {
  private readonly queries = new Map<string, LiveQuery>();
  private readonly keyListeners = new Map<string, Set<() => void>>();
  private readonly anyListeners = new Set<() => void>();
  private readonly options: Required<Pick<LiveQueryRegistryOptions, "transport" | "cache" | "unsubscribeDelayMs">> & {
    retry?: BackoffOptions;
  };
  /** @internal counters for stats(). */
  readonly counters = { subscribes: 0, resyncs: 0, probes: 0 };
  private closed = false;

  constructor(options: LiveQueryRegistryOptions) {
    this.options = {
      transport: options.transport,
      cache: options.cache,
      unsubscribeDelayMs: options.unsubscribeDelayMs ?? 100,
      retry: options.retry,
    };
  }

  /** Starts (or joins) the live query for `target`; call `release` when done (idempotent). */
  acquire(target: LiveTarget): { query: LiveQuery; release(): void } {
    if (this.closed) throw new Error("live query registry is closed");
    let query = this.queries.get(target.hash);
    if (!query) {
      query = new LiveQuery(target, this, this.options);
      this.queries.set(target.hash, query);
    }
    query.retain();
    let released = false;
    const held = query;
    return {
      query: held,
      release: () => {
        if (released) return;
        released = true;
        held.release();
      },
    };
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
    return [...this.queries.values()];
  }

  stats(): LiveRegistryStats {
    return { queries: this.queries.size, ...this.counters };
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
  async waitForCommit(commits: string | readonly string[], options: WaitForCommitOptions & { hashOf: (key: QueryKey) => string }): Promise<void> {
    const xids = typeof commits === "string" ? [commits] : [...commits];
    if (xids.length === 0) return;
    const targets = options.queries
      ? options.queries.map((key) => this.queries.get(options.hashOf(key))).filter((q): q is LiveQuery => !!q)
      : this.all().filter((q) => q.users > 0);
    if (targets.length === 0) return;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const controller = new AbortController();
    const deadline = Date.now() + timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const pending = targets
          .filter((q) => !q.isDisposed && q.state.status !== "error")
          .filter((q) => !xids.every((x) => q.state.position !== null && positionIncludesSafe(q.state.position, x)))
          .map((q) => q.target.path);
        reject(new CommitWaitTimeoutError(xids, pending));
      }, timeoutMs);
    });
    try {
      await Promise.race([
        Promise.all(
          targets.map((q) => q.waitFor(xids, { deadline, probeDelayMs: options.probeDelayMs ?? 50, signal: controller.signal })),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  /** Ends every subscription. */
  close(): void {
    this.closed = true;
    for (const query of [...this.queries.values()]) query.dispose();
  }

  /** @internal */
  forget(query: LiveQuery): void {
    if (this.queries.get(query.target.hash) === query) this.queries.delete(query.target.hash);
  }

  /** @internal */
  changed(query: LiveQuery): void {
    const set = this.keyListeners.get(query.target.hash);
    if (set) for (const listener of [...set]) listener();
    for (const listener of [...this.anyListeners]) listener();
  }
}

function positionIncludesSafe(position: string, xid: string): boolean {
  try {
    return positionIncludes(position, xid);
  } catch {
    return false;
  }
}
