import { hashKey, QueryClient, type QueryKey } from "@tanstack/query-core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Backoff, backoffDelay } from "../backoff.ts";
import { queryClientCache } from "../cache.ts";
import {
  CommitWaitTimeoutError,
  LiveQueryRegistry,
  type LiveCache,
  type LiveHandlers,
  type LiveTarget,
  type LiveTransport,
} from "./index.ts";
import { ManualClock, parseCommitHeader, positionIncludes } from "@tether/protocol";
import type { LiveInput, LiveMessage } from "@tether/protocol";

/** A transport that records every subscription and lets the test push messages into it. */
function fakeTransport() {
  const streams: Array<{ input: LiveInput; handlers: LiveHandlers; closed: boolean }> = [];
  const transport: LiveTransport = {
    subscribe(input, handlers) {
      // A stream that ended (error, complete) is closed, as tRPC's are.
      const stream: { input: LiveInput; handlers: LiveHandlers; closed: boolean } = {
        input,
        closed: false,
        handlers: {
          ...handlers,
          onError: (error) => {
            stream.closed = true;
            handlers.onError(error);
          },
          onComplete: () => {
            stream.closed = true;
            handlers.onComplete();
          },
        },
      };
      streams.push(stream);
      return { unsubscribe: () => void (stream.closed = true) };
    },
  };
  const open = () => streams.filter((s) => !s.closed);
  return {
    transport,
    streams,
    open,
    /** The only open stream (not probes: tests that probe look at `streams`). */
    main() {
      const list = open();
      expect(list).toHaveLength(1);
      return list[0]!;
    },
  };
}

function mapCache(): LiveCache & { data: Map<string, unknown>; writes: number } {
  const data = new Map<string, unknown>();
  const cache = {
    data,
    writes: 0,
    read: (key: QueryKey) => data.get(hashKey(key)),
    write: (key: QueryKey, value: unknown) => {
      cache.writes += 1;
      data.set(hashKey(key), value);
    },
  };
  return cache;
}

function target(projectId: string): LiveTarget {
  const queryKey = [["tasks", "byProject"], { input: { projectId }, type: "query" }] as const;
  return { path: "tasks.byProject", input: { projectId }, queryKey, hash: hashKey(queryKey) };
}

const full = (version: number, data: unknown, position = "10:"): LiveMessage => ({ kind: "full", version, position, data });
/** A patch whose new list is `order` (its whole range replaced), carrying `upsert`. */
const patch = (version: number, order: string[], upsert: Record<string, unknown>[], position = "10:", held = 0): LiveMessage => ({
  kind: "patch",
  version,
  position,
  patch: { start: 0, remove: held, insert: order, upsert, at: upsert.map((row) => order.indexOf(row.id as string)) },
});

function setup(options: { unsubscribeDelayMs?: number } = {}) {
  const fake = fakeTransport();
  const cache = mapCache();
  const registry = new LiveQueryRegistry({
    transport: fake.transport,
    cache,
    unsubscribeDelayMs: options.unsubscribeDelayMs ?? 0,
    retry: { initialDelayMs: 1, maxDelayMs: 5, jitter: 0 },
  });
  return { fake, cache, registry };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("LiveQueryRegistry", () => {
  it("shares one subscription per cache entry and unsubscribes after the last user leaves", () => {
    vi.useFakeTimers();
    const { fake, registry } = setup({ unsubscribeDelayMs: 20 });
    const a = registry.acquire(target("p1"));
    const b = registry.acquire(target("p1"));
    const other = registry.acquire(target("p2"));
    expect(fake.open().map((s) => s.input)).toEqual([
      { path: "tasks.byProject", input: { projectId: "p1" } },
      { path: "tasks.byProject", input: { projectId: "p2" } },
    ]);
    a.release();
    a.release(); // idempotent: must not steal b's reference
    vi.advanceTimersByTime(40);
    expect(fake.open()).toHaveLength(2);
    b.release();
    vi.advanceTimersByTime(19);
    // Re-acquired within the delay (StrictMode, a route change): the same stream is kept.
    const again = registry.acquire(target("p1"));
    vi.advanceTimersByTime(40);
    expect(fake.streams).toHaveLength(2);
    expect(fake.open()).toHaveLength(2);
    again.release();
    other.release();
    vi.advanceTimersByTime(19);
    expect(fake.open()).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(fake.open()).toHaveLength(0);
    expect(registry.stats().queries).toBe(0);
  });

  it("applies full values and patches to the cache entry", () => {
    const { fake, cache, registry } = setup();
    const t = target("p1");
    registry.acquire(t);
    expect(registry.state(t.hash).status).toBe("connecting");
    fake.main().handlers.onData({ id: "1.h1", data: full(1, [{ id: "a", title: "A" }], "5:") });
    expect(cache.read(t.queryKey)).toEqual([{ id: "a", title: "A" }]);
    expect(registry.state(t.hash)).toMatchObject({ status: "live", version: 1, position: "5:" });
    fake.main().handlers.onData({ id: "2.h2", data: patch(2, ["b", "a"], [{ id: "b", title: "B" }], "7:", 1) });
    expect(cache.read(t.queryKey)).toEqual([
      { id: "b", title: "B" },
      { id: "a", title: "A" },
    ]);
    fake.main().handlers.onData({ id: "3.h3", data: patch(3, ["b"], [], "8:", 2) });
    expect(cache.read(t.queryKey)).toEqual([{ id: "b", title: "B" }]);
    expect(registry.state(t.hash)).toMatchObject({ version: 3, position: "8:" });
  });

  it("resubscribes without lastEventId for a full value after a version gap", () => {
    const { fake, cache, registry } = setup();
    const t = target("p1");
    registry.acquire(t);
    const first = fake.main();
    first.handlers.onData({ id: "1.h1", data: full(1, [{ id: "a" }]) });
    first.handlers.onData({ id: "3.h3", data: patch(3, ["a", "c"], [{ id: "c" }]) }); // 2 was missed
    expect(first.closed).toBe(true);
    const second = fake.main();
    expect(second.input).toEqual({ path: "tasks.byProject", input: { projectId: "p1" } });
    expect(cache.read(t.queryKey)).toEqual([{ id: "a" }]); // the gapped patch was not applied
    second.handlers.onData({ id: "3.h3", data: full(3, [{ id: "a" }, { id: "c" }]) });
    expect(cache.read(t.queryKey)).toEqual([{ id: "a" }, { id: "c" }]);
    // Late messages of the old stream are ignored.
    first.handlers.onData({ id: "4.h4", data: patch(4, [], []) });
    expect(cache.read(t.queryKey)).toEqual([{ id: "a" }, { id: "c" }]);
    expect(registry.stats().resyncs).toBe(1);
  });

  it("applies patches to the server's value, replacing an optimistic cache value", () => {
    const { fake, cache, registry } = setup();
    const t = target("p1");
    registry.acquire(t);
    fake.main().handlers.onData({ id: "1.h1", data: full(1, [{ id: "a" }, { id: "b" }]) });
    // Optimistic: a row added and a row removed, as onMutate would.
    cache.write(t.queryKey, [{ id: "a" }, { id: "tmp" }]);
    fake.main().handlers.onData({ id: "2.h2", data: patch(2, ["a", "b", "n"], [{ id: "n" }], "10:", 2) });
    expect(cache.read(t.queryKey)).toEqual([{ id: "a" }, { id: "b" }, { id: "n" }]);
    expect(registry.stats().resyncs).toBe(0);
  });

  it("resumes with lastEventId when the server ends the stream, and shows reconnecting meanwhile", async () => {
    const { fake, registry } = setup();
    const t = target("p1");
    registry.acquire(t);
    fake.main().handlers.onConnectionStateChange?.({ state: "connecting", error: null });
    expect(registry.state(t.hash).status).toBe("connecting");
    fake.main().handlers.onData({ id: "1.h1", data: full(1, [{ id: "a" }]) });
    fake.main().handlers.onConnectionStateChange?.({ state: "connecting", error: new Error("closed") });
    expect(registry.state(t.hash).status).toBe("reconnecting");
    fake.main().handlers.onData({ id: "1.h1", data: { kind: "resumed", version: 1, position: "11:" } });
    expect(registry.state(t.hash)).toMatchObject({ status: "live", position: "11:" });

    fake.main().handlers.onComplete();
    expect(registry.state(t.hash).status).toBe("reconnecting");
    await vi.waitFor(() => expect(fake.open()).toHaveLength(1));
    expect(fake.main().input).toEqual({ path: "tasks.byProject", input: { projectId: "p1" }, lastEventId: "1.h1" });
  });

  it("retries a failed subscription unless the error is the caller's", async () => {
    vi.useFakeTimers();
    const { fake, registry } = setup();
    const t = target("p1");
    registry.acquire(t);
    fake.main().handlers.onError(Object.assign(new Error("db down"), { data: { code: "INTERNAL_SERVER_ERROR" } }));
    expect(registry.state(t.hash).status).toBe("error");
    await vi.advanceTimersByTimeAsync(1); // the first retry's delay (retry.initialDelayMs)
    expect(fake.open()).toHaveLength(1);
    expect(fake.streams).toHaveLength(2);

    fake.main().handlers.onError(Object.assign(new Error("bad input"), { data: { code: "BAD_REQUEST" } }));
    // Far past the longest retry delay (retry.maxDelayMs): a retry would have been due.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fake.streams).toHaveLength(2);
    expect(registry.state(t.hash)).toMatchObject({ status: "error" });
  });

  it("waitForCommit resolves once every live query's position includes the commit", async () => {
    vi.useFakeTimers();
    const { fake, registry } = setup();
    const t1 = target("p1");
    const t2 = target("p2");
    registry.acquire(t1);
    registry.acquire(t2);
    const [s1, s2] = fake.open();
    s1!.handlers.onData({ id: "1.h1", data: full(1, [], "100:") });
    s2!.handlers.onData({ id: "1.k1", data: full(1, [], "100:") });
    let resolved = false;
    const waiting = registry
      .waitForCommit(["105"], { hashOf: hashKey, probeDelayMs: 10_000 })
      .then(() => (resolved = true));
    s1!.handlers.onData({ id: "2.h2", data: patch(2, ["x"], [{ id: "x" }], "100:105") });
    await vi.advanceTimersByTimeAsync(9_999); // everything due short of the probe (probeDelayMs)
    expect(resolved).toBe(false); // p2 has not reported 105 yet
    s2!.handlers.onData({ id: "2.k2", data: patch(2, [], [], "106:") });
    await waiting;
    expect(resolved).toBe(true);
  });

  it("waitForCommit probes a query the write did not touch and adopts the position it is current at", async () => {
    const { fake, registry } = setup();
    const t = target("p1");
    registry.acquire(t);
    fake.main().handlers.onData({ id: "1.h1", data: full(1, [], "100:") });
    const waiting = registry.waitForCommit("105", { hashOf: hashKey, probeDelayMs: 5 });
    await vi.waitFor(() => expect(fake.streams).toHaveLength(2));
    const probe = fake.streams[1]!;
    expect(probe.input).toEqual({ path: "tasks.byProject", input: { projectId: "p1" }, lastEventId: "1.h1" });
    probe.handlers.onData({ id: "1.h1", data: { kind: "resumed", version: 1, position: "106:" } });
    await waiting;
    expect(probe.closed).toBe(true);
    expect(registry.state(t.hash).position).toBe("106:");
    expect(registry.stats().probes).toBeGreaterThanOrEqual(1);
  });

  it("waitForCommit ignores a probe whose value differs from ours, and times out", async () => {
    const { fake, registry } = setup();
    const t = target("p1");
    registry.acquire(t);
    fake.main().handlers.onData({ id: "1.h1", data: full(1, [], "100:") });
    const waiting = registry.waitForCommit("105", { hashOf: hashKey, probeDelayMs: 5, timeoutMs: 200 });
    await vi.waitFor(() => expect(fake.streams).toHaveLength(2));
    // The server's value changed (other hash): its position says nothing about ours.
    fake.streams[1]!.handlers.onData({ id: "2.zz", data: full(2, [{ id: "n" }], "106:") });
    await expect(waiting).rejects.toBeInstanceOf(CommitWaitTimeoutError);
    expect(registry.state(t.hash).position).toBe("100:");
  });

  it("waitForCommit stops waiting for a query that goes away", async () => {
    const { fake, registry } = setup();
    const handle = registry.acquire(target("p1"));
    fake.main().handlers.onData({ id: "1.h1", data: full(1, [], "100:") });
    const waiting = registry.waitForCommit("105", { hashOf: hashKey, probeDelayMs: 10_000 });
    handle.release();
    await waiting;
  });
});

describe("live values in a TanStack QueryClient", () => {
  it("are written as they are: the client's structural sharing runs for other writes, not for live ones", () => {
    const sharing = vi.fn((_previous: unknown, next: unknown) => next);
    const queryClient = new QueryClient({ defaultOptions: { queries: { structuralSharing: sharing } } });
    const fake = fakeTransport();
    const registry = new LiveQueryRegistry({ transport: fake.transport, cache: queryClientCache(queryClient), unsubscribeDelayMs: 0 });
    const t = target("p1");
    registry.acquire(t);
    const rows = Array.from({ length: 100 }, (_, i) => ({ id: `r${i}`, title: `row ${i}` }));
    fake.main().handlers.onData({ id: "1.h1", data: full(1, rows) });
    const added = { id: "n", title: "new" };
    fake.main().handlers.onData({
      id: "2.h2",
      data: { kind: "patch", version: 2, position: "10:", patch: { start: 100, remove: 0, insert: ["n"], upsert: [added], at: [100] } },
    });
    const held = queryClient.getQueryData<typeof rows>(t.queryKey)!;
    expect(held).toHaveLength(101);
    expect(held[0]).toBe(rows[0]); // the patch kept the rows' objects
    // A full value equal in all but one row: the live query shares it with what it held.
    const again = [...rows.map((r) => ({ ...r })), { ...added, title: "renamed" }];
    fake.main().handlers.onData({ id: "3.h3", data: full(3, again) });
    const shared = queryClient.getQueryData<typeof rows>(t.queryKey)!;
    expect(shared[5]).toBe(rows[5]);
    expect(shared[100]).toEqual({ id: "n", title: "renamed" });
    expect(sharing).not.toHaveBeenCalled();
    // Anything else written to the entry goes through the client's own structural sharing.
    queryClient.setQueryData(t.queryKey, [{ id: "optimistic" }]);
    expect(sharing).toHaveBeenCalledTimes(1);
  });
});

describe("positions and backoff", () => {
  it("positionIncludes: below the horizon or listed", () => {
    expect(positionIncludes("100:", "99")).toBe(true);
    expect(positionIncludes("100:", "100")).toBe(false);
    expect(positionIncludes("100:100,104", "104")).toBe(true);
    expect(positionIncludes("100:100,104", "103")).toBe(false);
    expect(() => positionIncludes("nope", "1")).toThrow(TypeError);
    expect(parseCommitHeader("12, 15,x,")).toEqual(["12", "15"]);
    expect(parseCommitHeader(null)).toEqual([]);
  });

  it("backoff grows exponentially, is capped, and jitters within bounds", () => {
    const at = (attempt: number, random: number) =>
      backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5, random: () => random });
    expect([0, 1, 2, 3, 4, 10].map((a) => at(a, 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([0, 1, 2, 10].map((a) => at(a, 0))).toEqual([50, 100, 200, 500]);
  });

  it("a backoff wait ends after its delay on its clock, or early on wake()", async () => {
    const clock = new ManualClock(0);
    const backoff = new Backoff({ initialDelayMs: 100, jitter: 0, clock });
    let waited: boolean | undefined;
    void backoff.wait().then((go) => (waited = go));
    clock.advance(99);
    await Promise.resolve();
    expect(waited).toBeUndefined();
    clock.advance(1);
    await Promise.resolve();
    expect(waited).toBe(true);
    // The next wait is 200 ms; the clock does not move: only wake() can end it.
    let woke: boolean | undefined;
    void backoff.wait().then((go) => (woke = go));
    await Promise.resolve();
    expect(woke).toBeUndefined();
    backoff.wake();
    await Promise.resolve();
    expect(woke).toBe(true);
    expect(clock.pending).toBe(0);
    backoff.close();
    expect(await backoff.wait()).toBe(false);
  });
});
