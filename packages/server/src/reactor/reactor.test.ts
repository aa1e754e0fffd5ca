// The reactor's group state machine against a fake change feed and a fake query runner, on fake
// timers: timeouts, backoff, the sweep and the limiter are timing logic, checked here without
// wall-clock waits. test/liveTimeouts.test.ts checks the same behaviour against real databases.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { schema } from "../../../../generated/tether/index.ts";
import type { Change, ChangeFeed, FeedEvent, FeedListener } from "../feed/index.ts";
import { createLogger } from "../log/index.ts";
import { DEFAULT_REACTOR_CONFIG, type ReactorConfig } from "./config.ts";
import { applyListPatch, type LiveMessage } from "./liveMessage.ts";
import type { LiveEvent } from "./queryGroup.ts";
import { Reactor, type LiveQueryRunner } from "./reactor.ts";
import type { ReadSet } from "./readSet.ts";
import { stableStringify } from "./stableJson.ts";

const TASKS: ReadSet = { reads: [{ model: "Task", operation: "findMany" }], allTables: false };

/** A feed the test drives by hand: `commit()` delivers one transaction of one Task insert. */
function fakeFeed() {
  let listener: FeedListener | null = null;
  let xid = 100;
  const feed = {
    subscribe: async (l: FeedListener) => {
      listener = l;
      return { position: () => "0:", caughtUp: async () => undefined, close: () => undefined };
    },
  } as unknown as ChangeFeed;
  return {
    feed,
    commit() {
      xid += 1;
      const change: Change = {
        seq: String(xid),
        xid: String(xid),
        table: "Task",
        op: "INSERT",
        pk: { id: `t${xid}` },
        old: null,
        new: { id: `t${xid}`, projectId: "p1", title: "x", done: false },
        omitted: [],
        at: new Date().toISOString(),
      };
      const event: FeedEvent = { type: "transaction", xid: String(xid), changes: [change], position: `${xid}:` };
      void listener?.(event);
    },
  };
}

interface Call {
  readonly path: string;
  readonly signal: AbortSignal;
  /** Settles the call; `settled` is true once it did. */
  succeed(data: unknown): void;
  fail(error: unknown): void;
  settled: boolean;
}

/**
 * A runner whose calls the test settles by hand. Like the real one, a call whose signal aborts
 * rejects (its SQL was cancelled) — unless `ignoreAbort` (a statement that cannot be interrupted).
 */
function fakeRunner(options: { ignoreAbort?: boolean } = {}) {
  const calls: Call[] = [];
  const run: LiveQueryRunner = ({ path, signal }) =>
    new Promise((resolve, reject) => {
      const call: Call = {
        path,
        signal,
        settled: false,
        succeed(data) {
          call.settled = true;
          resolve({ data, readSet: TASKS });
        },
        fail(error) {
          call.settled = true;
          reject(error);
        },
      };
      calls.push(call);
      if (!options.ignoreAbort) signal.addEventListener("abort", () => call.fail(signal.reason), { once: true });
    });
  return { run, calls, last: () => calls[calls.length - 1]! };
}

/** Reads a live subscription in the background, recording its messages and its end. */
function consume(events: AsyncIterableIterator<LiveEvent>) {
  const state = { messages: [] as LiveMessage[], error: undefined as unknown, ended: false };
  void (async () => {
    try {
      for await (const event of events) state.messages.push(event.message);
    } catch (error) {
      state.error = error;
    } finally {
      state.ended = true;
    }
  })();
  const data = () => {
    const last = [...state.messages].reverse().find((m) => m.kind === "full");
    return last?.kind === "full" ? last.data : undefined;
  };
  return { state, data, stop: () => events.return?.() };
}

const CONFIG: Partial<ReactorConfig> = {
  queryTimeoutMs: 100,
  retryBackoffBaseMs: 1_000,
  retryBackoffMaxMs: 8_000,
  resyncIntervalMs: 0,
};

describe("Reactor group state machine (fake feed, fake timers)", () => {
  let reactor: Reactor;
  beforeEach(() => {
    // performance too: the batching window is measured with performance.now().
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date", "performance"] });
    vi.spyOn(Math, "random").mockReturnValue(1); // backoff delays at their upper bound
  });
  afterEach(async () => {
    await reactor?.close();
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  function start(runner: ReturnType<typeof fakeRunner>, config: Partial<ReactorConfig> = {}) {
    const feed = fakeFeed();
    reactor = new Reactor({ feed: feed.feed, schema, run: runner.run, log: createLogger(), config: { ...CONFIG, ...config } });
    return feed;
  }

  const subscribe = (input: unknown = { projectId: "p1" }) =>
    consume(reactor.subscribe({ path: "tasks.byProject", input, ctx: {}, scope: "s" }));

  /** Lets promises and zero-delay timers run (a setTimeout of 0 is due after 1 ms). */
  const settle = () => vi.advanceTimersByTimeAsync(1);
  /** Moves the clock by ms, then runs what a timer due at its end started. */
  const advance = async (ms: number) => {
    await vi.advanceTimersByTimeAsync(ms);
    await settle();
  };

  /** A subscriber holding ["v1"], then one relevant change committed: its re-run is now due. */
  async function liveThenChange(runner: ReturnType<typeof fakeRunner>, feed: ReturnType<typeof fakeFeed>) {
    const sub = subscribe();
    await settle();
    runner.last().succeed(["v1"]);
    await settle();
    feed.commit();
    await settle();
    return sub;
  }

  it("re-runs a group after backoff when its re-run timed out while a change arrived, and stays live", async () => {
    const runner = fakeRunner();
    const feed = start(runner);
    const sub = subscribe();
    await settle();
    runner.last().succeed(["v1"]);
    await settle();
    expect(sub.data()).toEqual(["v1"]);

    feed.commit();
    await settle();
    expect(runner.calls).toHaveLength(2); // the re-run, which hangs (a lock)
    feed.commit(); // another relevant change commits while it runs
    await advance(100); // ... past the timeout
    expect(runner.calls[1]!.signal.aborted).toBe(true); // abandoned and cancelled
    expect(reactor.stats()).toMatchObject({ timeouts: 1, cancelled: 1, groupsByState: { backoff: 1 } });

    await advance(1_000); // the backoff's upper bound
    expect(runner.calls).toHaveLength(3);
    runner.last().succeed(["v3"]);
    await settle();
    expect(sub.data()).toEqual(["v3"]);
    expect(reactor.stats()).toMatchObject({ retries: 1, groupsByState: { idle: 1 } });

    // Not frozen: a later write reaches it as usual.
    feed.commit();
    await advance(5); // within the batching window of the last flush
    expect(runner.calls).toHaveLength(4);
    runner.last().succeed(["v4"]);
    await settle();
    expect(sub.data()).toEqual(["v4"]);
  });

  it("does not re-run in a tight loop when re-runs keep timing out: retries back off", async () => {
    const runner = fakeRunner();
    const feed = start(runner);
    await liveThenChange(runner, feed);
    await advance(60_000); // every run hangs until its timeout (100 ms)
    // Timeout 100 ms, backoff 1 s doubling to 8 s: re-runs at 0, 1.1, 3.2, 7.3, 15.4, 23.5, 31.6,
    // 39.7, 47.8, 55.9 s, after the first run. A tight loop would be ~600 runs.
    expect(runner.calls.length).toBe(11);
    expect(reactor.stats().timeouts).toBe(runner.calls.length - 1);
  });

  it("with the default backoff, a subscriber is stale at most 5 s (+ a run) after a long outage ends", async () => {
    // Red team: after a 25 s lock, subscribers waited ~20 s more for the backoff (then 30 s max).
    const runner = fakeRunner();
    const feed = start(runner, {
      retryBackoffBaseMs: DEFAULT_REACTOR_CONFIG.retryBackoffBaseMs,
      retryBackoffMaxMs: DEFAULT_REACTOR_CONFIG.retryBackoffMaxMs,
    });
    const sub = await liveThenChange(runner, feed);
    // Two minutes of a database that answers nothing in time. However long an outage lasts, the
    // time between two attempts, which is how long subscribers stay stale after it ends, stays
    // within the cap plus one run's timeout.
    let lastStart = 0;
    let maxGap = 0;
    let seen = runner.calls.length;
    for (let t = 0; t < 120_000; t += 50) {
      await advance(50);
      if (runner.calls.length !== seen) {
        maxGap = Math.max(maxGap, t - lastStart);
        lastStart = t;
        seen = runner.calls.length;
      }
    }
    // The promise made in docs/architecture.md: at most 5 s (the default cap) plus the run's timeout.
    expect(maxGap).toBeLessThanOrEqual(5_000 + CONFIG.queryTimeoutMs! + 100);
    expect(maxGap).toBeGreaterThan(1_000); // and it did back off
    // The outage ends: the next attempt answers.
    while (runner.calls.length === seen) await advance(50);
    runner.last().succeed(["v2"]);
    await settle();
    expect(sub.data()).toEqual(["v2"]);
  });

  it("a re-run that fails because the database is restarting is retried with backoff; the subscription lives on", async () => {
    // Fault suite: during a Postgres restart, live queries ended with INTERNAL_SERVER_ERROR.
    const runner = fakeRunner();
    const feed = start(runner);
    const sub = await liveThenChange(runner, feed);
    const shutdown = Object.assign(new Error("driver"), {
      name: "DriverAdapterError",
      cause: { kind: "postgres", code: "57P01", message: "terminating connection due to administrator command" },
    });
    runner.last().fail(shutdown);
    await settle();
    expect(sub.state.ended).toBe(false);
    const failed = runner.calls.length;
    await advance(1_000); // CONFIG's first backoff
    expect(runner.calls.length).toBe(failed + 1);
    runner.last().fail(new Error("Connection terminated unexpectedly")); // pg's own, while it restarts
    await settle();
    expect(sub.state.ended).toBe(false);
    await advance(2_000);
    runner.last().succeed(["v2"]);
    await settle();
    expect(sub.data()).toEqual(["v2"]);
    expect(sub.state.error).toBeUndefined();
  });

  it("a timed-out first run is retried, and the subscriber gets the value without an error", async () => {
    const runner = fakeRunner();
    start(runner);
    const sub = subscribe();
    await advance(100);
    expect(runner.calls[0]!.signal.aborted).toBe(true);
    expect(sub.state.ended).toBe(false);
    await advance(1_000);
    expect(runner.calls).toHaveLength(2);
    runner.last().succeed(["first"]);
    await settle();
    expect(sub.data()).toEqual(["first"]);
    expect(sub.state.error).toBeUndefined();
  });

  it("a real error of a first run still ends the subscription with it", async () => {
    const runner = fakeRunner();
    start(runner);
    const sub = subscribe();
    await settle();
    const forbidden = Object.assign(new Error("not yours"), { code: "FORBIDDEN" });
    runner.last().fail(forbidden);
    await settle();
    expect(sub.state.ended).toBe(true);
    expect(sub.state.error).toBe(forbidden);
    expect(reactor.stats().groups).toBe(0);
  });

  it("with firstRunTimeout 'fail', a timed-out first run ends the subscription", async () => {
    const runner = fakeRunner();
    start(runner, { firstRunTimeout: "fail" });
    const sub = subscribe();
    await advance(100);
    await settle();
    expect(sub.state.ended).toBe(true);
    expect((sub.state.error as Error).name).toBe("TimeoutError");
  });

  it("gives a new subscriber of a group whose last run timed out a fresh value, not the stale one", async () => {
    const runner = fakeRunner();
    const feed = start(runner);
    subscribe();
    await settle();
    runner.last().succeed(["stale"]);
    await settle();
    feed.commit();
    await settle();
    feed.commit();
    await advance(100); // the re-run times out
    const late = subscribe();
    await settle();
    expect(late.state.messages).toEqual([]); // nothing stale handed out
    await advance(1_000);
    runner.last().succeed(["fresh"]);
    await settle();
    expect(late.state.messages.map((m) => m.kind === "full" && m.data)).toEqual([["fresh"]]);
  });

  it("the periodic sweep still re-runs a group after one of its runs timed out", async () => {
    const runner = fakeRunner();
    const feed = start(runner, { resyncIntervalMs: 30_000 });
    const startedAt = Date.now();
    const sub = await liveThenChange(runner, feed);
    feed.commit();
    await advance(100); // timed out
    await advance(1_000);
    runner.last().succeed(["v2"]); // the retry
    await settle();
    const before = runner.calls.length;
    await vi.advanceTimersByTimeAsync(startedAt + 30_000 - Date.now()); // the sweep, at 30 s
    await settle();
    expect(runner.calls.length).toBe(before + 1);
    runner.last().succeed(["swept"]);
    await settle();
    expect(sub.data()).toEqual(["swept"]);
  });

  it("an abandoned run keeps its limiter slot until its work settles", async () => {
    const runner = fakeRunner({ ignoreAbort: true }); // a statement that cannot be interrupted
    start(runner, { maxConcurrentExecutions: 1 });
    subscribe({ projectId: "a" });
    await advance(100); // a's first run times out, abandoned
    expect(runner.calls[0]!.signal.aborted).toBe(true);
    const b = subscribe({ projectId: "b" });
    await settle();
    expect(runner.calls).toHaveLength(1); // b waits: the abandoned run still holds the only slot
    expect(reactor.stats()).toMatchObject({ executionsInFlight: 1, executionsQueued: 1, abandonedInFlight: 1 });
    runner.calls[0]!.succeed(["late"]); // its outcome is moot, but its slot is freed
    await settle();
    expect(runner.calls).toHaveLength(2);
    expect(runner.calls[1]!.path).toBe("tasks.byProject");
    runner.calls[1]!.succeed(["b"]);
    await settle();
    expect(b.data()).toEqual(["b"]);
    expect(reactor.stats()).toMatchObject({ abandonedInFlight: 0 });
  });

  it("cancels the run of a group whose last subscriber left", async () => {
    const runner = fakeRunner();
    start(runner);
    const sub = subscribe();
    await settle();
    await sub.stop();
    await settle();
    expect(runner.calls[0]!.signal.aborted).toBe(true);
    expect(reactor.stats()).toMatchObject({ groups: 0, cancelled: 1, executionsInFlight: 0 });
  });
});

describe("Reactor fan-out (real event loop)", () => {
  it("hands a result to many subscribers a share per event-loop turn, in order; settled() waits for every share", async () => {
    const runner = fakeRunner();
    const feed = fakeFeed();
    const reactor = new Reactor({ feed: feed.feed, schema, run: runner.run, log: createLogger(), config: { ...CONFIG, fanOutPerTurn: 10 } });
    try {
      const subs = Array.from({ length: 200 }, () =>
        consume(reactor.subscribe({ path: "tasks.byProject", input: { projectId: "p1" }, ctx: {}, scope: "s" })),
      );
      await vi.waitFor(() => expect(runner.calls).toHaveLength(1));
      runner.last().succeed(["v1"]);
      // A callback queued for the next turn (as a database reply would be) runs before the fan-out ends.
      const reachedBeforeNextTurn = await new Promise<number>((resolve) =>
        setImmediate(() => resolve(subs.filter((sub) => sub.state.messages.length > 0).length)),
      );
      expect(reachedBeforeNextTurn).toBeGreaterThanOrEqual(10);
      expect(reachedBeforeNextTurn).toBeLessThan(200);
      await reactor.settled();
      expect(subs.every((sub) => sub.state.messages.length === 1)).toBe(true);

      feed.commit();
      await vi.waitFor(() => expect(runner.calls).toHaveLength(2));
      runner.last().succeed(["v1", "v2"]);
      await reactor.settled();
      for (const sub of subs) expect(sub.state.messages.map((m) => m.version)).toEqual([1, 2]);
      expect(reactor.stats().deliveriesWaiting).toBe(0);
    } finally {
      await reactor.close();
    }
  });
});

describe("Reactor incremental updates (fake feed, fake runner)", () => {
  const WHERE = { projectId: "p1" };
  const ARGS = { where: WHERE, orderBy: [{ position: "asc" }, { id: "asc" }] };
  const COLUMNS = ["id", "projectId", "title", "done", "position", "assigneeId", "createdAt", "updatedAt"].map((c) => `Task.${c}`);
  const image = (id: string, position: number) => ({
    id, projectId: "p1", title: id, done: false, position, assigneeId: null,
    createdAt: "2024-05-01T10:00:00", updatedAt: "2024-05-01T10:00:00",
  });
  const asRow = (i: ReturnType<typeof image>) => ({ ...i, createdAt: new Date(`${i.createdAt}Z`), updatedAt: new Date(`${i.updatedAt}Z`) });

  function setup(config: Partial<ReactorConfig> = {}) {
    let listener: FeedListener | null = null;
    const feed = {
      subscribe: async (l: FeedListener) => {
        listener = l;
        return { position: () => "0:", caughtUp: async () => undefined, close: () => undefined };
      },
    } as unknown as ChangeFeed;
    const table = new Map<string, ReturnType<typeof image>>();
    let runs = 0;
    const run: LiveQueryRunner = async () => {
      runs += 1;
      const rows = [...table.values()].sort((a, b) => a.position - b.position || (a.id < b.id ? -1 : 1)).map(asRow);
      const readSet: ReadSet = { reads: [{ model: "Task", operation: "findMany", where: WHERE }], allTables: false };
      return { data: rows, readSet, soleCall: { model: "Task", operation: "findMany", args: ARGS, result: rows, snapshot: stableStringify(rows) } };
    };
    const reactor = new Reactor({
      feed, schema, run, log: createLogger(), config: { ...CONFIG, ...config },
      columnFacts: async () => ({ exact: new Set(COLUMNS), orderable: new Set(COLUMNS) }),
    });
    let xid = 0;
    /** Commits one transaction: the rows change in the fake table and the feed delivers it. */
    const commit = (...changes: Array<{ id: string; position: number | null; omitted?: string[] }>) => {
      xid += 1;
      const delivered: Change[] = changes.map(({ id, position, omitted = [] }) => {
        const old = table.get(id) ?? null;
        const next = position === null ? null : image(id, position);
        if (next) table.set(id, next);
        else table.delete(id);
        return { seq: String(xid), xid: String(xid), table: "Task", op: !old ? "INSERT" : next ? "UPDATE" : "DELETE", pk: { id }, old, new: next, omitted, at: new Date().toISOString() };
      });
      void listener?.({ type: "transaction", xid: String(xid), changes: delivered, position: `${xid}:` });
    };
    const subscriber = consume(reactor.subscribe({ path: "tasks.byProject", input: WHERE, ctx: {}, scope: "s" }));
    const ids = () => {
      let rows: Array<Record<string, unknown>> = [];
      for (const m of subscriber.state.messages) {
        if (m.kind === "full") rows = m.data as typeof rows;
        else if (m.kind === "patch") rows = applyListPatch(rows, m.patch);
      }
      return rows.map((r) => r.id);
    };
    return { reactor, commit, runs: () => runs, subscriber, ids };
  }

  let current: Reactor | null = null;
  afterEach(async () => {
    await current?.close();
    current = null;
  });

  it("publishes the maintained result without a run, as a run would (version, position, patch, settled)", async () => {
    const { reactor, commit, runs, subscriber, ids } = setup();
    current = reactor;
    commit({ id: "b", position: 2 }); // before the first run: part of its result
    await reactor.settled();
    expect(runs()).toBe(1);
    commit({ id: "a", position: 1 }, { id: "c", position: 3 });
    commit({ id: "b", position: 4 });
    await reactor.settled();
    expect(runs()).toBe(1);
    expect(reactor.stats()).toMatchObject({ incrementalUpdates: 1, reExecutions: 0, groupsByState: { idle: 1 } });
    const last = subscriber.state.messages.at(-1)!;
    expect(last).toMatchObject({ kind: "patch", version: 2, position: "3:" });
    expect(ids()).toEqual(["a", "c", "b"]);
  });

  it("re-runs for a sweep, for a change it cannot apply exactly (the whole batch), and when switched off", async () => {
    const { reactor, commit, runs, ids } = setup();
    current = reactor;
    await reactor.settled();
    reactor.invalidateAll();
    await reactor.settled();
    expect(runs()).toBe(2);
    commit({ id: "a", position: 1 }, { id: "b", position: 2, omitted: ["title"] });
    await reactor.settled();
    expect(runs()).toBe(3);
    expect(reactor.stats().incrementalUpdates).toBe(0);
    expect(ids()).toEqual(["a", "b"]);

    const off = setup({ incrementalUpdates: false });
    current = off.reactor;
    await reactor.close();
    await off.reactor.settled();
    off.commit({ id: "a", position: 1 });
    await off.reactor.settled();
    expect(off.runs()).toBe(2);
    expect(off.reactor.stats().incrementalUpdates).toBe(0);
  });
});

describe("Reactor fan-out backpressure (real event loop)", () => {
  it("starts no run while an earlier result is still being handed out; the changes meanwhile share one run", async () => {
    const runner = fakeRunner();
    const feed = fakeFeed();
    const reactor = new Reactor({ feed: feed.feed, schema, run: runner.run, log: createLogger(), config: { ...CONFIG, fanOutPerTurn: 10, incrementalUpdates: false } });
    try {
      const subs = Array.from({ length: 300 }, () =>
        consume(reactor.subscribe({ path: "tasks.byProject", input: { projectId: "p1" }, ctx: {}, scope: "s" })),
      );
      await vi.waitFor(() => expect(runner.calls).toHaveLength(1));
      runner.last().succeed(["v1"]);
      // Microtasks only (no event-loop turn): the result is published, its hand-out begun.
      for (let i = 0; i < 50 && reactor.stats().deliveriesWaiting === 0; i++) await Promise.resolve();
      expect(reactor.stats().deliveriesWaiting).toBeGreaterThan(0);
      feed.commit();
      feed.commit();
      // Turn by turn until the hand-out is over: no second run meanwhile.
      let turns = 0;
      while (reactor.stats().deliveriesWaiting > 0) {
        expect(runner.calls).toHaveLength(1);
        await new Promise((resolve) => setImmediate(resolve));
        turns += 1;
      }
      expect(turns).toBeGreaterThan(1);
      await vi.waitFor(() => expect(runner.calls).toHaveLength(2));
      runner.last().succeed(["v1", "v2", "v3"]);
      await reactor.settled();
      expect(runner.calls).toHaveLength(2); // both changes in one run
      for (const sub of subs) expect(sub.state.messages.map((m) => m.version)).toEqual([1, 2]);
    } finally {
      await reactor.close();
    }
  });
});
