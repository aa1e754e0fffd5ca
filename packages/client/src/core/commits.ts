import type { TRPCLink } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import { observable } from "@trpc/server/observable";
import { parseCommitHeader } from "@tether/protocol";
import { COMMIT_HEADER } from "@tether/protocol";

/** The commits one mutation call's response reported. */
export interface CommitRecord {
  readonly path: string;
  readonly input: unknown;
  /** Transaction ids (xid8, decimal) from `x-tether-commit`. */
  readonly commits: readonly string[];
}

interface Capture {
  readonly records: CommitRecord[];
}

/**
 * Hears every mutation response's `x-tether-commit` header (via `commitLink`) and lets a caller
 * collect the commits of the mutations it runs. tRPC batches mutations into one request with one
 * header, so a mutation may be credited with its batch-mates' commits too: waiting for more of
 * the client's own writes than needed is safe, waiting for fewer would not be.
 */
export class CommitTracker {
  private readonly captures = new Set<Capture>();
  private last: readonly string[] = [];

  /** @internal called by commitLink. */
  record(record: CommitRecord): void {
    if (record.commits.length === 0) return;
    this.last = record.commits;
    for (const capture of this.captures) capture.records.push(record);
  }

  /** Commits of the most recent mutation response that had any. */
  latest(): readonly string[] {
    return this.last;
  }

  /**
   * Collects the commits of mutation responses that arrive until `stop()`. With `call`, the
   * records of that exact call (same path, same input object) are preferred when present.
   */
  capture(call?: { path?: string; input?: unknown }): { commits(): string[]; stop(): void } {
    const capture: Capture = { records: [] };
    this.captures.add(capture);
    return {
      commits: () => {
        const mine = call?.path
          ? capture.records.filter((r) => r.path === call.path && r.input === call.input)
          : [];
        const chosen = mine.length > 0 ? mine : capture.records;
        return [...new Set(chosen.flatMap((r) => r.commits))];
      },
      stop: () => {
        this.captures.delete(capture);
      },
    };
  }
}

/**
 * A tRPC link (place it before the terminating links) that reads `x-tether-commit` from each
 * mutation's HTTP response (httpBatchLink passes the `Response` in the result's context).
 */
export function commitLink<TRouter extends AnyRouter>(tracker: CommitTracker): TRPCLink<TRouter> {
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        const subscription = next(op).subscribe({
          next(value) {
            if (op.type === "mutation") {
              const response = (value.context as { response?: { headers?: { get(name: string): string | null } } } | undefined)
                ?.response;
              const commits = parseCommitHeader(response?.headers?.get(COMMIT_HEADER));
              if (commits.length > 0) tracker.record({ path: op.path, input: op.input, commits });
            }
            observer.next(value);
          },
          error(error) {
            observer.error(error);
          },
          complete() {
            observer.complete();
          },
        });
        return () => subscription.unsubscribe();
      });
}
