// Live queries: one query (its `$live` stream and server value), the registry that shares them
// per cache entry, and read-your-writes (waiting until they reflect a commit).
export { LiveQuery, type LiveQueryOptions, type LiveQueryOwner } from "./liveQuery.ts";
export { LiveQueryRegistry, type LiveQueryRegistryOptions, type LiveRegistryStats } from "./liveQueryRegistry.ts";
export { CommitWaitTimeoutError, DEFAULT_COMMIT_WAIT, waitForQueries, type WaitForCommitOptions } from "./readYourWrites.ts";
export {
  IDLE_LIVE_STATE,
  type LiveCache,
  type LiveEvent,
  type LiveHandlers,
  type LiveState,
  type LiveStatus,
  type LiveTarget,
  type LiveTransport,
} from "./types.ts";
