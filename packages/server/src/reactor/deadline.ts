/**
 * A timeout that only counts the time its work is actually running: `pause()` while the work waits
 * for a database connection (reported by the store, see store/cancellation.ts), `resume()` when it
 * has one. Nested: paused while any statement of the work waits. Fires `onExpire` once.
 */
export class Deadline {
  private remainingMs: number;
  private startedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private waits = 0;
  private done = false;

  constructor(ms: number, private readonly onExpire: () => void) {
    this.remainingMs = ms;
    this.start();
  }

  pause(): void {
    this.waits += 1;
    if (this.waits > 1 || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.remainingMs -= performance.now() - this.startedAt;
  }

  resume(): void {
    if (this.waits === 0) return;
    this.waits -= 1;
    if (this.waits === 0) this.start();
  }

  clear(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private start(): void {
    if (this.done) return;
    this.startedAt = performance.now();
    this.timer = setTimeout(() => {
      this.done = true;
      this.timer = null;
      this.onExpire();
    }, Math.max(0, this.remainingMs));
  }
}
