import type { Clock } from "pg-boss";

/**
 * Every limit and timing of the job runtime, with its default. Each names the failure it bounds.
 * pg-boss's own floors apply: `heartbeatSeconds` >= 10, polling >= 0.5 s, cron resolution one
 * minute (`cron` schedules fire at most once per minute).
 */
export interface JobLimits {
  /**
   * A handler's progress() calls are written at most this often per job (ms); calls in between
   * only replace the pending value, so a handler reporting in a tight loop costs one UPDATE per
   * interval, not one per call. The last value is always written before the job's final state.
   */
  progressIntervalMs: number;
  /** Longest progress message kept (characters); longer ones are cut. */
  maxProgressMessageLength: number;
  /**
   * A running job's claim is renewed this often (pg-boss heartbeat). A worker that dies (SIGKILL,
   * lost machine) stops renewing; after `heartbeatSeconds` without one its job is retried on
   * another node. pg-boss refuses values under 10.
   */
  heartbeatSeconds: number;
  /**
   * How often a worker renews its claims (s, < heartbeatSeconds). Also how soon a cancel made on
   * another node reaches a running handler's `signal` (a renewal finds the claim gone).
   */
  heartbeatRefreshSeconds: number;
  /** A handler still running after this long is aborted (`signal`) and its job failed or retried (s). */
  timeoutSeconds: number;
  /** Attempts after the first, unless the job or the enqueue says otherwise. */
  retries: number;
  /** First retry delay (s); with `retryBackoff` it doubles per attempt (with jitter) up to `retryDelayMaxSeconds`. */
  retryDelaySeconds: number;
  retryBackoff: boolean;
  retryDelayMaxSeconds: number;
  /**
   * Jobs one node runs at once per job name, at most. Workers × batch never exceed it: each of
   * pg-boss's workers runs every job of the batch it claimed at once and fetches again only when
   * all of them finished, so a batch is at most a quarter of this (a long job idles few slots) and
   * the workers are `floor(concurrency / batch)` (`concurrency: 4` → four workers claiming one job each).
   */
  concurrency: number;
  /** Jobs a worker claims per fetch (pg-boss batchSize; each still runs its own handler; capped by `concurrency`). */
  batchSize: number;
  /**
   * After a running job's signal aborted (cancel, `timeoutSeconds`, shutdown), how long its worker
   * waits for the handler to settle before giving up on it (ms). A handler that ignores its signal
   * would otherwise hold its slot forever; abandoned, it may go on running in the background (JS
   * cannot stop it), but its result is dropped and the slot serves the next job.
   */
  abandonAfterAbortMs: number;
  /**
   * How often an idle worker looks for due jobs (s, >= 0.5). NOTIFY wakes workers at once for new
   * jobs; this bounds the wait of delayed jobs and retries whose time came (nothing notifies then).
   */
  pollingIntervalSeconds: number;
  /**
   * How often the supervisor looks for expired claims and lapsed heartbeats (s). Bounds how long
   * after `heartbeatSeconds` a dead worker's job waits before it is retried.
   */
  superviseIntervalSeconds: number;
  /** How often a node tries to take the cron pass (s, pg-boss 1–45): one node per pass evaluates schedules. */
  cronMonitorIntervalSeconds: number;
  /** How often the cron forwarding queue is polled (s, pg-boss 1–45). */
  cronWorkerIntervalSeconds: number;
  /** Finished jobs' state rows (`_tether_jobs`) are deleted this long after they finished (s). */
  stateRetentionSeconds: number;
  /** How often finished state rows past retention are trimmed (ms). */
  stateTrimIntervalMs: number;
  /**
   * Graceful shutdown: in-flight handlers get this long to finish after claiming stops (ms); the
   * ones still running are aborted and their jobs go back to be retried.
   */
  shutdownTimeoutMs: number;
  /** Connections of pg-boss's own pool on Postgres (PGlite is one connection, shared). */
  poolSize: number;
  /** Largest `output` a handler may return (JSON bytes); a bigger one fails the attempt. */
  maxOutputBytes: number;
  /**
   * Longest `delay` an enqueue may ask for (ms), and how far ahead `runAt` may be. Bounds what a
   * client-supplied delay can do: past ~8.64e15 ms a Date is invalid and Postgres's range ends
   * too, so an unbounded delay was a 500; over this it is BAD_REQUEST.
   */
  maxDelayMs: number;
  /** Most `retries` an enqueue or a job definition may ask for. */
  maxRetries: number;
  /**
   * Keep fetching at once while a fetch came back full (pg-boss burstWhenBatchFull) instead of
   * waiting for the next NOTIFY or poll: a backlog drains at the handlers' pace, not at one batch
   * per wake-up (measured 8 → 150–225 no-op jobs/s on one node).
   */
  burstWhenBatchFull: boolean;
}

export const DEFAULT_JOB_LIMITS: JobLimits = {
  progressIntervalMs: 100,
  maxProgressMessageLength: 500,
  heartbeatSeconds: 10,
  heartbeatRefreshSeconds: 2,
  timeoutSeconds: 15 * 60,
  retries: 2,
  retryDelaySeconds: 5,
  retryBackoff: true,
  retryDelayMaxSeconds: 10 * 60,
  concurrency: 4,
  batchSize: 4,
  pollingIntervalSeconds: 2,
  superviseIntervalSeconds: 5,
  cronMonitorIntervalSeconds: 30,
  cronWorkerIntervalSeconds: 5,
  stateRetentionSeconds: 7 * 24 * 3600,
  stateTrimIntervalMs: 10 * 60_000,
  shutdownTimeoutMs: 10_000,
  poolSize: 4,
  maxOutputBytes: 1024 * 1024,
  maxDelayMs: 366 * 24 * 3600 * 1000,
  maxRetries: 100,
  burstWhenBatchFull: true,
  abandonAfterAbortMs: 10_000,
};

/** `initTether().create({ jobs })`: the job runtime of this node. */
export interface JobRuntimeOptions {
  /** Merged over DEFAULT_JOB_LIMITS. */
  limits?: Partial<JobLimits>;
  /** Run handlers on this node (default true). False: enqueue, cancel and read only (a web-only node). */
  work?: boolean;
  /** Evaluate cron schedules on this node (default true; one node per pass does the work anyway). */
  schedule?: boolean;
  /** Postgres schema of pg-boss's tables (default "pgboss"). */
  schema?: string;
  /**
   * pg-boss's clock (tests: a shared `TestClock` drives cron ticks and timers of several nodes
   * deterministically). Default: the system clock.
   */
  clock?: Clock;
}

/** Per job definition (`tether.job.options({...})`), over DEFAULT_JOB_LIMITS. */
export interface JobDefinitionOptions {
  retries?: number;
  retryDelaySeconds?: number;
  retryBackoff?: boolean;
  retryDelayMaxSeconds?: number;
  timeoutSeconds?: number;
  heartbeatSeconds?: number;
  concurrency?: number;
  /**
   * Runs a worker claims per fetch for this job. A worker fetches again only when its whole batch
   * finished, so with long-running handlers a batch of one job idles the worker's other slots:
   * set 1 for them (each run then has a worker of its own, up to `concurrency`). Default: a
   * quarter of `concurrency`, at most `limits.batchSize` (fewer fetches for short jobs).
   */
  batchSize?: number;
  /** Default priority of this job's runs (higher runs first). */
  priority?: number;
  /**
   * Whose jobs an enqueue's `key` is unique among. "owner" (default): each enqueuing user has
   * their own keys, so one user's key never returns another user's job id. "global": one key
   * space for everyone (a shared job, e.g. "rebuild the search index"); the id then goes to
   * whoever enqueues with that key, though only the job's owner (or an admin) can read it.
   */
  keyScope?: "owner" | "global";
}

/** `ctx.jobs.enqueue(name, input, options)`. */
export interface EnqueueOptions {
  /** Start no sooner than this many milliseconds from now (0 to `maxDelayMs`, else BAD_REQUEST). */
  delay?: number;
  /** Start no sooner than this time (wins over `delay`; a past time means now; at most `maxDelayMs` ahead). */
  runAt?: Date;
  /** Higher runs first (default the job's, else 0). An integer of 32 bits. */
  priority?: number;
  /**
   * Idempotency key (1–255 characters): while a job of this name with this key is queued or
   * running, enqueueing again returns that job's id instead of making another. Keys are per
   * enqueuing user unless the job says `keyScope: "global"`.
   */
  key?: string;
  /** Attempts after the first (default the job's; 0 to `maxRetries`). */
  retries?: number;
}
