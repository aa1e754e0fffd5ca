import { eventHash } from "@tether/protocol";
import type { Change, ChangeFeed, FeedEvent, FeedSubscription } from "../feed/index.ts";
import type { Logger } from "../log/index.ts";
import type { SchemaMeta } from "../schema/index.ts";
import { multiplexQueries, watchQueryWaits } from "../store/index.ts";
import { SubscriberQueue } from "../queue/index.ts";
import { Deadline } from "./deadline.ts";
import { DEFAULT_REACTOR_CONFIG, type ReactorConfig } from "./config.ts";
import { diffLists, type LiveMessage } from "./liveMessage.ts";
import { GroupIndex } from "./groupIndex.ts";
import { ConcurrencyLimiter, TimeoutError } from "./limiter.ts";
import { NO_COLUMN_FACTS, applyChanges, maintainableCall, maintainedList, type ColumnFacts } from "./incremental/index.ts";
import { affects } from "./predicate.ts";
import { QueryGroup, type GroupRun, type GroupState, type LiveEvent, type Subscriber } from "./queryGroup.ts";
import { backoffDelay, isTransientError } from "./retry.ts";
import type { ReadSet, SoleCall } from "./readSet.ts";
import { hashOf, stableStringify, stableStringifyNotingBigInt } from "./stableJson.ts";

/** Runs a query procedure by path with a context, recording what it read. */
export type LiveQueryRunner = (request: {
  ctx: unknown;
  path: string;
  input: unknown;
  signal: AbortSignal;
}) => Promise<RunOutcome>;

/** What one execution returned and read (`soleCall`: its only model operation, if it ran just one). */
export interface RunOutcome {
  data: unknown;
  readSet: ReadSet;
  soleCall?: SoleCall | null;
}

export interface ReactorOptions {
  /** The change feed, or how to open it when the reactor starts. */
  feed: ChangeFeed | (() => Promise<ChangeFeed>);
  schema: SchemaMeta;
  run: LiveQueryRunner;
  log: Logger;
  config?: Partial<ReactorConfig>;
  /** Column types and collations for incremental updates (incremental/columnFacts.ts); without them nothing is maintained. */
  columnFacts?: () => Promise<ColumnFacts>;
}

export interface LiveSubscribeRequest {
  path: string;
  input: unknown;
  ctx: unknown;
  /** Auth scope: subscriptions share a group only within one scope (e.g. the user id). */
  scope: string;
  /** tRPC's lastEventId when the client reconnects. */
  lastEventId?: string | null;
  signal?: AbortSignal;
}

/** Results (and patches of them) the reactor saw a BigInt in while hashing them. */
const bigIntHolders = new WeakSet<object>();

function markHoldsBigInt(value: unknown): void {
  if (typeof value === "object" && value !== null) bigIntHolders.add(value);
}

/**
 * Whether a live message may carry a BigInt (JSON cannot): known from the reactor's own hashing
 * of the result, so checking a message costs nothing unless it does.
 */
export function mayHoldBigInt(message: LiveMessage): boolean {
  if (message.kind === "full") return typeof message.data === "object" && message.data !== null && bigIntHolders.has(message.data);
  if (message.kind === "patch") return bigIntHolders.has(message.patch);
  return false;
}

/** A message on its way to a subscriber's queue, or a settled() waiter to release once those before it are handed out. */
type Delivery =
  | { readonly subscriber: Subscriber; readonly event: LiveEvent; readonly fold: () => LiveEvent }
  | { readonly then: () => void };

interface SettleWaiter {
  /** Runs started when the wait began: a run with a higher seq read everything it waits for. */
  readonly afterRun: number;
  /** Groups not idle when the wait began, each waiting for a result that includes its point (or to end). */
  readonly pending: Set<QueryGroup>;
  resolve(): void;
}

export interface ReactorStats {
  subscriptions: number;
  groups: number;
  /** Every execution, first runs included. */
  executions: number;
  /** Executions caused by changes or resyncs (not first runs). */
  reExecutions: number;
  /** Results brought up to date from the changes alone, without an execution (incrementalUpdates). */
  incrementalUpdates: number;
  /** Groups marked dirty by a change (before batching). */
  invalidations: number;
  messagesSent: number;
  /** Executions abandoned for running longer than queryTimeoutMs (first runs included). */
  timeouts: number;
  /** Executions started again after a timeout (each after its backoff). */
  retries: number;
  /** Executions whose signal was aborted (timed out, or their group closed): their SQL is cancelled. */
  cancelled: number;
  /** Abandoned executions whose work has not settled yet: each still holds a limiter slot. */
  abandonedInFlight: number;
  /** Limiter slots taken now (running executions, abandoned ones included). */
  executionsInFlight: number;
  /** Executions waiting for a limiter slot. */
  executionsQueued: number;
  /** Messages waiting for an event-loop turn to reach their subscribers' queues (fanOutPerTurn). */
  deliveriesWaiting: number;
  /** Groups per state (see GroupState in queryGroup.ts). */
  groupsByState: Record<Exclude<GroupState, "closed">, number>;
  /** Delay between the last processed change's write and its processing (ms). */
  feedLagMs: number | null;
  /** Feed position the reactor has processed. */
  position: string;
}

/**
 * The one owner of the live pipeline: change feed → invalidation (ReadSet index + predicate
 * match) → batched, bounded re-execution → hash compare → patch or full value → subscribers.
 */
export class Reactor {
  private readonly config: ReactorConfig;
  private readonly groups = new Map<string, QueryGroup>();
  /** table → groups whose ReadSet touches it, filed by pinned column values. */
  private readonly index: GroupIndex<QueryGroup>;
  /** Groups in state "running": they see every change (see invalidate()). */
  private readonly running = new Set<QueryGroup>();
  private readonly limiter: ConcurrencyLimiter;
  private feedSubscription: FeedSubscription | null = null;
  private starting: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private lastFlushAt = -Infinity;
  /** Groups marked dirty since the last flush (a flush visits only these). */
  private readonly dirtyGroups = new Set<QueryGroup>();
  private resyncTimer: NodeJS.Timeout | undefined;
  private position = "";
  /** Executions started so far (GroupRun.seq). */
  private runsStarted = 0;
  /** settled() calls waiting for groups to publish a result that includes their point. */
  private readonly settleWaiters = new Set<SettleWaiter>();
  /** Messages waiting for an event-loop turn of their own (see ReactorConfig.fanOutPerTurn). */
  private readonly outbox: Array<Delivery | undefined> = [];
  private outboxHead = 0;
  /** Messages handed out since the last turn began. */
  private handedThisTurn = 0;
  private turnTimer: NodeJS.Immediate | null = null;
  /** A flush waits for the outbox to drain (see flush()). */
  private flushAfterFanOut = false;
  private closed = false;
  private columns: ColumnFacts = NO_COLUMN_FACTS;
  private readonly counters = {
    executions: 0,
    reExecutions: 0,
    incrementalUpdates: 0,
    invalidations: 0,
    messagesSent: 0,
    timeouts: 0,
    retries: 0,
    cancelled: 0,
    abandonedInFlight: 0,
    feedLagMs: null as number | null,
  };

  constructor(private readonly options: ReactorOptions) {
    this.config = { ...DEFAULT_REACTOR_CONFIG, ...options.config };
    this.limiter = new ConcurrencyLimiter(this.config.maxConcurrentExecutions);
    this.index = new GroupIndex(options.schema);
  }

  /** Subscribes to the feed (idempotent; subscriptions call it too). */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const feed = typeof this.options.feed === "function" ? await this.options.feed() : this.options.feed;
      if (this.config.incrementalUpdates && this.options.columnFacts) {
        // Without them no result is maintained: every relevant change re-runs its group.
        this.columns = await this.options.columnFacts().catch((error: unknown) => {
          this.options.log.warn({ err: (error as Error).message }, "column types unknown: live queries re-run on every change");
          return NO_COLUMN_FACTS;
        });
      }
      this.feedSubscription = await feed.subscribe((event) => this.onFeedEvent(event));
      this.position = this.feedSubscription.position();
      if (this.config.resyncIntervalMs > 0) {
        this.resyncTimer = setInterval(() => this.invalidateAll(), this.config.resyncIntervalMs).unref();
      }
    })();
    return this.starting;
  }

  /**
   * A live subscription: a stream of tracked messages, first the current result, then changes.
   * A hand-written iterator rather than an async generator, so that `return()` takes effect at
   * once even while a `next()` is pending (a generator queues it behind that `next()`, which may
   * never come for a quiet query): a consumer that stops iterating always releases the group.
   */
  subscribe(request: LiveSubscribeRequest): AsyncIterableIterator<LiveEvent> {
    let opened: Promise<Subscriber> | null = null;
    let release: (() => void) | null = null;
    let done = false;
    const finish = () => {
      done = true;
      release?.();
      release = null;
    };
    const open = async (): Promise<Subscriber> => {
      await this.start();
      const key = `${request.path}\u0000${stableStringify(request.input ?? null)}\u0000${request.scope}`;
      let group = this.groups.get(key);
      const fresh = !group;
      if (!group) {
        group = new QueryGroup(key, request.path, request.input, request.ctx);
        this.groups.set(key, group);
      }
      const joined = group;
      const subscriber: Subscriber = {
        queue: new SubscriberQueue<LiveEvent>({ maxItems: this.config.maxQueuedMessagesPerSubscriber }),
        needsFull: true,
        resumeHash: eventHash(request.lastEventId),
      };
      joined.subscribers.add(subscriber);
      const onAbort = () => subscriber.queue.end();
      request.signal?.addEventListener("abort", onAbort, { once: true });
      release = () => {
        request.signal?.removeEventListener("abort", onAbort);
        subscriber.queue.end();
        this.detach(joined, subscriber);
      };
      if (done || request.signal?.aborted) {
        finish();
        return subscriber;
      }
      if (fresh) {
        // Runs at once (no batching window). Its errors (bad input, forbidden) end this
        // subscription and every other that joined meanwhile, through their queues.
        this.execute(joined);
      } else if (joined.state === "idle" && joined.result?.cached) {
        this.sendInitial(joined, subscriber);
      } else if (joined.state === "idle") {
        this.markDirty(joined); // result too big to keep: re-run, this subscriber gets it in full
      }
      // In any other state a run is due or under way: its result reaches this subscriber in full.
      return subscriber;
    };
    const iterator: AsyncIterableIterator<LiveEvent> = {
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        if (done) return { done: true, value: undefined };
        try {
          const subscriber = await (opened ??= open());
          const result = await subscriber.queue.next();
          if (result.done) finish();
          return result;
        } catch (error) {
          finish();
          throw error;
        }
      },
      return: async () => {
        finish();
        return { done: true, value: undefined };
      },
    };
    return iterator;
  }

  /** Could a result of this model operation be maintained (so a run should snapshot it)? */
  couldMaintain(call: { model: string; operation: string; args: unknown }): boolean {
    return this.config.incrementalUpdates && maintainableCall(call, this.options.schema, this.columns) !== null;
  }

  stats(): ReactorStats {
    let subscriptions = 0;
    const groupsByState = { idle: 0, dirty: 0, running: 0, "rerun-pending": 0, backoff: 0 };
    for (const group of this.groups.values()) {
      subscriptions += group.subscribers.size;
      if (group.state !== "closed") groupsByState[group.state] += 1;
    }
    return {
      subscriptions,
      groups: this.groups.size,
      position: this.position,
      ...this.counters,
      executionsInFlight: this.limiter.active,
      executionsQueued: this.limiter.queued,
      deliveriesWaiting: this.outbox.length - this.outboxHead,
      groupsByState,
    };
  }

  /**
   * Resolves once this node has processed every change committed before the call: the feed has
   * delivered it, and every live query it affected has re-run and queued its message to its
   * subscribers (or ended them with an error). For tests and scripts that need "my write is
   * live now" without polling stats. A query waiting out a retry backoff is waited for; under a
   * steady stream of writes it still resolves (later changes are not waited for), once the feed
   * has read its backlog. `signal` rejects the wait with its reason.
   */
  async settled(signal?: AbortSignal): Promise<void> {
    await this.start();
    await this.feedSubscription!.caughtUp();
    signal?.throwIfAborted();
    const pending = new Set<QueryGroup>();
    for (const group of this.groups.values()) if (group.state !== "idle" && !group.closed) pending.add(group);
    if (this.closed) return;
    if (pending.size === 0) return new Promise<void>((resolve) => this.afterDeliveries(resolve));
    await new Promise<void>((resolve, reject) => {
      const waiter: SettleWaiter = { afterRun: this.runsStarted, pending, resolve: () => done(resolve) };
      const onAbort = () => done(() => reject(signal!.reason));
      const done = (finish: () => void) => {
        this.settleWaiters.delete(waiter);
        signal?.removeEventListener("abort", onAbort);
        finish();
      };
      this.settleWaiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * A group published the result of `run` (null: it is gone, or was updated without a run):
   * settled() waiters it was holding move on when that result includes their point — the run
   * started after the wait began, or the group went idle (then no change processed since the run
   * started affects it, so its result holds at the reactor's position, past every waiter's point).
   */
  private groupSettled(group: QueryGroup, run: GroupRun | null): void {
    const idle = group.state === "idle";
    for (const waiter of this.settleWaiters) {
      if (!waiter.pending.has(group)) continue;
      if (run && !idle && run.seq <= waiter.afterRun) continue;
      waiter.pending.delete(group);
      // After the messages already on their way: settled() promises they are queued.
      if (waiter.pending.size === 0) this.afterDeliveries(waiter.resolve);
    }
  }

  /** Re-runs every group (feed resync, periodic sweep, or by hand). */
  invalidateAll(): void {
    for (const group of this.groups.values()) this.markDirty(group);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.turnTimer) clearImmediate(this.turnTimer);
    this.outbox.length = 0;
    this.outboxHead = 0;
    clearInterval(this.resyncTimer);
    this.feedSubscription?.close();
    for (const group of [...this.groups.values()]) {
      for (const subscriber of group.subscribers) subscriber.queue.end();
      this.dropGroup(group);
    }
    this.groups.clear();
    this.dirtyGroups.clear();
    this.index.clear();
    for (const waiter of [...this.settleWaiters]) waiter.resolve();
  }

  private onFeedEvent(event: FeedEvent): void {
    this.position = event.position;
    if (event.type === "resync") {
      this.options.log.warn({ reason: event.reason }, "change feed resync: re-running every live query");
      this.invalidateAll();
      return;
    }
    const last = event.changes[event.changes.length - 1];
    if (last) this.counters.feedLagMs = Date.now() - Date.parse(last.at);
    for (const change of event.changes) this.invalidate(change);
  }

  private invalidate(change: Change): void {
    // Running groups judge changes against the ReadSet their execution ends with.
    for (const group of this.running) group.changesDuringRun.push(change);
    for (const group of this.index.candidates(change)) {
      // A dirty group may be updated from its changes instead of run: it needs all of them.
      if (group.state === "dirty") group.pendingChanges?.push(change);
      // dirty / rerun-pending / backoff groups run again anyway; running ones buffered it above.
      if (group.state !== "idle" || !group.readSet) continue;
      if (affects(group.readSet, change, this.options.schema)) this.markDirty(group, change);
    }
  }

  /** Something the group's result may depend on changed (or a sweep asks): make sure it runs again. */
  private markDirty(group: QueryGroup, change?: Change): void {
    switch (group.state) {
      case "idle":
        group.pendingChanges = change && group.maintained ? [change] : null;
        this.setState(group, "dirty");
        this.counters.invalidations += 1;
        this.dirtyGroups.add(group);
        this.scheduleFlush();
        return;
      case "running":
        this.setState(group, "rerun-pending"); // runs again when this run ends
        this.counters.invalidations += 1;
        return;
      case "dirty":
        group.pendingChanges = null; // a sweep or a resync: only a run answers it
        return;
      // rerun-pending: already runs again; backoff: its retry timer
      // runs it (no earlier: the database just proved slow); closed: gone.
      default:
        return;
    }
  }

  private setState(group: QueryGroup, state: GroupState): void {
    group.state = state;
    if (state === "running") this.running.add(group);
    else this.running.delete(group);
  }

  /**
   * Batching: the first invalidation after a quiet spell flushes at once (next macrotask, after the
   * rest of its feed event has been judged), so a lone write pays no window; invalidations that
   * follow within `batchWindowMs` of a flush wait for the window's end and share one re-run.
   */
  private scheduleFlush(): void {
    if (this.flushTimer || this.closed) return;
    const sinceLast = performance.now() - this.lastFlushAt;
    const windowMs = this.config.batchWindowMs;
    const delay = !this.config.flushFirstAtOnce ? windowMs : sinceLast >= windowMs ? 0 : windowMs - sinceLast;
    this.flushTimer = setTimeout(() => this.flush(), delay);
  }

  private flush(): void {
    this.flushTimer = null;
    // Backpressure from the fan-out: while earlier results are still being handed to subscribers,
    // new ones wait (their changes batch up) — sending them now would only queue more messages
    // behind those, each costing a send per subscriber, and starve everything else on the loop.
    if (this.outboxHead < this.outbox.length) {
      if (!this.flushAfterFanOut) {
        this.flushAfterFanOut = true;
        this.afterDeliveries(() => {
          this.flushAfterFanOut = false;
          if (!this.closed) this.flush();
        });
      }
      return;
    }
    this.lastFlushAt = performance.now();
    const due = [...this.dirtyGroups];
    this.dirtyGroups.clear();
    for (const group of due) if (group.state === "dirty" && !this.updateIncrementally(group)) this.execute(group);
  }

  /**
   * Starts one execution of a group's query (dirty → running). It waits for a limiter slot; the
   * timeout counts from the moment it has one. The outcome is handled by settle(): a run that
   * timed out is abandoned at once — its signal aborted so its SQL is cancelled, the group moved to
   * backoff — while the work itself keeps its slot until it really ends.
   */
  private execute(group: QueryGroup): void {
    group.pendingChanges = null;
    const run: GroupRun = { controller: new AbortController(), position: this.position, seq: ++this.runsStarted };
    group.run = run;
    group.changesDuringRun = [];
    this.setState(group, "running");
    void this.limiter.run(async () => {
      if (group.run !== run) return; // abandoned (group closed) before it got a slot: nothing to do
      this.counters.executions += 1;
      if (group.executions > 0) this.counters.reExecutions += 1;
      if (group.failedAttempts > 0) this.counters.retries += 1;
      group.executions += 1;
      let abandoned = false;
      const deadline = new Deadline(this.config.queryTimeoutMs, () => {
        abandoned = true;
        this.counters.abandonedInFlight += 1;
        this.counters.timeouts += 1;
        const error = new TimeoutError(`live query ${group.path} took longer than ${this.config.queryTimeoutMs} ms`);
        this.abort(run, error);
        this.settle(group, run, { error });
      });
      // Waiting for a database connection (pool, PGlite's one connection) is queueing, not query
      // time: the store reports those waits for statements run under this signal.
      watchQueryWaits(run.controller.signal, { waiting: () => deadline.pause(), acquired: () => deadline.resume() });
      if (this.config.multiplexStatements) multiplexQueries(run.controller.signal);
      try {
        const outcome = await this.options.run({ ctx: group.ctx, path: group.path, input: group.input, signal: run.controller.signal });
        this.settle(group, run, { outcome });
      } catch (error) {
        this.settle(group, run, { error });
      } finally {
        deadline.clear();
        if (abandoned) this.counters.abandonedInFlight -= 1;
      }
    });
  }

  private abort(run: GroupRun, reason: Error): void {
    if (run.controller.signal.aborted) return;
    this.counters.cancelled += 1;
    run.controller.abort(reason);
  }

  /** The outcome of `run`: acted on only while it is still the group's current run. */
  private settle(
    group: QueryGroup,
    run: GroupRun,
    result: { outcome: RunOutcome } | { error: unknown },
  ): void {
    if (group.run !== run || group.closed || this.closed) return; // abandoned: its outcome is moot
    group.run = null;
    const rerun = group.state === "rerun-pending";
    const during = group.changesDuringRun;
    group.changesDuringRun = [];
    if ("outcome" in result) {
      group.failedAttempts = 0;
      this.reindex(group, result.outcome.readSet);
      group.position = run.position;
      this.publish(group, result.outcome.data);
      group.maintained = this.config.incrementalUpdates && group.result?.cached
        ? maintainedList(result.outcome.soleCall, result.outcome.data, group.result.serialized, this.options.schema, this.columns)
        : null;
      this.setState(group, "idle");
      if (rerun || during.some((change) => affects(group.readSet!, change, this.options.schema))) this.markDirty(group);
      if (this.settleWaiters.size > 0) this.groupSettled(group, run);
      return;
    }
    const { error } = result;
    const firstRun = group.result === null;
    if (isTransientError(error) && !(firstRun && this.config.firstRunTimeout === "fail")) {
      // Retried after a backoff whatever changed meanwhile: the retry reads everything committed.
      group.failedAttempts += 1;
      const delay = backoffDelay(group.failedAttempts, this.config.retryBackoffBaseMs, this.config.retryBackoffMaxMs);
      this.options.log.warn({ path: group.path, attempt: group.failedAttempts, retryInMs: Math.round(delay) }, (error as Error).message);
      this.setState(group, "backoff");
      group.retryTimer = setTimeout(() => {
        group.retryTimer = null;
        if (group.state !== "backoff") return;
        this.setState(group, "dirty");
        this.dirtyGroups.add(group);
        this.scheduleFlush();
      }, delay);
      return;
    }
    // A real error (bad input, forbidden, the subscriber may no longer read this) ends the
    // group's subscriptions with it; on a first run that is the subscription's typed tRPC error.
    if (!firstRun) {
      this.options.log.warn({ path: group.path, err: (error as Error).message }, "live query failed; ending its subscriptions");
    }
    for (const subscriber of group.subscribers) subscriber.queue.end(error);
    this.dropGroup(group);
  }

  /**
   * A dirty group's result computed from its cached rows and the changes since (incremental/),
   * published as a run's would be, at the reactor's position: every change processed so far that
   * could touch it is among those applied. False when only a run can tell: the caller runs it.
   */
  private updateIncrementally(group: QueryGroup): boolean {
    const changes = group.pendingChanges;
    group.pendingChanges = null;
    if (!changes || !group.maintained || !group.result?.cached || !Array.isArray(group.result.data)) return false;
    const rows = applyChanges(group.maintained, group.result.data as Record<string, unknown>[], changes);
    if (!rows) return false;
    this.counters.incrementalUpdates += 1;
    group.position = this.position;
    this.publish(group, rows);
    if (!group.result.cached) group.maintained = null;
    this.setState(group, "idle");
    // Idle now, its result at the reactor's position: releases settled() waiters as a run's would.
    if (this.settleWaiters.size > 0) this.groupSettled(group, null);
    return true;
  }

  private publish(group: QueryGroup, data: unknown): void {
    const { json: serialized, bigint } = stableStringifyNotingBigInt(data);
    if (bigint) markHoldsBigInt(data);
    const hash = hashOf(serialized);
    const previous = group.result;
    const changed = previous?.hash !== hash;
    const cached = serialized.length <= this.config.maxCachedResultBytes;
    let message: LiveMessage | null = null;
    if (changed) {
      group.version += 1;
      const patch = previous?.cached ? diffLists(previous.data, data, stableStringify) : null;
      if (patch && bigint) markHoldsBigInt(patch);
      message = patch
        ? { kind: "patch", version: group.version, position: group.position, patch }
        : { kind: "full", version: group.version, position: group.position, data };
    }
    group.result = { hash, data: cached ? data : null, serialized: cached ? serialized : null, cached };
    const full: LiveMessage = { kind: "full", version: group.version, position: group.position, data };
    for (const subscriber of group.subscribers) {
      if (subscriber.needsFull) {
        this.sendInitialWith(group, subscriber, full);
      } else if (message) {
        this.send(group, subscriber, message, full);
      }
    }
  }

  private sendInitial(group: QueryGroup, subscriber: Subscriber): void {
    const result = group.result;
    if (!result) return;
    this.sendInitialWith(group, subscriber, {
      kind: "full",
      version: group.version,
      // An idle group (called only then) was re-run after, or was not affected by, every change
      // processed so far, so its result holds at the reactor's position. Reporting that lets a
      // client waiting for its own write (read-your-writes) learn that a query the write did not
      // touch already reflects it.
      position: this.position,
      data: result.data,
    });
  }

  /** First message of a subscriber: "resumed" when it already holds this result, else the full value. */
  private sendInitialWith(group: QueryGroup, subscriber: Subscriber, full: LiveMessage): void {
    subscriber.needsFull = false;
    const resumed = subscriber.resumeHash !== null && subscriber.resumeHash === group.result?.hash;
    subscriber.resumeHash = null;
    const message: LiveMessage = resumed
      ? { kind: "resumed", version: group.version, position: full.position }
      : full;
    this.send(group, subscriber, message, full);
  }

  private send(group: QueryGroup, subscriber: Subscriber, message: LiveMessage, full: LiveMessage): void {
    const id = group.eventId();
    // A consumer this far behind only needs the latest state: its backlog folds into one full value.
    const fold = () => ({ id, message: full });
    this.counters.messagesSent += 1;
    if (this.outboxHead === this.outbox.length && this.handedThisTurn < this.config.fanOutPerTurn) {
      this.handedThisTurn += 1;
      subscriber.queue.push({ id, message }, fold);
    } else {
      this.outbox.push({ subscriber, event: { id, message }, fold });
    }
    this.scheduleTurn();
  }

  /** Runs `then` once every message queued for delivery so far is in its subscriber's queue. */
  private afterDeliveries(then: () => void): void {
    if (this.outboxHead === this.outbox.length) then();
    else this.outbox.push({ then });
  }

  /** The next turn resets the per-turn count and hands out the next share of the outbox. */
  private scheduleTurn(): void {
    this.turnTimer ??= setImmediate(() => this.nextTurn());
  }

  private nextTurn(): void {
    this.turnTimer = null;
    this.handedThisTurn = 0;
    const waiting = this.outbox.length - this.outboxHead;
    if (waiting === 0) return;
    const share = Math.min(waiting, Math.max(this.config.fanOutPerTurn, Math.ceil(waiting / 8)));
    const end = this.outboxHead + share;
    this.handedThisTurn = share;
    // The head moves before each delivery runs: a settled() waiter or a held-back flush run from
    // here sees exactly what is still on its way.
    while (this.outboxHead < end) {
      const delivery = this.outbox[this.outboxHead]!;
      this.outbox[this.outboxHead] = undefined;
      this.outboxHead += 1;
      if ("then" in delivery) delivery.then();
      else delivery.subscriber.queue.push(delivery.event, delivery.fold);
    }
    if (this.outboxHead === this.outbox.length) {
      this.outbox.length = 0;
      this.outboxHead = 0;
    } else {
      if (this.outboxHead > 4096 && this.outboxHead * 2 > this.outbox.length) {
        this.outbox.splice(0, this.outboxHead);
        this.outboxHead = 0;
      }
      this.scheduleTurn();
    }
  }


  private reindex(group: QueryGroup, readSet: ReadSet): void {
    group.readSet = readSet;
    this.index.add(group, readSet);
  }

  private detach(group: QueryGroup, subscriber: Subscriber): void {
    group.subscribers.delete(subscriber);
    if (group.subscribers.size === 0) this.dropGroup(group);
  }

  private dropGroup(group: QueryGroup): void {
    if (group.closed) return;
    this.setState(group, "closed");
    // Nobody waits for its result any more: cancel the query (it keeps its slot until it ends).
    if (group.run) this.abort(group.run, new Error("live query no longer subscribed"));
    group.run = null;
    if (group.retryTimer) clearTimeout(group.retryTimer);
    group.retryTimer = null;
    if (this.settleWaiters.size > 0) this.groupSettled(group, null);
    if (this.groups.get(group.key) === group) this.groups.delete(group.key);
    this.dirtyGroups.delete(group);
    this.index.remove(group);
  }
}
