/** What one join subscription takes next: an incremental update, or a full snapshot of the room. */
export type QueuedUpdate = { kind: "update"; update: string } | { kind: "full" };

/**
 * The updates (base64, encoded once per change for every subscriber) waiting for one
 * `$presence.join` subscriber. Push-fed (the room broadcasts into it)
 * and pull-drained (the subscription's generator), so it must bound itself: a subscriber that
 * stops reading would otherwise grow it forever (SSE pauses the generator on backpressure rather
 * than buffering). On overflow the backlog is dropped for one full snapshot, which brings the
 * subscriber to the same state the backlog would have.
 */
export class UpdateQueue {
  private items: string[] = [];
  private full = false;
  private ended = false;
  private wake: (() => void) | null = null;

  constructor(private readonly max: number) {}

  push(update: string): void {
    if (this.ended || this.full) return;
    if (this.items.length >= this.max) {
      this.items = [];
      this.full = true;
    } else {
      this.items.push(update);
    }
    this.notify();
  }

  /** No more updates (the room closed); a pending `next` resolves null. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /** The next update, or null once ended or `signal` aborts. */
  async next(signal: AbortSignal): Promise<QueuedUpdate | null> {
    for (;;) {
      if (this.ended || signal.aborted) return null;
      if (this.full) {
        this.full = false;
        return { kind: "full" };
      }
      const update = this.items.shift();
      if (update !== undefined) return { kind: "update", update };
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.wake = null;
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  private notify(): void {
    this.wake?.();
  }
}
