import { SubscriberQueue } from "../queue/index.ts";

/** What one join subscription takes next: an incremental update, or a full snapshot of the room. */
export type QueuedUpdate = { kind: "update"; update: string } | { kind: "full" };

const FULL: QueuedUpdate = { kind: "full" };

/**
 * The updates (base64, encoded once per change for every subscriber) waiting for one
 * `$presence.join` subscriber: the server's one bounded `SubscriberQueue`, whose backlog folds
 * into one "send the whole room" marker. While that marker waits, further updates are dropped too:
 * the snapshot, encoded when the subscriber takes it, already holds them.
 */
export class UpdateQueue {
  private readonly queue: SubscriberQueue<QueuedUpdate>;
  private fullPending = false;

  constructor(max: number) {
    this.queue = new SubscriberQueue<QueuedUpdate>({ maxItems: max });
  }

  push(update: string): void {
    if (this.fullPending) return;
    if (this.queue.push({ kind: "update", update }, () => FULL) === FULL) this.fullPending = true;
  }

  /** No more updates (the room closed); a pending `next` resolves null. */
  end(): void {
    this.queue.end();
  }

  /** The next update, or null once ended or `signal` aborts (which ends the queue). */
  async next(signal: AbortSignal): Promise<QueuedUpdate | null> {
    if (signal.aborted) this.queue.end();
    const onAbort = () => this.queue.end();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const next = await this.queue.next();
      if (next.done) return null;
      if (next.value === FULL) this.fullPending = false;
      return next.value;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}
