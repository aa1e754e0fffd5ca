import { toStorableText } from "../limits/index.ts";

/** One progress report: percent (0–100) and an optional message. */
export interface ProgressValue {
  progress: number;
  message: string | null;
}

/**
 * `progress(50, "half way")` inside a handler. Resolves once the value is written when it is
 * written at once (no write in the last `progressIntervalMs`); inside that window it is held as
 * the pending value (a later report replaces it; the last one is always written before the job's
 * final state) and resolves at once, so an awaited report in a tight loop neither waits for the
 * window nor costs a write of its own. Never rejects.
 */
export type ReportProgress = (progress: number, message?: string) => Promise<void>;

/**
 * Coalesces one job attempt's progress reports into at most one write per `intervalMs`: a report
 * inside the window only replaces the pending value (one slot, so memory stays bounded however
 * often a handler reports, awaited or not). Writes run one at a time, in report order, so a
 * subscriber never sees progress go back. `close()` writes the last pending value before the
 * job's final state is, then ignores further reports (a handler's stray report after it returned).
 */
export class ProgressCoalescer {
  private pending: ProgressValue | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastWriteAt = -Infinity;
  private inFlight: Promise<void> | null = null;
  private closed = false;
  /** Writes done (after coalescing): for tests and stats. */
  writes = 0;

  constructor(
    private readonly write: (value: ProgressValue) => Promise<void>,
    private readonly options: { intervalMs: number; maxMessageLength: number; now?: () => number; onError?: (error: unknown) => void },
  ) {}

  report: ReportProgress = (progress, message) => {
    if (this.closed) return Promise.resolve();
    this.pending = {
      progress: Number.isFinite(progress) ? Math.min(100, Math.max(0, Math.round(progress))) : 0,
      // NUL cannot be stored in Postgres text; the rest of the message can.
      message: message === undefined || message === null ? null : toStorableText(String(message).slice(0, this.options.maxMessageLength)),
    };
    if (!this.timer && !this.inFlight && this.now() - this.lastWriteAt >= this.options.intervalMs) return this.flush();
    this.schedule();
    return Promise.resolve();
  };

  /** Writes what is pending now and stops taking reports. Resolves when every write is done. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.inFlight;
    await this.flush();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** A write of the pending value at the window's end (after the write in flight, if any). */
  private schedule(): void {
    if (this.timer || this.inFlight || this.closed) return;
    const wait = Math.max(0, this.lastWriteAt + this.options.intervalMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, wait);
  }

  // Never rejects: a handler that does not await its reports must not crash the process when a
  // write fails (logged instead; the next report or the final state writes again).
  private flush(): Promise<void> {
    const value = this.pending;
    if (!value) return Promise.resolve();
    this.pending = null;
    this.lastWriteAt = this.now();
    const writing = (async () => {
      try {
        await this.write(value);
        this.writes += 1;
      } catch (error) {
        this.options.onError?.(error);
      }
    })();
    this.inFlight = writing.then(() => {
      this.inFlight = null;
      if (this.pending) this.schedule();
    });
    return this.inFlight;
  }
}
