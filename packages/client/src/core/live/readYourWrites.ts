import type { QueryKey } from "@tanstack/query-core";
import { positionIncludes } from "@tether/protocol";
import type { LiveQuery } from "./liveQuery.ts";

export interface WaitForCommitOptions {
  /** Only these queries (their query keys, e.g. `trpc.x.queryKey(input)`); default: every live query in use. */
  queries?: readonly QueryKey[];
  /** Give up after this long (rejects with CommitWaitTimeoutError). Default 10 000 ms. */
  timeoutMs?: number;
  /**
   * A query the write did not affect gets no new value, so it never reports a newer position by
   * itself: after this long (doubling up to 1 s) the client asks the server whether its value is
   * still current, and if so at which position. Default 50 ms.
   */
  probeDelayMs?: number;
}

/** Read-your-writes defaults (see WaitForCommitOptions). */
export const DEFAULT_COMMIT_WAIT = {
  timeoutMs: 10_000,
  probeDelayMs: 50,
  /** Probes back off up to this delay, ms. */
  maxProbeDelayMs: 1000,
} as const;

export class CommitWaitTimeoutError extends Error {
  constructor(
    readonly commits: readonly string[],
    readonly pending: readonly string[],
  ) {
    super(`live queries did not reflect commit ${commits.join(",")} in time (still waiting: ${pending.join(", ")})`);
    this.name = "CommitWaitTimeoutError";
  }
}

/**
 * Resolves once every one of `queries` reflects all of `commits` (transaction ids from
 * `x-tether-commit`): read-your-writes. Queries that end meanwhile (disposed, failed) stop
 * counting. Rejects with CommitWaitTimeoutError after `timeoutMs`.
 */
export async function waitForQueries(
  queries: readonly LiveQuery[],
  commits: readonly string[],
  options: Pick<WaitForCommitOptions, "timeoutMs" | "probeDelayMs"> = {},
): Promise<void> {
  if (commits.length === 0 || queries.length === 0) return;
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMIT_WAIT.timeoutMs;
  const controller = new AbortController();
  const deadline = Date.now() + timeoutMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const pending = queries.filter((q) => !settled(q) && !reflects(q, commits)).map((q) => q.target.path);
      reject(new CommitWaitTimeoutError(commits, pending));
    }, timeoutMs);
  });
  try {
    await Promise.race([
      Promise.all(
        queries.map((q) =>
          waitForQuery(q, commits, {
            deadline,
            probeDelayMs: options.probeDelayMs ?? DEFAULT_COMMIT_WAIT.probeDelayMs,
            signal: controller.signal,
          }),
        ),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/**
 * Resolves once `query`'s value reflects every transaction in `commits` (or it stops being
 * live: disposed, failed). Between values it probes the server (see WaitForCommitOptions).
 */
function waitForQuery(
  query: LiveQuery,
  commits: readonly string[],
  options: { deadline: number; probeDelayMs: number; signal: AbortSignal },
): Promise<void> {
  return new Promise<void>((resolve) => {
    let probeDelay = options.probeDelayMs;
    let probeTimer: ReturnType<typeof setTimeout> | null = null;
    let probing = false;
    const done = () => settled(query) || reflects(query, commits);
    const finish = () => {
      unsubscribe();
      options.signal.removeEventListener("abort", finish);
      if (probeTimer) clearTimeout(probeTimer);
      resolve();
    };
    const check = () => {
      if (done()) finish();
    };
    const scheduleProbe = () => {
      probeTimer = setTimeout(async () => {
        probeTimer = null;
        if (options.signal.aborted || done() || probing) return;
        probing = true;
        await query.probe().catch(() => undefined);
        probing = false;
        if (options.signal.aborted) return;
        check();
        probeDelay = Math.min(DEFAULT_COMMIT_WAIT.maxProbeDelayMs, probeDelay * 2);
        if (!done() && Date.now() < options.deadline) scheduleProbe();
      }, probeDelay);
    };
    const unsubscribe = query.subscribe(check);
    options.signal.addEventListener("abort", finish, { once: true });
    check();
    if (!done()) scheduleProbe();
  });
}

/** The query stopped being live (disposed, failed): it no longer holds anyone up. */
function settled(query: LiveQuery): boolean {
  return query.isDisposed || query.state.status === "error";
}

function reflects(query: LiveQuery, commits: readonly string[]): boolean {
  const position = query.state.position;
  return position !== null && commits.every((xid) => positionIncludesSafe(position, xid));
}

function positionIncludesSafe(position: string, xid: string): boolean {
  try {
    return positionIncludes(position, xid);
  } catch {
    return false;
  }
}
