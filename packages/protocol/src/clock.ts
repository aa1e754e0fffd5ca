/**
 * Time as a dependency. Components whose behaviour depends on time (a session's expiry, a retry's
 * backoff) read it through a `Clock`, so their tests move time by hand instead of sleeping: a
 * test then proves "not before the deadline" and "at the deadline" exactly, however fast or
 * loaded the machine is. It lives here because both packages use it and this package is the one
 * they share; it is not part of the wire protocol and depends on nothing.
 */

/** An opaque timer handle, as returned by `Clock.setTimeout`. */
export type ClockTimer = unknown;

export interface ClockTimeoutOptions {
  /**
   * The timer alone does not keep a Node.js process alive (Node's `timer.unref()`); where that
   * means nothing (browsers), ignored.
   */
  unref?: boolean;
}

export interface Clock {
  /** Milliseconds since the epoch, as `Date.now()`. */
  now(): number;
  /** Runs `callback` once, `ms` from now. */
  setTimeout(callback: () => void, ms: number, options?: ClockTimeoutOptions): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** The real clock: `Date.now()` and the global timers. Every component's default. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms, options) {
    const timer = globalThis.setTimeout(callback, ms);
    if (options?.unref) (timer as { unref?: () => void }).unref?.();
    return timer;
  },
  clearTimeout: (timer) => globalThis.clearTimeout(timer as ReturnType<typeof globalThis.setTimeout>),
};

/**
 * A clock that moves only when told (tests). `advance(ms)` runs every timer that falls due, in due
 * order (timers set by those callbacks too, if they fall due within the same advance), with
 * `now()` at each timer's due time while it runs.
 */
export class ManualClock implements Clock {
  private time: number;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  constructor(start = Date.now()) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    const id = this.nextId;
    this.nextId += 1;
    // As the global setTimeout: a negative or NaN delay means "as soon as possible".
    this.timers.set(id, { at: this.time + (ms > 0 ? ms : 0), callback });
    return id;
  }

  clearTimeout(timer: ClockTimer): void {
    if (typeof timer === "number") this.timers.delete(timer);
  }

  /** Timers set and not yet run or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const until = this.time + Math.max(0, ms);
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      // Earliest due first; among equals, the one set first (ids grow).
      for (const entry of this.timers) if (entry[1].at <= until && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].callback();
    }
    this.time = until;
  }
}
