// The progress coalescer on fake timers: at most one write per interval, always the latest value,
// in order, and the last value written on close; a failed write never rejects the handler's call.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ProgressCoalescer, type ProgressValue } from "./progress.ts";

describe("ProgressCoalescer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const make = (write: (v: ProgressValue) => Promise<void> = async () => undefined, onError?: (e: unknown) => void) => {
    const written: ProgressValue[] = [];
    const coalescer = new ProgressCoalescer(
      async (value) => {
        await write(value);
        written.push(value);
      },
      { intervalMs: 100, maxMessageLength: 5, now: () => Date.now(), onError },
    );
    return { coalescer, written };
  };

  it("writes the first report at once, then at most one per interval with the latest value", async () => {
    const { coalescer, written } = make();
    const first = coalescer.report(1, "a");
    await vi.advanceTimersByTimeAsync(0);
    await first;
    expect(written).toEqual([{ progress: 1, message: "a" }]);
    const pending = [2, 3, 4, 5].map((p) => coalescer.report(p));
    await vi.advanceTimersByTimeAsync(50);
    expect(written).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50);
    await Promise.all(pending);
    expect(written).toEqual([{ progress: 1, message: "a" }, { progress: 5, message: null }]);
    expect(coalescer.writes).toBe(2);
  });

  it("close writes what is pending before returning, then ignores reports; values are clamped and cut", async () => {
    const { coalescer, written } = make();
    void coalescer.report(10);
    await vi.advanceTimersByTimeAsync(0);
    void coalescer.report(150.4, "a long message");
    await coalescer.close();
    expect(written).toEqual([{ progress: 10, message: null }, { progress: 100, message: "a lon" }]);
    await coalescer.report(-3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(written).toHaveLength(2);
  });

  it("a failed write resolves the report (reported through onError) and later writes go on", async () => {
    const errors: unknown[] = [];
    let fail = true;
    const { coalescer, written } = make(async () => {
      if (fail) throw new Error("db down");
    }, (e) => errors.push(e));
    const report = coalescer.report(1);
    await vi.advanceTimersByTimeAsync(0);
    await expect(report).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    fail = false;
    void coalescer.report(2);
    await coalescer.close();
    expect(written).toEqual([{ progress: 2, message: null }]);
  });

  it("awaited reports in a tight loop coalesce too: the first is written at once, the rest held, the latest wins, in order", async () => {
    // A write that takes a while (like an UPDATE): reports made meanwhile are held, not queued.
    const { coalescer, written } = make(() => new Promise((resolve) => setTimeout(resolve, 5)));
    const first = coalescer.report(0, "start");
    await vi.advanceTimersByTimeAsync(5);
    await first;
    expect(written).toEqual([{ progress: 0, message: "start" }]);
    // 1,000 awaited reports without the clock moving: none waits for the window, none is a write.
    for (let i = 1; i <= 1000; i += 1) await coalescer.report(i / 10);
    expect(written).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(written).toEqual([{ progress: 0, message: "start" }, { progress: 100, message: null }]);
    // Reports during a write in flight wait for it: still one at a time, in order.
    void coalescer.report(40);
    await vi.advanceTimersByTimeAsync(100);
    void coalescer.report(50);
    void coalescer.report(60);
    const closing = coalescer.close();
    await vi.advanceTimersByTimeAsync(5);
    await closing;
    expect(written.map((w) => w.progress)).toEqual([0, 100, 40, 60]);
    expect(coalescer.writes).toBe(4);
  });

  it("an awaited report after a quiet window is written before it resolves", async () => {
    let release: (() => void) | null = null;
    const { coalescer, written } = make(() => new Promise<void>((resolve) => (release = resolve)));
    let resolved = false;
    const report = coalescer.report(30).then(() => (resolved = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(resolved).toBe(false);
    release!();
    await report;
    expect(written).toEqual([{ progress: 30, message: null }]);
  });
});
