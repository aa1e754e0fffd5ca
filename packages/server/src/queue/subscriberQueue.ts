/** How much one subscriber's queue may hold before its backlog is folded (see `SubscriberQueue.push`). */
export interface QueueBound {
  /** Items queued at most. */
  readonly maxItems: number;
  /** … and their total weight (`weigh`, e.g. bytes) at most. Default: no weight bound. */
  readonly maxWeight?: number;
}

/**
 * What a subscriber has not taken yet: the bridge from a push-fed source (the reactor, a CRDT
 * document, a presence room) to one subscription's pull-driven generator. Single consumer.
 *
 * It bounds itself: a subscriber that stops reading (SSE pauses a generator on backpressure
 * rather than buffering; a server-side consumer may stall) would otherwise grow it forever. Past
 * the bound the backlog is dropped for one item the producer folds it into — the latest full
 * result, one catch-up update, a "send the whole room" marker — which brings the subscriber to the
 * same state the backlog would have.
 */
export class SubscriberQueue<T> {
  private items: T[] = [];
  private queuedWeight = 0;
  private waiting: ((result: IteratorResult<T>) => void) | null = null;
  private failWaiting: ((error: unknown) => void) | null = null;
  private ended = false;
  private error: unknown = undefined;

  constructor(
    private readonly bound: QueueBound,
    private readonly weigh: (item: T) => number = () => 0,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Total weight of what is queued. */
  get weight(): number {
    return this.queuedWeight;
  }

  /** True once `end` was called (queued items may still be read). */
  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Queues `item`, or — when it would take a non-empty queue past its bound and `fold` gives one —
   * drops the backlog and queues `fold()` instead of it and `item`. `fold` returning null (it
   * cannot fold now) queues `item` over the bound. Returns what was queued (`item` or the fold).
   */
  push(item: T, fold?: () => T | null): T {
    if (this.ended) return item;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failWaiting = null;
      resolve({ value: item, done: false });
      return item;
    }
    let queued = item;
    if (fold && this.items.length > 0 && this.over(item)) {
      const folded = fold();
      if (folded !== null) {
        this.items = [];
        this.queuedWeight = 0;
        queued = folded;
      }
    }
    this.items.push(queued);
    this.queuedWeight += this.weigh(queued);
    return queued;
  }

  /** Ends the stream; with an error, the consumer's next read throws it. */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    if (this.waiting) {
      const resolve = this.waiting;
      const reject = this.failWaiting;
      this.waiting = this.failWaiting = null;
      if (error !== undefined && reject) reject(error);
      else resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) {
      const item = this.items.shift() as T;
      this.queuedWeight -= this.weigh(item);
      return Promise.resolve({ value: item, done: false });
    }
    if (this.ended) {
      return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  /** Would queueing `item` take the queue past its bound? */
  private over(item: T): boolean {
    if (this.items.length + 1 > this.bound.maxItems) return true;
    return this.bound.maxWeight !== undefined && this.queuedWeight + this.weigh(item) > this.bound.maxWeight;
  }
}
