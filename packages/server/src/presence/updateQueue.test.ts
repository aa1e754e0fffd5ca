import { describe, expect, it } from "vitest";
import { UpdateQueue } from "./updateQueue.ts";

describe("UpdateQueue", () => {
  const never = new AbortController().signal;

  it("hands out updates in order, then waits for the next push", async () => {
    const queue = new UpdateQueue(4);
    queue.push("a");
    queue.push("b");
    expect(await queue.next(never)).toEqual({ kind: "update", update: "a" });
    expect(await queue.next(never)).toEqual({ kind: "update", update: "b" });
    const pending = queue.next(never);
    queue.push("c");
    expect(await pending).toEqual({ kind: "update", update: "c" });
  });

  it("replaces an overflowing backlog with one full snapshot, then queues again", async () => {
    const queue = new UpdateQueue(3);
    for (const update of ["1", "2", "3", "4", "5", "6"]) queue.push(update);
    expect(await queue.next(never)).toEqual({ kind: "full" });
    queue.push("7");
    expect(await queue.next(never)).toEqual({ kind: "update", update: "7" });
  });

  it("a pending next resolves null when the queue ends or the subscriber goes", async () => {
    const ended = new UpdateQueue(3);
    const waiting = ended.next(never);
    ended.end();
    expect(await waiting).toBeNull();

    const abort = new AbortController();
    const gone = new UpdateQueue(3);
    const waitingToo = gone.next(abort.signal);
    abort.abort();
    expect(await waitingToo).toBeNull();
    gone.push("late");
    expect(await gone.next(abort.signal)).toBeNull();
  });
});
