export { Backoff, backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.ts";
export { keepLiveValuesAuthoritative, liveHash, queryClientCache } from "./cache.ts";
export {
  createTetherClient,
  type ClientSlot,
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
  DEFAULT_COMMIT_WAIT,
  IDLE_LIVE_STATE,
  LiveQuery,
  LiveQueryRegistry,
  type LiveCache,
  type LiveEvent,
  type LiveHandlers,
  type LiveQueryRegistryOptions,
  type LiveRegistryStats,
  type LiveState,
  type LiveStatus,
  type LiveTarget,
  type LiveTransport,
  type WaitForCommitOptions,
} from "./live/index.ts";
export {
  DEFAULT_REF_COUNTED,
  RefCountedRegistry,
  type Lease,
  type RefCountedRegistryOptions,
} from "./refCountedRegistry.ts";
export {
  ResumableStream,
  type ResumableStreamOptions,
  type StreamHandlers,
  type TransportState,
  type Unsubscribable,
} from "./resumableStream.ts";
export { systemTimers, type Timers } from "./timers.ts";
// The wire protocol's pieces a client app may use (the rest: import @tether/protocol).
export {
  applyListPatch,
  COMMIT_HEADER,
  decodePosition,
  eventHash,
  JOB_PROCEDURE,
  LIVE_PROCEDURE,
  parseCommitHeader,
  positionIncludes,
  WORKFLOW_PROCEDURE,
  type FeedPosition,
  type JobState,
  type JobStatus,
  type ListPatch,
  type LiveInput,
  type LiveMessage,
  type WorkflowState,
  type WorkflowStatus,
  type WorkflowStepState,
} from "@tether/protocol";
export { Subscribable } from "./subscribable.ts";
export { watchQuery } from "./watchQuery.ts";
export { cancelWorkflow, watchWorkflow, workflowQueryKey, workflowQueryOptions, type WorkflowWatch } from "./workflow.ts";
export { cancelJob, jobQueryKey, jobQueryOptions, watchJob, type JobWatch } from "./job.ts";
export { tetherTransformer, type DataTransformerOptions } from "./transformer.ts";
