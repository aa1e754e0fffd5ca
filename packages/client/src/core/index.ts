export { Backoff, backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.ts";
export { keepLiveValuesAuthoritative, liveHash, queryClientCache } from "./cache.ts";
export {
  createTetherClient,
  type SseSubscriptionOptions,
  type TetherClient,
  type TetherClientOptions,
  type WebSocketSubscriptionOptions,
} from "./client.ts";
export { commitLink, CommitTracker, type CommitRecord } from "./commits.ts";
export {
  ConnectionStatusStore,
  watchEnvironment,
  type ConnectionState,
  type ConnectionStatus,
  type EnvironmentTarget,
} from "./connection.ts";
export {
  CommitWaitTimeoutError,
  IDLE_LIVE_STATE,
  LiveQuery,
  LiveQueryRegistry,
  type LiveCache,
  type LiveHandlers,
  type LiveQueryRegistryOptions,
  type LiveRegistryStats,
  type LiveState,
  type LiveStatus,
  type LiveTarget,
  type LiveTransport,
  type TransportState,
  type WaitForCommitOptions,
} from "./liveQuery.ts";
export { decodePosition, parseCommitHeader, positionIncludes, type FeedPosition } from "@tether/protocol";
export {
  applyListPatch,
  COMMIT_HEADER,
  eventHash,
  LIVE_PROCEDURE,
  type ListPatch,
  type LiveInput,
  type LiveMessage,
} from "@tether/protocol";
export { Subscribable } from "./subscribable.ts";
export { watchQuery } from "./watchQuery.ts";
export {
  cancelWorkflow,
  WORKFLOW_PROCEDURE,
  watchWorkflow,
  workflowQueryKey,
  workflowQueryOptions,
  type WorkflowState,
  type WorkflowStatus,
  type WorkflowStepState,
  type WorkflowWatch,
} from "./workflow.ts";
export { cancelJob, JOB_PROCEDURE, jobQueryKey, jobQueryOptions, watchJob, type JobState, type JobStatus, type JobWatch } from "./job.ts";
