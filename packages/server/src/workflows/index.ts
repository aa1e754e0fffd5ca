export { WorkflowBuilder } from "./builder.ts";
export { DEFAULT_WORKFLOW_LIMITS } from "./config.ts";
export type { StartWorkflowOptions, WaitForEventOptions, WorkflowLimits, WorkflowRuntimeOptions } from "./config.ts";
export { WorkflowStepError } from "./replay.ts";
export { RESUME_JOB, WorkflowRuntime } from "./runtime.ts";
export { FINISHED_WORKFLOW_STATUSES, WORKFLOW_EVENTS_TABLE, WORKFLOW_STEPS_TABLE, WORKFLOWS_TABLE, withWorkflowModels } from "./state.ts";
export type {
  StepKind,
  StepRunArgs,
  StepStatus,
  UntypedWorkflowClient,
  WorkflowClient,
  WorkflowContext,
  WorkflowDefinition,
  WorkflowHandler,
  WorkflowInput,
  WorkflowName,
  WorkflowOutput,
  WorkflowOwner,
  WorkflowProcedure,
  WorkflowRunArgs,
  WorkflowState,
  WorkflowStatus,
  WorkflowSteps,
  WorkflowStepState,
} from "./types.ts";
