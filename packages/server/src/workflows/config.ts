/**
 * Every limit and timing of the workflow runtime, with its default. Each names the failure it
 * bounds. Crash detection (a dead node's run taken over) is the jobs runtime's heartbeat:
 * `DEFAULT_JOB_LIMITS.heartbeatSeconds` plus a supervise pass.
 */
export interface WorkflowLimits {
  /** Resumes one node runs at once (all workflows together; pg-boss localConcurrency of the resume queue). */
  concurrency: number;
  /**
   * Attempts of one resume after the first. A resume fails only when its node dies or stops
   * mid-run (a workflow's own errors end the workflow, not the resume), so this bounds how many
   * crashes in a row one run survives before it is left `running` with its resume dead-lettered.
   */
  resumeRetries: number;
  /** Delay before a crashed resume is retried, after its heartbeat lapsed (s). */
  resumeRetryDelaySeconds: number;
  /**
   * One resume (a replay plus the steps it runs) longer than this is aborted and retried (s):
   * bounds a step that hangs. A step longer than this never finishes: split it.
   */
  resumeTimeoutSeconds: number;
  /** Steps one run may reach: a runaway loop of steps fails the workflow instead of filling the table. */
  maxSteps: number;
  /** Largest step result, workflow input or output, and event payload (JSON bytes). */
  maxValueBytes: number;
  /** Longest step or event name (characters). */
  maxNameLength: number;
  /**
   * A sleep or timeout whose deadline is this close (ms) counts as due on a replay: the node's
   * clock and the database's (which times pg-boss's delayed jobs) may differ by a little.
   */
  clockSkewMs: number;
  /** Longest error message kept (characters). */
  maxErrorLength: number;
}

export const DEFAULT_WORKFLOW_LIMITS: WorkflowLimits = {
  concurrency: 8,
  resumeRetries: 100,
  resumeRetryDelaySeconds: 0,
  resumeTimeoutSeconds: 15 * 60,
  maxSteps: 10_000,
  maxValueBytes: 1024 * 1024,
  maxNameLength: 200,
  clockSkewMs: 50,
  maxErrorLength: 2000,
};

/** `initTether().create({ workflows })`. */
export interface WorkflowRuntimeOptions {
  /** Merged over DEFAULT_WORKFLOW_LIMITS. */
  limits?: Partial<WorkflowLimits>;
  /** The clock sleeps and timeouts are measured by (ms since epoch). Default Date.now. */
  now?: () => number;
}

/** `ctx.workflows.start(name, input, options)`. */
export interface StartWorkflowOptions {
  /**
   * The run's id, and its idempotency key: starting an id that exists returns it and starts
   * nothing (whatever its state). Default a random UUID.
   */
  id?: string;
}

/** `step.waitForEvent(name, options)`. */
export interface WaitForEventOptions {
  /** Give up after this many ms (the step then returns null). Default: wait for ever. */
  timeout?: number;
}
