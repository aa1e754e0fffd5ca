/** Every limit of the reactor, with its default. Each prevents a named failure. */
export interface ReactorConfig {
  /** Changes arriving within this window are batched into one re-execution per group (ms). */
  batchWindowMs: number;
  /**
   * Flush the first invalidation after a quiet spell at once instead of after the window (only
   * changes that follow within the window are batched). Off: every change waits the window.
   */
  flushFirstAtOnce: boolean;
  /**
   * Executions (first runs and re-runs) holding a slot at once; more wait in order (bounds DB
   * load after a wide change or a reconnect storm). A slot is held until the execution's work
   * settles, even after a timeout abandoned it: an abandoned query still loads the database, so
   * it keeps counting against this bound until its cancellation lands.
   */
  maxConcurrentExecutions: number;
  /**
   * An execution still running this long after it got its slot is abandoned: its signal is aborted
   * (which cancels its SQL, see store/cancellation.ts) and the group is retried after a backoff.
   * Time spent waiting for a slot is not counted (ms).
   */
  queryTimeoutMs: number;
  /** Delay before the first retry of a timed-out execution; doubles per further timeout (ms). */
  retryBackoffBaseMs: number;
  /**
   * Upper bound of that delay (ms). Retries go on while the group has subscribers. It is also how
   * long subscribers may stay stale after the database recovers (a lock released, a restart): kept
   * short, because the limiter already bounds how much a slow database is asked at once.
   */
  retryBackoffMaxMs: number;
  /**
   * What a timed-out *first* run does. "retry" (default): like a re-run, it is retried with backoff
   * and the subscriber waits for its first value — a reconnect storm delays subscriptions, it does
   * not fail them. "fail": the subscription ends with the TimeoutError (for clients that retry on
   * their own). Real errors (FORBIDDEN, BAD_REQUEST...) end the subscription either way.
   */
  firstRunTimeout: "retry" | "fail";
  /** Every group is re-run this often whatever the feed says (ms; 0 = never): heals anything missed. */
  resyncIntervalMs: number;
  /** Results bigger than this (JSON bytes) are not kept: subscribers get full values, never patches. */
  maxCachedResultBytes: number;
  /** Messages queued for one subscriber before older ones are folded into one full value. */
  maxQueuedMessagesPerSubscriber: number;
  /**
   * Messages handed to subscribers per event-loop turn, at least; the rest wait for the next turn
   * (in order). A result for thousands of subscribers otherwise holds the loop for its whole
   * fan-out — each message's send costs tens of µs — while mutations' and other reads' database
   * replies wait behind it. A backlog is handed out at an eighth of itself per turn at least, so
   * it cannot outgrow what the subscribers' own queues bound. While a hand-out is under way, no
   * new result is computed (flushes wait for it): changes arriving meanwhile batch into one run,
   * so a fan-out-bound node sends fewer, fuller messages instead of queueing more behind it.
   */
  fanOutPerTurn: number;
  /**
   * On Postgres, reads of executions started in the same tick that send the same SQL with
   * different parameters run as ONE statement (store/multiplex.ts: Hasura's multiplexing): a
   * flush of many groups of one query shape costs one round trip and one plan. Off: one
   * statement per read.
   */
  multiplexStatements: boolean;
  /**
   * A live query whose execution was one single-model findMany (where / orderBy ending in the
   * primary key / take), returned as is, is brought up to date from the changes themselves — no
   * query — when that provably equals a re-run (reactor/incremental: exact row conversion,
   * reproducible column order, no row leaving a full `take` window). Anything else re-runs. Off:
   * every relevant change re-runs the query.
   */
  incrementalUpdates: boolean;
}

export const DEFAULT_REACTOR_CONFIG: ReactorConfig = {
  batchWindowMs: 5,
  flushFirstAtOnce: true,
  maxConcurrentExecutions: 64,
  queryTimeoutMs: 5_000,
  retryBackoffBaseMs: 250,
  retryBackoffMaxMs: 5_000,
  firstRunTimeout: "retry",
  resyncIntervalMs: 600_000,
  maxCachedResultBytes: 10 * 1024 * 1024,
  maxQueuedMessagesPerSubscriber: 64,
  fanOutPerTurn: 64,
  multiplexStatements: false,
  incrementalUpdates: true,
};
