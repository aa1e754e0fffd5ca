import { describe, expect, it } from "vitest";
import { ManualClock, systemClock } from "./index.ts";

describe("ManualClock", () => {
  it("runs timers only when advanced to their due time, in due order, with now() at each", () => {
    const clock = new ManualClock(1_000);
    const ran: Array<[string, number]> = [];
    clock.setTimeout(() => ran.push(["b", clock.now()]), 20);
    clock.setTimeout(() => ran.push(["a", clock.now()]), 10);
    const cleared = clock.setTimeout(() => ran.push(["never", clock.now()]), 5);
    clock.clearTimeout(cleared);
    clock.advance(9);
    expect(ran).toEqual([]);
    expect(clock.now()).toBe(1_009);
    clock.advance(1);
    expect(ran).toEqual([["a", 1_010]]);
    clock.advance(100);
    expect(ran).toEqual([["a", 1_010], ["b", 1_020]]);
    expect(clock.now()).toBe(1_110);
    expect(clock.pending).toBe(0);
  });

  it("runs timers that callbacks set within the same advance, and none beyond it", () => {
    const clock = new ManualClock(0);
    const ran: number[] = [];
    const again = () => {
      ran.push(clock.now());
      clock.setTimeout(again, 10);
    };
    clock.setTimeout(again, 10);
    clock.advance(35);
    expect(ran).toEqual([10, 20, 30]);
    expect(clock.pending).toBe(1);
  });
});

describe("systemClock", () => {
  it("reads Date.now() and runs a real timer", async () => {
    const before = Date.now();
    expect(systemClock.now()).toBeGreaterThanOrEqual(before);
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 1, { unref: true }));
    const never = systemClock.setTimeout(() => {
      throw new Error("cleared");
    }, 1);
    systemClock.clearTimeout(never);
    // The barrier: a timer set after it, due later, has run; the cleared one did not throw.
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
  });
});
