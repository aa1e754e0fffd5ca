import { WORKFLOW_CANCEL_PROCEDURE, WORKFLOW_PROCEDURE, type WorkflowState } from "@tether/protocol";
import { getUntypedClient } from "@trpc/client";
import type { QueryKey } from "@tanstack/query-core";
import type { AnyRouter } from "@trpc/server";
import type { TetherClient } from "./client.ts";
import type { LiveStatus } from "./live/index.ts";
import { watchQuery } from "./watchQuery.ts";

/** tRPC's query key for `$workflows.get({ id })`: the cache entry `trpc.$workflows.get.queryOptions({ id })` uses. */
export function workflowQueryKey(id: string): QueryKey {
  return [WORKFLOW_PROCEDURE.split("."), { input: { id }, type: "query" }];
}

/** Query options for one run's state, for `useLiveQuery` or TanStack directly. */
export function workflowQueryOptions<Output = unknown>(client: TetherClient<AnyRouter>, id: string) {
  return {
    queryKey: workflowQueryKey(id),
    queryFn: () => getUntypedClient(client.trpc).query(WORKFLOW_PROCEDURE, { id }) as Promise<WorkflowState<Output>>,
    trpc: { path: WORKFLOW_PROCEDURE },
  };
}

export interface WorkflowWatch<Output = unknown> {
  /** The latest state, once the subscription delivered one. */
  workflow: WorkflowState<Output> | undefined;
  status: LiveStatus;
  /** NOT_FOUND when the run does not exist or is not the caller's; other errors as received. */
  error: unknown;
}

/**
 * Follows one run live without React: `listener` gets every new state (status, current step,
 * each step's status/result/timing). Returns the function that stops watching. Another user's
 * run ends in `status: "error"` with NOT_FOUND.
 */
export function watchWorkflow<Output = unknown>(
  client: TetherClient<AnyRouter>,
  id: string,
  listener: (watch: WorkflowWatch<Output>) => void,
): () => void {
  return watchQuery<WorkflowState<Output>>(client, { path: WORKFLOW_PROCEDURE, input: { id }, queryKey: workflowQueryKey(id) }, (workflow, status, error) =>
    listener({ workflow, status, error }),
  );
}

/** Cancels a run not yet finished (its owner or an admin; NOT_FOUND otherwise). Resolves with its state. */
export function cancelWorkflow(client: TetherClient<AnyRouter>, id: string): Promise<WorkflowState> {
  return getUntypedClient(client.trpc).mutation(WORKFLOW_CANCEL_PROCEDURE, { id }) as Promise<WorkflowState>;
}
