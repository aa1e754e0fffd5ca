import { replaceEqualDeep } from "@tanstack/query-core";
import { applyListPatch, eventHash, type LiveInput } from "@tether/protocol";
import type { BackoffOptions } from "../backoff.ts";
import { ResumableStream, type TransportState } from "../resumableStream.ts";
import { Subscribable } from "../subscribable.ts";
import { TRANSFORMER_MISMATCH_MESSAGE } from "../transformer.ts";
import { IDLE_LIVE_STATE, type LiveCache, type LiveEvent, type LiveState, type LiveTarget, type LiveTransport } from "./types.ts";

/**
 * A live query received something that is not a live message: the server wrote it with another
 * data transformer than this client reads with (or none). Permanent: retrying reads the same way.
 */
export class LiveMessageUnreadableError extends Error {
  override readonly name = "LiveMessageUnreadableError";
  /** As a tRPC error's `data`: UNPROCESSABLE_CONTENT, which clients do not retry. */
  readonly data = { code: "UNPROCESSABLE_CONTENT", httpStatus: 422 } as const;
  constructor() {
    super(TRANSFORMER_MISMATCH_MESSAGE);
  }
}

/** How long a read-your-writes probe may take before it is abandoned, ms. */
const PROBE_TIMEOUT_MS = 5000;

/** What a live query needs from the registry that holds it. */
export interface LiveQueryOwner {
  /** Holders of `query` right now (retries stop while there are none). */
  users(query: LiveQuery): number;
  /** `query`'s state changed. */
  changed(query: LiveQuery): void;
  /** `query` was disposed. */
  forget(query: LiveQuery): void;
  readonly counters: { subscribes: number; resyncs: number; probes: number };
}

export interface LiveQueryOptions {
  transport: LiveTransport;
  cache: LiveCache;
  /** Backoff for resubscribing after the server ended a stream or a retriable error. */
  retry?: BackoffOptions;
}

/**
 * One live query: one `$live` subscription shared by every user of the same cache entry.
 * Keeps the server's value (`base`) apart from the cache, so patches always apply to the
 * server's truth even while the cache shows an optimistic value, which they then replace.
 */
export class LiveQuery extends Subscribable {
  private current: LiveState = { status: "connecting", position: null, version: 0, error: null };
  private base: unknown = undefined;
  private hasBase = false;
  private lastEventId: string | null = null;
  private readonly stream: ResumableStream<LiveEvent>;
  private disposed = false;

  constructor(
    readonly target: LiveTarget,
    private readonly owner: LiveQueryOwner,
    private readonly options: LiveQueryOptions,
  ) {
    super();
    this.stream = new ResumableStream<LiveEvent>({
      connect: (handlers, resume) => this.connect(handlers, resume),
      onData: (event) => this.receive(event),
      onError: (error) => this.set({ ...this.current, status: "error", error }),
      // The server ended the stream (it is shutting down, or its reactor closed): come back, and
      // resume from the last event so an unchanged value is not sent again.
      onComplete: () => {
        if (this.current.status === "live") this.set({ ...this.current, status: "reconnecting" });
      },
      onConnectionStateChange: (state) => this.connectionChanged(state),
      shouldRetry: () => !this.disposed && this.owner.users(this) > 0,
      retry: options.retry,
    });
  }

  get state(): LiveState {
    return this.current;
  }

  /** Users of this query right now. */
  get users(): number {
    return this.owner.users(this);
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

  /** Subscribes unless subscribed or waiting to resubscribe (idempotent). */
  start(): void {
    if (!this.disposed) this.stream.start();
  }

  /** Ends the subscription and leaves the registry. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stream.close();
    this.owner.forget(this);
    this.set(IDLE_LIVE_STATE);
  }

  /** Retry now instead of after the backoff (back online, tab visible). */
  wake(): void {
    this.stream.wake();
  }

  /** Drops the stream and asks for the full value again (version gap, unusable patch). */
  resync(): void {
    if (this.disposed) return;
    this.owner.counters.resyncs += 1;
    this.stream.restart(false);
  }

  private connect(handlers: Parameters<LiveTransport["subscribe"]>[1], resume: boolean) {
    const input: LiveInput = { path: this.target.path, input: this.target.input };
    if (resume && this.lastEventId) input.lastEventId = this.lastEventId;
    else {
      // A fresh stream starts over at the server's version (it sends the full value first).
      this.lastEventId = null;
    }
    this.owner.counters.subscribes += 1;
    return this.options.transport.subscribe(input, handlers);
  }

  private receive(event: LiveEvent): void {
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
        // Not a live message: the server's answer was read with another transformer than the one
        // it was written with (or none). Retrying reads the next one the same way.
        this.stream.fail(new LiveMessageUnreadableError());
        return;
    }
    if (event.id) this.lastEventId = event.id;
    this.stream.succeeded();
    this.set({ status: "live", position: message.position, version: message.version, error: null });
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
    this.owner.changed(this);
  }

  /**
   * Asks the server whether our value is still current (read-your-writes): a one-shot `$live`
   * with our last event id gets `resumed` (same value) with the position the server's copy holds
   * at. When it is the value we hold (same hash), our position moves there.
   */
  probe(): Promise<void> {
    const asked = this.lastEventId;
    if (!asked || this.disposed) return Promise.resolve();
    this.owner.counters.probes += 1;
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
      const timer = setTimeout(finish, PROBE_TIMEOUT_MS);
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
