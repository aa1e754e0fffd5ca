import { describe, expect, it } from "vitest";
import { SubscriberQueue } from "./subscriberQueue.ts";

const take = async <T>(queue: SubscriberQueue<T>, n: number): Promise<T[]> => {
  const out: T[] = [];
  for (let i = 0; i < n; i += 1) {
    const next = await queue.next();
    if (next.done) break;
    out.push(next.value);
  }
  return out;
};

describe("SubscriberQueue", () => {
  it("hands a waiting consumer the next item at once, and queues the rest in order", async () => {
    const queue = new SubscriberQueue<string>({ maxItems: 10 });
    const pending = queue.next();
    expect(queue.push("a")).toBe("a");
    expect(await pending).toEqual({ value: "a", done: false });
    queue.push("b");
    queue.push("c");
    expect(await take(queue, 2)).toEqual(["b", "c"]);
  });

  it("folds the backlog into one item past maxItems", async () => {
    const queue = new SubscriberQueue<string>({ maxItems: 3 });
    for (const item of ["1", "2", "3"]) queue.push(item, () => "folded");
    expect(queue.push("4", () => "folded")).toBe("folded");
    expect(queue.length).toBe(1);
    queue.push("5", () => "again");
    queue.end();
    expect(await take(queue, 5)).toEqual(["folded", "5"]);
  });

  it("folds past maxWeight, and keeps the weight of what is queued", async () => {
    const queue = new SubscriberQueue<string>({ maxItems: 100, maxWeight: 10 }, (item) => item.length);
    queue.push("aaaa", () => "F");
    queue.push("bbbb", () => "F");
    expect(queue.weight).toBe(8);
    expect(queue.push("ccc", () => "F")).toBe("F");
    expect(queue.weight).toBe(1);
    await queue.next();
    expect(queue.weight).toBe(0);
  });

  it("queues over the bound when the producer cannot fold, or gives no fold", async () => {
    const queue = new SubscriberQueue<string>({ maxItems: 1 });
    queue.push("1");
    expect(queue.push("2", () => null)).toBe("2");
    expect(queue.push("3")).toBe("3");
    expect(queue.length).toBe(3);
  });

  it("ends: a pending read resolves done, or throws the error; later pushes are dropped", async () => {
    const queue = new SubscriberQueue<string>({ maxItems: 3 });
    const pending = queue.next();
    queue.end();
    expect(await pending).toEqual({ value: undefined, done: true });
    queue.push("late");
    expect(queue.length).toBe(0);

    const failing = new SubscriberQueue<string>({ maxItems: 3 });
    failing.push("kept");
    failing.end(new Error("gone"));
    expect(await failing.next()).toEqual({ value: "kept", done: false });
    await expect(failing.next()).rejects.toThrow("gone");
  });
});
