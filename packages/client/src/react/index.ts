export { createTetherReact, type TetherProviderProps } from "./createTetherReact.ts";
export {
  liveTargetOf,
  useLiveQueryWith,
  type LiveQueryFields,
  type LiveQueryOptions,
  type UseLiveQueryOptions,
  type UseLiveQueryResult,
} from "./useLiveQuery.ts";
export { useLiveMutationWith, type UseLiveMutationOptions } from "./useLiveMutation.ts";
export { useConnectionStatusWith } from "./useConnectionStatus.ts";
export { useCrdtDocWith, type UseCrdtDocOptions, type UseCrdtDocResult } from "./useCrdtDoc.ts";
export { usePresenceWith, type UsePresenceResult } from "./usePresence.ts";
export { useJobWith, type UseJobResult } from "./useJob.ts";
export { useWorkflowWith, type UseWorkflowResult } from "./useWorkflow.ts";
