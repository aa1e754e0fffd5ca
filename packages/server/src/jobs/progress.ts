/** One progress report: percent (0–100) and an optional message. */
export interface ProgressValue {
  progress: number;
  message: string | null;
}

/** `progress(50, "half way")` inside a handler: resolves once that value (or a later one) is stored. */
export type ReportProgress = (progress: number, message?: string) => Promise<void>;

/**
 * Coalesces one job attempt's progress reports into at most one write per `intervalMs`: a report
 * while a write is due later only replaces the pending value (one slot, so memory stays bounded
 * however often a handler reports). Writes run one at a time, in report order, so a subscriber
 * never sees progress go back. `close()` writes the last pending value before the job's final
 * state is, then ignores further reports (a handler's stray report after it returned).
 */
export class ProgressCoalescer {
  private pending: ProgressValue | null = null;
  private waiters: Array<() => void> = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastWriteAt = -Infinity;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  /** Writes done (after coalescing): for tests and stats. */
  writes = 0;

  constructor(
    private readonly write: (value: ProgressValue) => Promise<void>,
    private readonly options: { intervalMs: number; maxMessageLength: number; now?: () => number; onError?: (error: unknown) => void },
  ) {}

  report: ReportProgress = (progress, message) => {
    if (this.closed) return Promise.resolve();
    const value: ProgressValue = {
      progress: Number.isFinite(progress) ? Math.min(100, Math.max(0, Math.round(progress))) : 0,
      message: message === undefined || message === null ? null : String(message).slice(0, this.options.maxMessageLength),
    };
    this.pending = value;
    // Never rejects: a handler that does not await its reports must not crash the process when a
    // write fails (logged instead; the next report or the final state writes again).
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (!this.timer) {
      const wait = Math.max(0, this.lastWriteAt + this.options.intervalMs - this.now());
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flushPending();
      }, wait);
    }
    return done;
  };

  /** Writes what is pending now and stops taking reports. Resolves when every write is done. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.flushPending();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private flushPending(): Promise<void> {
    const value = this.pending;
    const waiters = this.waiters;
    this.pending = null;
    this.waiters = [];
    if (!value) return this.writing;
    this.writing = this.writing.then(async () => {
      try {
        this.lastWriteAt = this.now();
        await this.write(value);
        this.writes += 1;
      } catch (error) {
        this.options.onError?.(error);
      }
      for (const resolve of waiters) resolve();
    });
    return this.writing;
  }
}
