import { JOB_CANCEL_PROCEDURE, JOB_PROCEDURE, type JobState } from "@tether/protocol";
import { getUntypedClient } from "@trpc/client";
import type { QueryKey } from "@tanstack/query-core";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "./client.ts";
import type { LiveStatus } from "./live/index.ts";
import { watchQuery } from "./watchQuery.ts";

/** tRPC's query key for `$jobs.get({ id })`: the same cache entry `trpc.$jobs.get.queryOptions({ id })` uses. */
export function jobQueryKey(id: string): QueryKey {
  return [JOB_PROCEDURE.split("."), { input: { id }, type: "query" }];
}

/** Query options for one job's state (fetch + key + tRPC path), for `useLiveQuery` or TanStack directly. */
export function jobQueryOptions<Output = unknown>(client: TetherClient<AnyRouter>, id: string) {
  const queryKey = jobQueryKey(id);
  return {
    queryKey,
    queryFn: () => getUntypedClient(client.trpc).query(JOB_PROCEDURE, { id }) as Promise<JobState<Output>>,
    trpc: { path: JOB_PROCEDURE },
  };
}

export interface JobWatch<Output = unknown> {
  /** The latest state, once the subscription delivered one. */
  job: JobState<Output> | undefined;
  status: LiveStatus;
  /** NOT_FOUND when the job does not exist or is not the caller's; other errors as received. */
  error: unknown;
}

/**
 * Follows one job live without React: `listener` gets each new state (progress, status, output)
 * and the subscription's status, once. Returns the function that stops watching. Jobs of other users
 * end in `status: "error"` with NOT_FOUND.
 */
export function watchJob<Output = unknown>(
  client: TetherClient<AnyRouter>,
  id: string,
  listener: (watch: JobWatch<Output>) => void,
): () => void {
  return watchQuery<JobState<Output>>(client, { path: JOB_PROCEDURE, input: { id }, queryKey: jobQueryKey(id) }, (job, status, error) =>
    listener({ job, status, error }),
  );
}

/** Cancels a job not yet finished (its owner or an admin; NOT_FOUND otherwise). Resolves with its state. */
export function cancelJob(client: TetherClient<AnyRouter>, id: string): Promise<JobState> {
  return getUntypedClient(client.trpc).mutation(JOB_CANCEL_PROCEDURE, { id }) as Promise<JobState>;
}
