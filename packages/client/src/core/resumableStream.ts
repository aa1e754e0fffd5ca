import { Backoff, type BackoffOptions } from "./backoff.ts";
import { isPermanentError } from "./errors.ts";

/** tRPC's per-subscription connection state (wsLink and httpSubscriptionLink report it). */
export interface TransportState {
  state: "idle" | "connecting" | "pending";
  error: unknown;
}

/** The callbacks of one tRPC subscription. */
export interface StreamHandlers<TData> {
  onData(data: TData): void;
  onError(error: unknown): void;
  /** The stream ended (the server stopped it, or the client was closed). */
  onComplete(): void;
  onConnectionStateChange?(state: TransportState): void;
}

export interface Unsubscribable {
  unsubscribe(): void;
}

export interface ResumableStreamOptions<TData> {
  /**
   * Opens one subscription with these handlers. `resume` is true when it replaces a stream that
   * failed or ended (send what lets the server continue: the last event id, the version held).
   */
  connect(handlers: StreamHandlers<TData>, resume: boolean): Unsubscribable;
  /** Each value of the current stream. */
  onData(data: TData): void;
  /** The current stream failed; a `permanent` failure is not retried. */
  onError?(error: unknown, permanent: boolean): void;
  /** The server ended the current stream; a resumed one follows after the backoff. */
  onComplete?(): void;
  /** The current stream's transport state (the socket dropped: tRPC resubscribes by itself). */
  onConnectionStateChange?(state: TransportState): void;
  /** Failures retrying cannot fix. Default `isPermanentError` (the caller's 4xx codes). */
  isPermanent?(error: unknown): boolean;
  /** Retry only while this holds (checked before and after the wait). Default: always. */
  shouldRetry?(): boolean;
  /** Waits between retries. Default `DEFAULT_BACKOFF`. */
  retry?: BackoffOptions;
}

/**
 * One subscription kept open: on a failure or an end it waits a jittered backoff and opens a
 * resumed one (TanStack Query's `retryer.ts` idea, for streams). Callbacks of a stream that was
 * replaced or dropped are ignored, so an owner only ever hears the current stream. Live queries,
 * CRDT sessions and presence rooms each hold one.
 */
export class ResumableStream<TData> {
  private stream: Unsubscribable | null = null;
  /** Bumped on every open and drop: callbacks of older streams are ignored. */
  private streamGeneration = 0;
  private waiting = false;
  private closed = false;
  private readonly backoff: Backoff;

  constructor(private readonly options: ResumableStreamOptions<TData>) {
    this.backoff = new Backoff(options.retry);
  }

  /** A stream is open (it may still be connecting). */
  get isOpen(): boolean {
    return this.stream !== null;
  }

  /** Open, or waiting to reopen. */
  get isActive(): boolean {
    return this.stream !== null || this.waiting;
  }

  /** Changes whenever the current stream does (for work deferred past a callback). */
  get generation(): number {
    return this.streamGeneration;
  }

  /** Failed attempts since the last `succeeded()`. */
  get attempts(): number {
    return this.backoff.attempts;
  }

  /** Opens a fresh stream unless one is open or a retry is waiting. */
  start(): void {
    if (!this.isActive) this.open(false);
  }

  /** Replaces the current stream with a new one now (`resume`: continue from where it was). */
  restart(resume = false): void {
    this.open(resume);
  }

  /** Drops the current stream and opens a resumed one after the backoff (a value was unusable). */
  retryLater(): void {
    this.drop();
    this.scheduleRetry();
  }

  /** The owner found the stream's data unusable: it fails with `error` (retried unless permanent). */
  fail(error: unknown): void {
    this.drop();
    this.failed(error);
  }

  /** The stream delivered: the next failure waits the shortest delay again. */
  succeeded(): void {
    this.backoff.reset();
  }

  /** A waiting retry goes now (back online, tab visible). */
  wake(): void {
    this.backoff.wake();
  }

  /** Ends the stream and every retry, for good. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.drop();
    this.backoff.close();
  }

  private open(resume: boolean): void {
    if (this.closed) return;
    this.drop();
    const generation = this.streamGeneration;
    let ended = false;
    const current = () => generation === this.streamGeneration && !this.closed;
    let stream: Unsubscribable;
    try {
      stream = this.options.connect(
        {
          onData: (data) => current() && this.options.onData(data),
          onError: (error) => {
            if (!current()) return;
            ended = true;
            this.failed(error);
          },
          onComplete: () => {
            if (!current()) return;
            ended = true;
            this.ended();
          },
          onConnectionStateChange: (state) => current() && this.options.onConnectionStateChange?.(state),
        },
        resume,
      );
    } catch (error) {
      // Opening threw (an app link, a transport that refuses at once): the stream failed.
      if (current() && !ended) this.failed(error);
      return;
    }
    // Callbacks may have run synchronously: ended this stream, or replaced it already.
    if (current() && !ended) this.stream = stream;
    else stream.unsubscribe();
  }

  private drop(): void {
    this.streamGeneration += 1;
    this.stream?.unsubscribe();
    this.stream = null;
  }

  private failed(error: unknown): void {
    this.stream = null;
    const permanent = (this.options.isPermanent ?? isPermanentError)(error);
    this.options.onError?.(error, permanent);
    if (!permanent) this.scheduleRetry();
  }

  private ended(): void {
    this.stream = null;
    this.options.onComplete?.();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.waiting || !this.retryWanted()) return;
    this.waiting = true;
    void this.backoff.wait().then((go) => {
      this.waiting = false;
      if (go && !this.stream && this.retryWanted()) this.open(true);
    });
  }

  private retryWanted(): boolean {
    return !this.closed && (this.options.shouldRetry?.() ?? true);
  }
}
