import { useCallback } from "react";
import { skipToken } from "@tanstack/react-query";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "../core/client.ts";
import { WORKFLOW_PROCEDURE, type WorkflowState } from "@tether/protocol";
import { cancelWorkflow, workflowQueryKey, workflowQueryOptions } from "../core/workflow.ts";
import { useLiveQueryWith, type LiveQueryOptions, type UseLiveQueryResult } from "./useLiveQuery.ts";

export type UseWorkflowResult<Output> = UseLiveQueryResult<WorkflowState<Output>, unknown> & {
  /** The run's state (undefined until it arrives). */
  workflow: WorkflowState<Output> | undefined;
  /** Cancels the run (owner only). */
  cancel(): Promise<WorkflowState>;
};

/** `useWorkflow` against a given Tether client: a live query of `$workflows.get({ id })`; no id, no subscription. */
export function useWorkflowWith<Output = unknown>(tether: TetherClient<AnyRouter>, id: string | null | undefined): UseWorkflowResult<Output> {
  const options: LiveQueryOptions<WorkflowState<Output>, unknown, WorkflowState<Output>, readonly unknown[]> = id
    ? workflowQueryOptions<Output>(tether, id)
    : { queryKey: workflowQueryKey(""), queryFn: skipToken, trpc: { path: WORKFLOW_PROCEDURE } };
  const result: UseLiveQueryResult<WorkflowState<Output>, unknown> = useLiveQueryWith(tether, options);
  const cancel = useCallback(() => (id ? cancelWorkflow(tether, id) : Promise.reject(new Error("no workflow to cancel"))), [tether, id]);
  return Object.assign(result, { workflow: result.data, cancel });
}
