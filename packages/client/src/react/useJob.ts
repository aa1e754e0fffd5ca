import { useCallback } from "react";
import { skipToken } from "@tanstack/react-query";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import { JOB_PROCEDURE, type JobState } from "@tether/protocol";
import { cancelJob, jobQueryKey, jobQueryOptions } from "../core/job.ts";
import { useLiveQueryWith, type LiveQueryOptions, type UseLiveQueryResult } from "./useLiveQuery.ts";

export type UseJobResult<Output> = UseLiveQueryResult<JobState<Output>, unknown> & {
  /** The job's state (undefined until it arrives). */
  job: JobState<Output> | undefined;
  /** Cancels the job (owner only). */
  cancel(): Promise<JobState>;
};

/** `useJob` against a given Tether client: a live query of `$jobs.get({ id })`; no id, no subscription. */
export function useJobWith<Output = unknown>(tether: TetherClient<AnyRouter>, id: string | null | undefined): UseJobResult<Output> {
  const options: LiveQueryOptions<JobState<Output>, unknown, JobState<Output>, readonly unknown[]> = id
    ? jobQueryOptions<Output>(tether, id)
    : { queryKey: jobQueryKey(""), queryFn: skipToken, trpc: { path: JOB_PROCEDURE } };
  const result: UseLiveQueryResult<JobState<Output>, unknown> = useLiveQueryWith(tether, options);
  const cancel = useCallback(() => {
    if (!id) return Promise.reject(new Error("no job to cancel"));
    return cancelJob(tether, id);
  }, [tether, id]);
  return Object.assign(result, { job: result.data, cancel });
}
