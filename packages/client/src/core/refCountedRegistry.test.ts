import { describe, expect, it } from "vitest";
import { RefCountedRegistry } from "./refCountedRegistry.ts";
import type { Timers } from "./timers.ts";

/** Timers run by hand: nothing fires until the test says so. */
function manualTimers() {
  const pending = new Map<number, { callback: () => void; ms: number }>();
  let next = 0;
  const timers: Timers = {
    setTimeout: (callback, ms) => {
      pending.set(++next, { callback, ms });
      return next;
    },
    clearTimeout: (handle) => {
      pending.delete(handle as number);
    },
  };
  return {
    timers,
    pending,
    /** Fires every pending timer. */
    fire() {
      for (const [id, timer] of [...pending]) {
        pending.delete(id);
        timer.callback();
      }
    },
  };
}

function setup() {
  const clock = manualTimers();
  const disposed: string[] = [];
  let made = 0;
  const registry = new RefCountedRegistry<{ key: string; n: number }>({
    name: "things",
    dispose: (value) => void disposed.push(`${value.key}#${value.n}`),
    releaseDelayMs: 100,
    timers: clock.timers,
  });
  const acquire = (key: string) => registry.acquire(key, () => ({ key, n: ++made }));
  return { clock, disposed, registry, acquire };
}

describe("RefCountedRegistry", () => {
  it("shares one value per key and disposes it a delay after the last release", () => {
    const { clock, disposed, registry, acquire } = setup();
    const a = acquire("x");
    const b = acquire("x");
    const other = acquire("y");
    expect(a.value).toBe(b.value);
    expect(other.value).not.toBe(a.value);
    expect(registry.users("x")).toBe(2);
    a.release();
    expect(clock.pending.size).toBe(0); // b still holds it
    b.release();
    expect([...clock.pending.values()].map((t) => t.ms)).toEqual([100]);
    expect(registry.get("x")).toBe(a.value); // kept during the delay
    clock.fire();
    expect(disposed).toEqual(["x#1"]);
    expect(registry.get("x")).toBeUndefined();
    expect(registry.get("y")).toBe(other.value);
  });

  it("keeps the value when it is acquired again within the delay (a remount)", () => {
    const { clock, disposed, registry, acquire } = setup();
    const first = acquire("x");
    first.release();
    const again = acquire("x");
    expect(again.value).toBe(first.value);
    expect(clock.pending.size).toBe(0); // the disposal was cancelled
    clock.fire();
    expect(disposed).toEqual([]);
    again.release();
    clock.fire();
    expect(disposed).toEqual(["x#1"]);
    // A later acquire makes a new one.
    expect(acquire("x").value.n).toBe(2);
    expect(registry.size).toBe(1);
  });

  it("counts a lease once however often it is released", () => {
    const { clock, disposed, registry, acquire } = setup();
    const a = acquire("x");
    const b = acquire("x");
    a.release();
    a.release();
    expect(registry.users("x")).toBe(1);
    expect(clock.pending.size).toBe(0);
    clock.fire();
    expect(disposed).toEqual([]);
    b.release();
    clock.fire();
    expect(disposed).toEqual(["x#1"]);
  });

  it("close disposes everything at once, cancels pending disposals and refuses new holders", async () => {
    const { clock, disposed, registry, acquire } = setup();
    acquire("x");
    acquire("y").release();
    await registry.close();
    expect(disposed.sort()).toEqual(["x#1", "y#2"]);
    expect(clock.pending.size).toBe(0);
    expect(() => acquire("x")).toThrow("things of a closed client");
  });

  it("forget drops an entry that ended by itself, without disposing it", () => {
    const { clock, disposed, registry, acquire } = setup();
    const lease = acquire("x");
    lease.release();
    registry.forget("x", lease.value);
    expect(registry.get("x")).toBeUndefined();
    expect(clock.pending.size).toBe(0);
    expect(disposed).toEqual([]);
    // Forgetting a value that is not the entry's leaves the entry alone.
    const next = acquire("x");
    registry.forget("x", lease.value);
    expect(registry.get("x")).toBe(next.value);
  });
});
