/**
 * The demo jobs' knobs in one place. The pause exists for people, not machines: a five-task
 * export would finish before anyone saw its progress bar, so each batch waits a little.
 */
import { msFromEnv } from "../env.ts";

export interface DemoJobLimits {
  /** Tasks read (and written to the CSV) per batch; progress is reported once per batch. */
  exportBatchSize: number;
  /** Pause after each batch, ms, so the browser can watch the bar move. Env: TETHER_DEMO_EXPORT_PAUSE_MS. */
  exportPauseMs: number;
  /** Attempts after the first for an export (a retry rewrites the whole file: exports are idempotent). */
  exportRetries: number;
  /** Longest an export may run before it is aborted and retried, seconds. */
  exportTimeoutSeconds: number;
  /**
   * Unfinished exports one user may have at once; another start is TOO_MANY_REQUESTS. Jobs of a
   * name run in enqueue order with no fairness between users, so without it one user's backlog of
   * exports delayed everyone else's by hours. An export still pending after all its attempts could
   * have run (timeout × attempts) no longer counts.
   */
  maxPendingExportsPerUser: number;
}

export const DEFAULT_DEMO_JOBS: DemoJobLimits = {
  exportBatchSize: 2,
  exportPauseMs: 300,
  exportRetries: 2,
  exportTimeoutSeconds: 300,
  maxPendingExportsPerUser: 3,
};

/** The defaults, with TETHER_DEMO_EXPORT_PAUSE_MS (a number ≥ 0) from the environment, then `overrides`. */
export function demoJobLimits(overrides: Partial<DemoJobLimits> = {}, env: NodeJS.ProcessEnv = process.env): DemoJobLimits {
  const pause = msFromEnv(env, "TETHER_DEMO_EXPORT_PAUSE_MS");
  const fromEnv: Partial<DemoJobLimits> = pause === undefined ? {} : { exportPauseMs: pause };
  return { ...DEFAULT_DEMO_JOBS, ...fromEnv, ...overrides };
}
