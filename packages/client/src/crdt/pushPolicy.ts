import type { BackoffOptions } from "../core/backoff.ts";
import { trpcErrorCode } from "../core/errors.ts";

/** How a CRDT session sends its outbox (`createTetherClient({ crdt: { push } })`). */
export interface CrdtPushOptions {
  /**
   * Pushes in flight at once. The server relays a push to the other editors as it arrives but
   * answers only once it is durable (its group commit); a session that waited for that answer
   * before sending the next keystroke would hold every keystroke behind a database commit
   * (seen in the deployment bench: keystroke → others followed the durable ack, seconds under
   * load). Each push carries every unacknowledged operation, so they never depend on each other.
   */
  maxInFlight?: number;
  /**
   * Past this many unacknowledged operations, one push at a time: every push repeats the whole
   * outbox, so a long offline backlog is not sent several times over.
   */
  maxPipelinedOps?: number;
  /**
   * Backoff after the server refused a push with a retryable code (CONFLICT, SERVICE_UNAVAILABLE,
   * TOO_MANY_REQUESTS, …): the server answered, so the wait is short and bounded, unlike the
   * connection's backoff (`retry`, up to 30 s) meant for a server that is gone.
   */
  refusedRetry?: BackoffOptions;
}

export const DEFAULT_CRDT_PUSH: Required<CrdtPushOptions> = {
  maxInFlight: 16,
  maxPipelinedOps: 1_000,
  refusedRetry: { initialDelayMs: 25, maxDelayMs: 1_000 },
};

/** A call that got no tRPC answer (the request failed, the connection dropped): no error code. */
export function isTransportFailure(error: unknown): boolean {
  return trpcErrorCode(error) === undefined;
}
