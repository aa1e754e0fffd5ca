/** Every limit of the reactor, with its default. Each prevents a named failure. */
export interface ReactorConfig {
  /** Changes arriving within this window are batched into one re-execution per group (ms). */
  batchWindowMs: number;
  /**
   * Flush the first invalidation after a quiet spell at once instead of after the window (only
   * changes that follow within the window are batched). Off: every change waits the window.
   */
  flushFirstAtOnce: boolean;
  /** Re-executions running at once; more wait (bounds DB load after a wide change). */
  maxConcurrentExecutions: number;
  /** A re-execution slower than this is abandoned for the cycle and retried (ms). */
  queryTimeoutMs: number;
  /** Every group is re-run this often whatever the feed says (ms; 0 = never): heals anything missed. */
  resyncIntervalMs: number;
  /** Results bigger than this (JSON bytes) are not kept: subscribers get full values, never patches. */
  maxCachedResultBytes: number;
  /** Messages queued for one subscriber before older ones are folded into one full value. */
  maxQueuedMessagesPerSubscriber: number;
}

export const DEFAULT_REACTOR_CONFIG: ReactorConfig = {
  batchWindowMs: 5,
  flushFirstAtOnce: true,
  maxConcurrentExecutions: 64,
  queryTimeoutMs: 5_000,
  resyncIntervalMs: 600_000,
  maxCachedResultBytes: 10 * 1024 * 1024,
  maxQueuedMessagesPerSubscriber: 64,
};
