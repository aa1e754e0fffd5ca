import type { Change, ChangeFeed, FeedEvent, FeedSubscription } from "../feed/index.ts";
import type { Logger } from "../log/index.ts";
import { affects, GroupIndex, type ReadSet } from "../reactor/index.ts";
import type { SchemaMeta } from "../schema/index.ts";

/** An access check: may the caller whose policy-scoped `db` this is keep what it holds? */
export type AccessCheck = (db: unknown) => boolean | Promise<boolean>;

/**
 * Runs `check` as `ctx`'s call with the policy-scoped, read-tracking client (what a live query's
 * `ctx.db` is) and returns its verdict with everything it read.
 */
export type RecordedRun = (ctx: object, check: AccessCheck) => Promise<{ allowed: boolean; readSet: ReadSet }>;

/** Limits of an access watch. */
export interface AccessWatchConfig {
  /** Re-checks running at once on this node; more wait their turn (bounds DB load after a wide change). */
  maxConcurrentChecks: number;
}

export const DEFAULT_ACCESS_WATCH_CONFIG: AccessWatchConfig = {
  maxConcurrentChecks: 16,
};

export interface AccessWatchOptions {
  schema: SchemaMeta;
  log: Logger;
  run: RecordedRun;
  /**
   * The node's change feed: the watch subscribes to it itself, once a check has read anything
   * (a check that reads nothing never needs it). Without it, the owner hands every feed event to
   * `observe` (the CRDT hub does, from its own subscription, so its fan-out sees each verdict).
   */
  feed?: () => Promise<ChangeFeed>;
  config?: Partial<AccessWatchConfig>;
}

/**
 * Why a holder lost its access: `refused` (the check now says no) or `failed` (the check threw;
 * the holder should end with an error its client retries, since the next check may pass).
 */
export type Revocation = { kind: "refused" } | { kind: "failed"; error: unknown };

/** One subscriber's hold on a watched key. */
export interface AccessLease {
  /**
   * The verdict as of every change the watch has seen: a boolean when no re-check is due, else a
   * promise of the re-check's answer (a fan-out awaits it, so nothing reaches a revoked holder).
   */
  current(): boolean | Promise<boolean>;
  release(): void;
}

interface Holder {
  /** Order of attachment: a re-check only revokes holders that were there before it started. */
  readonly seq: number;
  readonly onRevoked: (why: Revocation) => void;
  revoked: boolean;
}

/** One (subject, scope): one check shared by every holder, re-run when a change touches its reads. */
class Entry {
  readonly holders = new Set<Holder>();
  readSet: ReadSet | null = null;
  /** Waiting for or running a re-check (resolves with whether the holders kept access). */
  settling: Promise<void> | null = null;
  private settle: (() => void) | null = null;
  running = false;
  /** Something affecting the reads arrived (or a holder joined) while running: run again. */
  again = false;

  constructor(
    readonly key: string,
    readonly ctx: object,
    readonly check: AccessCheck,
  ) {}

  due(): void {
    if (this.settling) return;
    this.settling = new Promise<void>((resolve) => (this.settle = resolve));
  }

  settled(): void {
    this.settle?.();
    this.settle = null;
    this.settling = null;
  }
}

/** Changes delivered while a check runs: tested against what that check read once it is done. */
interface Collector {
  changes: Change[];
  resync: boolean;
}

/**
 * Keeps access verdicts current: each (subject, scope) key is checked once when first held,
 * its reads recorded (a ReadSet, as for live queries), and checked again — once per key and
 * batch, whatever its number of holders — when a committed change can affect those reads
 * (the reactor's `GroupIndex` and `affects`). A refusal revokes every holder at once, without
 * waiting for the subject's own next activity. Per node: each node watches its own holders.
 */
export class AccessWatch {
  private readonly config: AccessWatchConfig;
  private readonly entries = new Map<string, Entry>();
  private readonly index: GroupIndex<Entry>;
  private readonly collectors = new Set<Collector>();
  private readonly queue: Entry[] = [];
  private running = 0;
  private seq = 0;
  private subscription: FeedSubscription | null = null;
  private subscribing: Promise<void> | null = null;
  private closed = false;
  readonly counters = { checks: 0, rechecks: 0 };

  constructor(private readonly options: AccessWatchOptions) {
    this.config = { ...DEFAULT_ACCESS_WATCH_CONFIG, ...options.config };
    this.index = new GroupIndex(options.schema);
  }

  stats(): { keys: number; holders: number; checks: number; rechecks: number } {
    let holders = 0;
    for (const entry of this.entries.values()) holders += entry.holders.size;
    return { keys: this.entries.size, holders, ...this.counters };
  }

  /**
   * Checks `ctx`'s access (fresh, not from the cache: a new holder gets today's answer) and, if
   * allowed, holds `key` until `release`; `onRevoked` is called once if a later re-check
   * refuses. Null when refused now.
   */
  async open(key: string, ctx: object, check: AccessCheck, onRevoked: (why: Revocation) => void): Promise<AccessLease | null> {
    const { allowed, readSet } = await this.runCovered(ctx, check);
    if (!allowed || this.closed) return null;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = new Entry(key, ctx, check);
      entry.readSet = readSet;
      this.entries.set(key, entry);
      this.index.add(entry, readSet);
    } else if (entry.running) {
      // A re-check that started before this check may answer from an older snapshot: its
      // refusal must not revoke this holder, so it runs once more.
      entry.again = true;
    }
    const holder: Holder = { seq: ++this.seq, onRevoked, revoked: false };
    entry.holders.add(holder);
    const held = entry;
    return {
      current: () => {
        if (holder.revoked) return false;
        if (!held.settling) return true;
        return held.settling.then(() => !holder.revoked);
      },
      release: () => {
        held.holders.delete(holder);
        if (held.holders.size === 0 && !held.running) this.forget(held);
      },
    };
  }

  /** Feeds a change-feed event to the watch (only when it has no feed of its own). */
  observe(event: FeedEvent): void {
    if (this.closed) return;
    for (const collector of this.collectors) {
      if (event.type === "resync") collector.resync = true;
      else collector.changes.push(...event.changes);
    }
    if (this.entries.size === 0) return;
    if (event.type === "resync") {
      for (const entry of this.entries.values()) this.schedule(entry);
      return;
    }
    // One re-check per key for the whole transaction, however many of its changes touch it.
    const affected = new Set<Entry>();
    for (const change of event.changes) {
      for (const entry of this.index.candidates(change)) {
        if (affected.has(entry) || entry.running || entry.settling) continue;
        if (entry.readSet && affects(entry.readSet, change, this.options.schema)) affected.add(entry);
      }
    }
    for (const entry of affected) this.schedule(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscription?.close();
    for (const entry of this.entries.values()) entry.settled();
    this.entries.clear();
    this.index.clear();
    this.queue.length = 0;
  }

  /**
   * Runs a check so that no change can fall between it and the watch: changes delivered while it
   * ran are tested against what it read, and it runs again if one of them may have changed the
   * answer. A check that read something also needs the feed: subscribed then, and checked again.
   */
  private async runCovered(ctx: object, check: AccessCheck): Promise<{ allowed: boolean; readSet: ReadSet }> {
    for (;;) {
      const collector: Collector = { changes: [], resync: false };
      const watched = this.watching();
      this.collectors.add(collector);
      let result: { allowed: boolean; readSet: ReadSet };
      try {
        this.counters.checks += 1;
        result = await this.options.run(ctx, check);
      } finally {
        this.collectors.delete(collector);
      }
      const reads = result.readSet.allTables || result.readSet.reads.length > 0;
      if (reads && !watched) {
        await this.subscribe();
        continue;
      }
      const stale = collector.resync || collector.changes.some((change) => affects(result.readSet, change, this.options.schema));
      if (!stale || this.closed) return result;
    }
  }

  /** Whether every change from now on reaches `observe`. */
  private watching(): boolean {
    return !this.options.feed || this.subscription !== null;
  }

  private subscribe(): Promise<void> {
    this.subscribing ??= (async () => {
      const feed = await this.options.feed!();
      this.subscription = await feed.subscribe((event) => this.observe(event));
      if (this.closed) this.subscription.close();
    })().catch((error: unknown) => {
      this.subscribing = null; // the next check tries again
      throw error;
    });
    return this.subscribing;
  }

  private schedule(entry: Entry): void {
    if (entry.running) {
      entry.again = true;
      return;
    }
    if (entry.settling) return; // queued already
    entry.due();
    this.queue.push(entry);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.config.maxConcurrentChecks && this.queue.length > 0) {
      const entry = this.queue.shift()!;
      this.running += 1;
      void this.recheck(entry).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  private async recheck(entry: Entry): Promise<void> {
    entry.running = true;
    try {
      do {
        entry.again = false;
        if (entry.holders.size === 0 || this.closed) break;
        const startedAt = this.seq;
        this.counters.rechecks += 1;
        let why: Revocation | null = null;
        try {
          const { allowed, readSet } = await this.runCovered(entry.ctx, entry.check);
          entry.readSet = readSet;
          if (this.entries.get(entry.key) === entry) this.index.add(entry, readSet);
          if (!allowed) why = { kind: "refused" };
        } catch (error) {
          this.options.log.warn({ err: (error as Error).message, key: entry.key }, "access re-check failed; its holders end");
          why = { kind: "failed", error };
        }
        if (why) this.revoke(entry, startedAt, why);
      } while (entry.again);
    } finally {
      entry.running = false;
      entry.settled();
      if (entry.holders.size === 0) this.forget(entry);
    }
  }

  private revoke(entry: Entry, startedAt: number, why: Revocation): void {
    for (const holder of [...entry.holders]) {
      if (holder.seq > startedAt) continue; // joined during the check: the loop checks again
      holder.revoked = true;
      entry.holders.delete(holder);
      try {
        holder.onRevoked(why);
      } catch (error) {
        this.options.log.warn({ err: (error as Error).message }, "access revocation handler threw");
      }
    }
  }

  private forget(entry: Entry): void {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    this.index.remove(entry);
  }
}
