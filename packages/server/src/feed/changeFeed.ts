import { createLogger, type Logger } from "../log/index.ts";
import { CHANGES_CHANNEL } from "../migrate/index.ts";
import type { Listening, SqlClient } from "../store/index.ts";
import { currentHorizon, readChanges, trimChanges, type RetentionOptions } from "./changeLog.ts";
import { advance, decodePosition, encodePosition, type FeedPosition } from "./position.ts";
import type { FeedListener, FeedStats, FeedSubscribeOptions, FeedSubscription } from "./types.ts";

export interface ChangeFeedOptions {
  sql: SqlClient;
  log?: Logger;
  /**
   * Safety-net read interval (ms). NOTIFY is the wake-up; this only bounds the delay if one is
   * ever lost. Default 1000.
   */
  pollIntervalMs?: number;
  /** Transactions read per query (a reader keeps reading while it hits this). Default 500. */
  maxTransactionsPerRead?: number;
  /** Retention of the change log; trimmed every `trimIntervalMs`. Default 24 h / 1,000,000 rows. */
  retention?: RetentionOptions;
  /** How often this node trims (ms); 0 disables automatic trimming. Default 60,000. */
  trimIntervalMs?: number;
}

export const DEFAULT_RETENTION: RetentionOptions = { maxAgeMs: 24 * 3600_000, maxRows: 1_000_000 };

export interface ChangeFeed {
  /** Delivers committed changes in commit order, each transaction once, from `after` or now. */
  subscribe(listener: FeedListener, options?: FeedSubscribeOptions): Promise<FeedSubscription>;
  /** The position "now": every change committed before the call is included in it. */
  currentPosition(): Promise<string>;
  /** Trims the log per the retention options (also runs on a timer). */
  trim(retention?: RetentionOptions): Promise<{ deleted: number; horizon: string | null }>;
  stats(): FeedStats;
  close(): Promise<void>;
}

/**
 * Opens the change feed on a store's database: one LISTEN connection per node as the wake-up,
 * `_tether_changes` as the truth, one cursor per subscriber.
 */
export async function createChangeFeed(options: ChangeFeedOptions): Promise<ChangeFeed> {
  const feed = new Feed(options);
  await feed.start();
  return feed;
}

class Feed implements ChangeFeed {
  private readonly sql: SqlClient;
  private readonly log: Logger;
  private readonly readers = new Set<Reader>();
  private listening: Listening | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private trimTimer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly counters = { deliveredTransactions: 0, reads: 0, lastLagMs: null as number | null, resyncs: 0, listenerReconnects: 0 };
  readonly maxTransactionsPerRead: number;
  private readonly retention: RetentionOptions;
  private connectedOnce = false;

  constructor(private readonly options: ChangeFeedOptions) {
    this.sql = options.sql;
    this.log = options.log ?? createLogger();
    this.maxTransactionsPerRead = options.maxTransactionsPerRead ?? 500;
    this.retention = options.retention ?? DEFAULT_RETENTION;
  }

  async start(): Promise<void> {
    this.listening = await this.sql.listen(CHANGES_CHANNEL, {
      onNotify: () => this.wakeAll(),
      onConnect: () => {
        if (this.connectedOnce) this.counters.listenerReconnects += 1;
        this.connectedOnce = true;
        // Whatever was committed while the listener was down is in the table: read it now.
        this.wakeAll();
      },
    });
    const poll = this.options.pollIntervalMs ?? 1000;
    if (poll > 0) this.pollTimer = setInterval(() => this.wakeAll(), poll).unref();
    const trimEvery = this.options.trimIntervalMs ?? 60_000;
    if (trimEvery > 0) {
      this.trimTimer = setInterval(() => {
        this.trim().catch((error: unknown) => this.log.warn({ err: (error as Error).message }, "change-log trim failed"));
      }, trimEvery).unref();
    }
  }

  async subscribe(listener: FeedListener, options: FeedSubscribeOptions = {}): Promise<FeedSubscription> {
    if (this.closed) throw new Error("change feed is closed");
    const from = options.after !== undefined ? decodePosition(options.after) : await currentHorizon(this.sql);
    const reader = new Reader(this, listener, from);
    this.readers.add(reader);
    if (options.after !== undefined) void reader.wake();
    return {
      position: () => encodePosition(reader.position),
      caughtUp: () => reader.wake(),
      close: () => {
        reader.close();
        this.readers.delete(reader);
      },
    };
  }

  async currentPosition(): Promise<string> {
    return encodePosition(await currentHorizon(this.sql));
  }

  trim(retention: RetentionOptions = this.retention) {
    // This node's own subscribers are never trimmed out from under: the bound stays at or below
    // the oldest of their horizons (a caught-up reader's horizon can trail the database's xmin
    // until its next read, and it must not get a resync for changes it already delivered).
    let keepFrom: bigint | null = null;
    for (const reader of this.readers) {
      const horizon = BigInt(reader.position.horizon);
      if (keepFrom === null || horizon < keepFrom) keepFrom = horizon;
    }
    return trimChanges(this.sql, retention, keepFrom === null ? null : keepFrom.toString());
  }

  stats(): FeedStats {
    return { subscribers: this.readers.size, ...this.counters };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearInterval(this.trimTimer);
    for (const reader of this.readers) reader.close();
    this.readers.clear();
    await this.listening?.close();
  }

  get sqlClient(): SqlClient {
    return this.sql;
  }

  get logger(): Logger {
    return this.log;
  }

  private wakeAll(): void {
    for (const reader of this.readers) void reader.wake();
  }
}

/** One subscriber's cursor and its serialized read-deliver loop. */
class Reader {
  position: FeedPosition;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private waiters: Array<() => void> = [];
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly feed: Feed,
    private readonly listener: FeedListener,
    from: FeedPosition,
  ) {
    this.position = from;
  }

  /** Reads until caught up; resolves when a read that started after this call has finished. */
  wake(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.running) this.again = true;
    else this.running = this.loop();
    return done;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      const waiters = this.waiters.splice(0);
      try {
        while (!this.closed && (await this.readOnce()));
        this.failures = 0;
        for (const resolve of waiters) resolve();
      } catch (error) {
        // Database unreachable or similar: keep the cursor and the waiters, retry with backoff.
        this.waiters.unshift(...waiters);
        this.failures += 1;
        const delay = Math.min(5_000, 50 * 2 ** this.failures);
        this.feed.logger.warn({ err: (error as Error).message, retryInMs: delay }, "change-feed read failed");
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.wake(), delay);
      }
    } while (this.again && !this.closed);
    this.running = null;
  }

  /** One read and delivery; true when more transactions are waiting. */
  private async readOnce(): Promise<boolean> {
    const { sqlClient, counters, maxTransactionsPerRead } = this.feed;
    const read = await readChanges(sqlClient, this.position.horizon, this.position.seen, maxTransactionsPerRead);
    counters.reads += 1;
    if (read.trimHorizon !== null && BigInt(this.position.horizon) < BigInt(read.trimHorizon)) {
      const now = await currentHorizon(sqlClient);
      this.position = now;
      counters.resyncs += 1;
      await this.deliver({
        type: "resync",
        reason: `changes below transaction ${read.trimHorizon} were trimmed before this subscriber read them`,
        position: encodePosition(now),
      });
      return false;
    }
    const delivered: string[] = [];
    for (const [i, tx] of read.transactions.entries()) {
      if (this.closed) return false;
      delivered.push(tx.xid);
      const isLast = i === read.transactions.length - 1;
      // Mid-batch the horizon cannot move yet: later transactions of this read are undelivered.
      this.position = advance(this.position, [tx.xid], isLast && !read.limited ? read.xmin : this.position.horizon);
      await this.deliver({ type: "transaction", xid: tx.xid, changes: tx.changes, position: encodePosition(this.position) });
      counters.deliveredTransactions += 1;
      const last = tx.changes[tx.changes.length - 1];
      if (last) counters.lastLagMs = Date.now() - Date.parse(last.at);
    }
    if (!read.limited) this.position = advance(this.position, delivered, read.xmin);
    return read.limited;
  }

  private async deliver(event: Parameters<FeedListener>[0]): Promise<void> {
    try {
      await this.listener(event);
    } catch (error) {
      // A throwing listener must not stall the feed for itself or lose its place.
      this.feed.logger.error({ err: (error as Error).message }, "change-feed listener threw");
    }
  }
}
