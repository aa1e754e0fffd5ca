/** What `$jobs.get` answers (see docs/jobs.md): one job as its owner sees it. */

export type JobStatus = "queued" | "active" | "retrying" | "completed" | "failed" | "cancelled";

/** One job as its owner sees it (`$jobs.get`, `useJob`). */
export interface JobState<Output = unknown> {
  id: string;
  name: string;
  status: JobStatus;
  /** Attempts started so far (1 while the first runs). */
  attempts: number;
  maxAttempts: number;
  /** 0–100, from the handler's progress(); 100 once completed. */
  progress: number;
  message: string | null;
  /** The handler's return value, once completed. */
  output: Output | null;
  /** The last attempt's error message (failed, or retrying after one). */
  error: string | null;
  runAt: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}
