import { isDatabaseUnavailable } from "../errors/index.ts";
import { TimeoutError } from "./limiter.ts";

/**
 * Delay before retry number `attempt` (1-based) of a timed-out execution: exponential from
 * `baseMs`, capped at `maxMs`, with half of it random so groups that timed out together (one slow
 * moment of the database) do not all come back in the same millisecond.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** Postgres' SQLSTATE for a statement cancelled (pg_cancel_backend, statement_timeout). */
const QUERY_CANCELED = "57014";

/**
 * Errors that say "not now" rather than "never": a timeout, a statement cancelled under the
 * execution (another execution's cancel that hit a query it shared, or a server-side
 * statement_timeout), or a database that is down or restarting (its connection ended, it cannot
 * be reached). The group retries these with backoff, so a database restart delays live queries
 * instead of ending them; anything else ends its subscriptions.
 */
export function isTransientError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof TimeoutError) return true;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (code === QUERY_CANCELED) return true;
    if (typeof message === "string" && message.includes("canceling statement due to")) return true;
    if (typeof message === "string" && /connection terminated unexpectedly/i.test(message)) return true;
    if (isDatabaseUnavailable(e)) return true;
  }
  return false;
}
