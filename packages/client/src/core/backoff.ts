import { systemClock, type Clock } from "@tether/protocol";

/**
 * Reconnect delays: exponential, capped, with jitter so that a server restart does not see every
 * client come back in the same millisecond (a thundering herd).
 */
export interface BackoffOptions {
  /** Delay before the first retry, ms. Default 250. */
  initialDelayMs?: number;
  /** Largest delay, ms. Default 30 000. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Share of each delay that is random, 0..1. Default 0.5: a delay d becomes d/2 + random·d/2
   * ("equal jitter"), so retries spread out but never come sooner than half the nominal delay.
   */
  jitter?: number;
  /** Source of randomness (tests). Default Math.random. */
  random?: () => number;
  /** What the waits run on (tests: a ManualClock). Default the system clock. */
  clock?: Clock;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
  random: Math.random,
  clock: systemClock,
};

/** The delay before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const o = { ...DEFAULT_BACKOFF, ...options };
  const nominal = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** Math.max(0, attempt));
  const jitter = Math.min(1, Math.max(0, o.jitter));
  return Math.round(nominal * (1 - jitter) + o.random() * nominal * jitter);
}

/**
 * Counts consecutive failures and waits the matching delay. A wait ends early on `wake()`
 * (the browser came back online, the tab became visible) or `close()`.
 */
export class Backoff {
  private attempt = 0;
  private readonly sleepers = new Set<() => void>();
  private closed = false;

  constructor(private readonly options: BackoffOptions = {}) {}

  /** The number of retries since the last success. */
  get attempts(): number {
    return this.attempt;
  }

  /** A connection (or subscription) succeeded: the next failure starts from the shortest delay. */
  reset(): void {
    this.attempt = 0;
  }

  /** Waits before the next retry; resolves false when closed meanwhile. */
  wait(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const delay = backoffDelay(this.attempt, this.options);
    const clock = this.options.clock ?? DEFAULT_BACKOFF.clock;
    this.attempt += 1;
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clock.clearTimeout(timer);
        this.sleepers.delete(done);
        resolve(!this.closed);
      };
      const timer = clock.setTimeout(done, delay);
      this.sleepers.add(done);
    });
  }

  /** Ends every pending wait now: retry at once. */
  wake(): void {
    for (const done of [...this.sleepers]) done();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }
}
