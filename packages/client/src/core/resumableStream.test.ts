import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ResumableStream, type ResumableStreamOptions, type StreamHandlers } from "./resumableStream.ts";

const permanent = { data: { code: "FORBIDDEN" } };
const passing = { data: { code: "INTERNAL_SERVER_ERROR" } };

/** A stream owner that records what it heard, over a transport that records what it opened. */
function setup(options: Partial<ResumableStreamOptions<string>> & { syncError?: unknown } = {}) {
  const opened: Array<{ handlers: StreamHandlers<string>; resume: boolean; closed: boolean }> = [];
  const heard: string[] = [];
  const stream = new ResumableStream<string>({
    connect: (handlers, resume) => {
      const entry = { handlers, resume, closed: false };
      opened.push(entry);
      if (options.syncError !== undefined && opened.length === 1) handlers.onError(options.syncError);
      return { unsubscribe: () => void (entry.closed = true) };
    },
    onData: (data) => void heard.push(`data ${data}`),
    onError: (error, isPermanent) => void heard.push(`error ${isPermanent ? "permanent" : "retry"}`),
    onComplete: () => void heard.push("complete"),
    onConnectionStateChange: (state) => void heard.push(`state ${state.state}`),
    retry: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 },
    ...options,
  });
  const last = () => opened[opened.length - 1]!;
  return { stream, opened, heard, last };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("ResumableStream", () => {
  it("opens once, and after a retriable failure reopens resumed after the backoff", async () => {
    const { stream, opened, heard, last } = setup();
    stream.start();
    stream.start(); // open already: no second stream
    expect(opened).toHaveLength(1);
    expect(opened[0]!.resume).toBe(false);
    last().handlers.onData("a");
    last().handlers.onError(passing);
    expect(heard).toEqual(["data a", "error retry"]);
    expect(stream.isOpen).toBe(false);
    expect(stream.isActive).toBe(true); // waiting
    stream.start(); // waiting for the retry: no stream before it
    await vi.advanceTimersByTimeAsync(99);
    expect(opened).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(opened).toHaveLength(2);
    expect(opened[1]!.resume).toBe(true);
    expect(stream.isOpen).toBe(true);
  });

  it("backs off longer on each failure until a value resets it", async () => {
    const { stream, opened, last } = setup();
    stream.start();
    last().handlers.onComplete();
    await vi.advanceTimersByTimeAsync(100);
    last().handlers.onComplete();
    await vi.advanceTimersByTimeAsync(199);
    expect(opened).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(opened).toHaveLength(3);
    expect(stream.attempts).toBe(2);
    stream.succeeded();
    last().handlers.onComplete();
    await vi.advanceTimersByTimeAsync(100);
    expect(opened).toHaveLength(4);
  });

  it("does not retry a permanent failure, nor while shouldRetry says no", async () => {
    const refused = setup();
    refused.stream.start();
    refused.last().handlers.onError(permanent);
    expect(refused.heard).toEqual(["error permanent"]);
    await vi.runAllTimersAsync();
    expect(refused.opened).toHaveLength(1);
    expect(refused.stream.isActive).toBe(false);
    refused.stream.start(); // a new start opens again (a user retries)
    expect(refused.opened).toHaveLength(2);

    let wanted = true;
    const unwanted = setup({ shouldRetry: () => wanted });
    unwanted.stream.start();
    unwanted.last().handlers.onComplete();
    wanted = false; // e.g. the last user left during the wait
    await vi.runAllTimersAsync();
    expect(unwanted.opened).toHaveLength(1);
  });

  it("ignores callbacks of a stream it replaced or dropped", async () => {
    const { stream, opened, heard } = setup();
    stream.start();
    const old = opened[0]!;
    stream.restart();
    expect(old.closed).toBe(true);
    expect(opened[1]!.resume).toBe(false);
    old.handlers.onData("stale");
    old.handlers.onError(passing);
    old.handlers.onConnectionStateChange?.({ state: "connecting", error: null });
    opened[1]!.handlers.onData("fresh");
    expect(heard).toEqual(["data fresh"]);
    stream.retryLater();
    expect(opened[1]!.closed).toBe(true);
    opened[1]!.handlers.onData("dropped");
    await vi.advanceTimersByTimeAsync(100);
    expect(opened).toHaveLength(3);
    expect(opened[2]!.resume).toBe(true);
    expect(heard).toEqual(["data fresh"]);
  });

  it("retries a stream that failed while it was being opened", async () => {
    const { stream, opened, heard } = setup({ syncError: passing });
    stream.start();
    expect(heard).toEqual(["error retry"]);
    expect(opened[0]!.closed).toBe(true);
    expect(stream.isOpen).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(opened).toHaveLength(2);
    expect(stream.isOpen).toBe(true);
  });

  it("wake() cuts the wait short; close() ends the stream and every retry", async () => {
    const { stream, opened, last } = setup();
    stream.start();
    last().handlers.onComplete();
    stream.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(opened).toHaveLength(2);
    last().handlers.onComplete();
    stream.close();
    await vi.runAllTimersAsync();
    expect(opened).toHaveLength(2);
    stream.start();
    stream.restart();
    expect(opened).toHaveLength(2);
    expect(stream.isActive).toBe(false);
  });
});
