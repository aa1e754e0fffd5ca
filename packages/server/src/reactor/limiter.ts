/**
 * Runs at most `max` tasks at once; the rest wait in order. A task holds its slot until its
 * promise settles — callers that give up on a task earlier (a timeout) still leave its slot taken
 * until the work itself is over, so the bound is a bound on real work.
 */
export class ConcurrencyLimiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  /** Slots taken now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running += 1;
    try {
      return await task();
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }
}

export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
}
